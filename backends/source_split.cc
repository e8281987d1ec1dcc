#include "backends/source_split.h"

#include <algorithm>
#include <cmath>

namespace dsfs {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
// Reads below this size count as this size in the latency window (their
// time is the first byte's, not the transfer's).
constexpr double kMinLatencyBytes = 64.0 * 1024.0;

double Seconds(SourceSplit::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

bool SourceSplit::MeasuredLocked(int source) const {
  for (int k = 1; k <= kMaxCounted; ++k) {
    if (sources_[source].rate_at[k] > 0) return true;
  }
  return false;
}

double SourceSplit::SampleLocked(int source, int k) const {
  const Source& src = sources_[source];
  if (src.rate_at[k] <= 0) return 0;
  if (k == src.newest || latest_ - src.measured_at[k] <= options_.sample_ttl) return src.rate_at[k];
  return 0;
}

double SourceSplit::OwnRateAtLocked(int source, int reads) const {
  std::array<double, kMaxCounted + 1> at{};
  for (int j = 1; j <= kMaxCounted; ++j) at[j] = SampleLocked(source, j);
  int k = std::clamp(reads, 1, kMaxCounted);
  const int limit = options_.max_in_flight[source];
  if (limit > 0) k = std::min(k, std::min(limit, kMaxCounted));  // more only queue
  if (at[k] > 0) return at[k];
  int below = k - 1;
  while (below >= 1 && at[below] <= 0) --below;
  int above = k + 1;
  while (above <= kMaxCounted && at[above] <= 0) ++above;
  const bool has_below = below >= 1;
  const bool has_above = above <= kMaxCounted;
  if (has_below && has_above) {
    const double f = static_cast<double>(k - below) / (above - below);
    return at[below] + f * (at[above] - at[below]);
  }
  if (has_below) return at[below] / below * k;  // each more read at the per-read rate
  if (has_above) return at[above];
  return 0;
}

double SourceSplit::RateAtLocked(int source, int reads) const {
  const double own = OwnRateAtLocked(source, reads);
  if (own > 0) return own;
  const double other = OwnRateAtLocked(1 - source, reads);
  return other > 0 ? other : 1.0;  // neither measured: equal rates
}

bool SourceSplit::HasRoomLocked(int source) const {
  const int limit = options_.max_in_flight[source];
  return limit <= 0 || sources_[source].in_flight < limit;
}

bool SourceSplit::HasRoom(int source) const {
  std::lock_guard lock(mu_);
  return HasRoomLocked(source);
}

int SourceSplit::Choose(uint64_t bytes, Clock::time_point now) {
  std::lock_guard lock(mu_);
  return ChooseLocked(bytes, now, false);
}

SourceSplit::Ticket SourceSplit::Pick(uint64_t bytes, Clock::time_point now) {
  std::lock_guard lock(mu_);
  return StartLocked(ChooseLocked(bytes, now, false), bytes, now);
}

SourceSplit::Ticket SourceSplit::PickOrWait(uint64_t bytes, const CancelTokenPtr& cancel) {
  std::unique_lock lock(mu_);
  const auto give_up = Clock::now() + options_.max_wait;
  int waiting_on = -1;  // the source this call is counted as waiting for
  auto stop_waiting = [&] {
    if (waiting_on < 0) return;
    Source& src = sources_[waiting_on];
    src.bytes_waiting -= std::min(src.bytes_waiting, bytes);
    src.waiting = std::max(0, src.waiting - 1);
    waiting_on = -1;
  };
  while (true) {
    const auto now = Clock::now();
    stop_waiting();  // chosen again below, without counting itself
    // The source expected to finish first, counting what it already has in
    // flight and its waiters: when that is one at its limit, waiting for it
    // still wins.
    const int best = ChooseLocked(bytes, now, /*ignore_limits=*/true);
    if (HasRoomLocked(best)) return StartLocked(best, bytes, now);
    if (now >= give_up || IsCancelled(cancel)) {
      return StartLocked(ChooseLocked(bytes, now, false), bytes, now);
    }
    waiting_on = best;
    sources_[best].bytes_waiting += bytes;
    ++sources_[best].waiting;
    room_cv_.wait_until(lock, std::min(give_up, now + std::chrono::milliseconds(10)));
  }
}

int SourceSplit::ChooseLocked(uint64_t bytes, Clock::time_point now, bool ignore_limits) {
  latest_ = std::max(latest_, now);
  if (!ignore_limits && !HasRoomLocked(1)) return 0;
  if (!ignore_limits && !HasRoomLocked(0)) return 1;
  // Measured long ago and idle since: measure it again (the one idle
  // longest when both are).
  int probe = -1;
  for (int s = 0; s < kSources; ++s) {
    const Source& src = sources_[s];
    if (src.in_flight == 0 && src.waiting == 0 && now - src.last_start >= options_.probe_after &&
        MeasuredLocked(s) && (probe < 0 || src.last_start < sources_[probe].last_start)) {
      probe = s;
    }
  }
  if (probe >= 0) return probe;
  double finish[kSources];
  for (int s = 0; s < kSources; ++s) {
    const Source& src = sources_[s];
    const int reads = src.in_flight + src.waiting + 1;
    finish[s] = static_cast<double>(src.bytes_in_flight + src.bytes_waiting + bytes) /
                RateAtLocked(s, reads);
  }
  if (finish[0] == finish[1]) return static_cast<int>(ties_++ % kSources);
  return finish[0] < finish[1] ? 0 : 1;
}

SourceSplit::Ticket SourceSplit::Start(int source, uint64_t bytes, Clock::time_point now) {
  std::lock_guard lock(mu_);
  return StartLocked(source, bytes, now);
}

SourceSplit::Ticket SourceSplit::StartLocked(int source, uint64_t bytes, Clock::time_point now) {
  latest_ = std::max(latest_, now);
  Source& src = sources_[source];
  src.bytes_in_flight += bytes;
  ++src.in_flight;
  src.last_start = now;
  return Ticket{source, bytes, now, src.in_flight};
}

void SourceSplit::Finish(const Ticket& ticket, bool ok, Clock::time_point now) {
  FinishUnnotified(ticket, ok, now);
  room_cv_.notify_all();
}

void SourceSplit::FinishUnnotified(const Ticket& ticket, bool ok, Clock::time_point now) {
  std::lock_guard lock(mu_);
  latest_ = std::max(latest_, now);
  Source& src = sources_[ticket.source];
  const int in_flight_at_end = src.in_flight;
  src.bytes_in_flight -= std::min(src.bytes_in_flight, ticket.bytes);
  src.in_flight = std::max(0, src.in_flight - 1);
  src.last_start = std::max(src.last_start, now);  // busy until now
  if (!ok) {
    for (double& r : src.rate_at) r /= 2;
    return;
  }
  const double seconds = std::max(Seconds(now - ticket.start), 1e-6);
  const double sharing = (ticket.in_flight_at_start + in_flight_at_end) / 2.0;
  const double sample = static_cast<double>(ticket.bytes) / seconds * std::max(1.0, sharing);
  const int k = std::clamp(static_cast<int>(std::lround(sharing)), 1, kMaxCounted);
  double& rate = src.rate_at[k];
  // A stale sample is replaced, not averaged with.
  const bool fresh = rate > 0 && now - src.measured_at[k] <= options_.sample_ttl;
  rate = fresh ? rate + options_.ewma_alpha * (sample - rate) : sample;
  src.measured_at[k] = now;
  src.newest = k;
  const double mib = std::max(static_cast<double>(ticket.bytes), kMinLatencyBytes) / kMiB;
  if (src.seconds_per_mib.size() < options_.latency_window) {
    src.seconds_per_mib.push_back(seconds / mib);
  } else if (!src.seconds_per_mib.empty()) {
    src.seconds_per_mib[src.next_sample] = seconds / mib;
    src.next_sample = (src.next_sample + 1) % src.seconds_per_mib.size();
  }
}

void SourceSplit::Abandon(const Ticket& ticket) {
  {
    std::lock_guard lock(mu_);
    Source& src = sources_[ticket.source];
    src.bytes_in_flight -= std::min(src.bytes_in_flight, ticket.bytes);
    src.in_flight = std::max(0, src.in_flight - 1);
  }
  room_cv_.notify_all();
}

std::optional<SourceSplit::Clock::duration> SourceSplit::LateAfter(int source,
                                                                   uint64_t bytes) const {
  std::vector<double> window;
  {
    std::lock_guard lock(mu_);
    window = sources_[source].seconds_per_mib;
  }
  if (window.size() < std::max<size_t>(options_.min_latency_samples, 1)) return std::nullopt;
  const size_t rank = (window.size() * 99 + 99) / 100 - 1;  // nearest rank of the 99th percentile
  std::nth_element(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(rank),
                   window.end());
  const double mib = std::max(static_cast<double>(bytes), kMinLatencyBytes) / kMiB;
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(window[rank] * mib));
}

std::optional<SourceSplit::Clock::duration> SourceSplit::ExpectedTime(int source,
                                                                      uint64_t bytes) const {
  std::lock_guard lock(mu_);
  const Source& src = sources_[source];
  const double rate = OwnRateAtLocked(source, src.in_flight + src.waiting + 1);
  if (rate <= 0) return std::nullopt;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
      static_cast<double>(src.bytes_in_flight + src.bytes_waiting + bytes) / rate));
}

double SourceSplit::rate(int source) const {
  std::lock_guard lock(mu_);
  const auto& at = sources_[source].rate_at;
  return *std::max_element(at.begin(), at.end());
}

double SourceSplit::RateAt(int source, int reads) const {
  std::lock_guard lock(mu_);
  return OwnRateAtLocked(source, reads);
}

int SourceSplit::waiting(int source) const {
  std::lock_guard lock(mu_);
  return sources_[source].waiting;
}

uint64_t SourceSplit::bytes_in_flight(int source) const {
  std::lock_guard lock(mu_);
  return sources_[source].bytes_in_flight;
}

int SourceSplit::in_flight(int source) const {
  std::lock_guard lock(mu_);
  return sources_[source].in_flight;
}

}  // namespace dsfs
