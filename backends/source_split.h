// SourceSplit: where the next read of a proven object goes when two sources
// hold the same bytes (OBS and a share copy proven identical), and when a
// read is late enough on one of them to be asked of the other.
//
// Per source it keeps, from the reads it saw finish:
//  - the source's aggregate rate (bytes/s) as a function of the reads in
//    flight on it: one EWMA per count k of a read's own bytes/s times the
//    reads in flight with it (the mean of the counts at its start and end).
//    A pipe shared by N reads is measured as the pipe, not as a Nth of it,
//    and a source that gives each connection its own lane (OBS: a rate per
//    connection, many connections) shows a rate that grows with k;
//  - the bytes and reads committed to it: in flight, and waiting for one of
//    its slots in PickOrWait (a queue of waiters is load, not free room);
//  - a window of the last reads' durations per MiB (tiny reads count as
//    64 KiB), whose p99 says when a read is late.
//    A count's sample older than sample_ttl no longer counts (the newest
//    sample always does): what a source did at a concurrency it has not
//    had for a while says little about it now;
// Choose() sends a read where it is expected to finish first:
// (bytes committed + its length) / aggregate rate at (reads committed + 1).
// A count never measured is estimated from its neighbours: between two
// measured counts linearly; above the highest measured one as if each new
// read got the per-read rate of that one (optimistic, so unexplored
// concurrency is tried, and measured, instead of never being used); below
// the lowest as the lowest's aggregate. Past a source's in-flight limit
// the rate is that at the limit (more reads only queue). A source with no
// measurement yet borrows the other's estimate (a fair split when neither
// is measured: fewer bytes committed wins, ties alternate). A source that
// has had nothing in flight for `probe_after` is given the next read, so a
// rate measured once on a bad moment is measured again instead of starving
// that source. A failed read halves its source's rates (it answered
// nothing useful).
//
// Times are passed in (tests use a fake clock). Thread-safe: one leaf mutex.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "common/cancel.h"
#include "common/config.h"

namespace dsfs {

// The defaults are a default FallbackConfig's (common/config.h has the
// reasons).
struct SourceSplitOptions {
  // Weight of the newest rate sample in the EWMA.
  double ewma_alpha = FallbackConfig{}.split_ewma_alpha;
  // Reads per source whose durations make the p99.
  size_t latency_window = FallbackConfig{}.split_latency_window;
  // Samples needed before a read can be late (no p99 before).
  size_t min_latency_samples = FallbackConfig{}.split_min_latency_samples;
  // An idle source is given the next read after this long without one.
  std::chrono::milliseconds probe_after = FallbackConfig{}.split_probe_after;
  // A rate sample of a count not measured again for this long no longer
  // counts (the source's newest sample always does).
  std::chrono::milliseconds sample_ttl = FallbackConfig{}.split_sample_ttl;
  // Reads in flight on each source at most (0: no limit): a source at its
  // limit gets no more until one ends.
  std::array<int, 2> max_in_flight{0, 0};
  // PickOrWait waits at most this for the better source's slot.
  std::chrono::milliseconds max_wait = FallbackConfig{}.split_max_wait;
};

class SourceSplit {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kSources = 2;  // 0: OBS, 1: the share

  struct Ticket {
    int source = 0;
    uint64_t bytes = 0;
    Clock::time_point start;
    int in_flight_at_start = 0;  // this read included
  };

  explicit SourceSplit(SourceSplitOptions options = {}) : options_(options) {}

  // The source expected to finish a read of `bytes` first (one below its
  // in-flight limit; OBS when both are at theirs).
  int Choose(uint64_t bytes, Clock::time_point now);
  // Choose and Start in one step (the limits hold under concurrency).
  Ticket Pick(uint64_t bytes, Clock::time_point now);
  // Pick, except that when the source expected to finish first is at its
  // limit, waits for it (at most max_wait, or until `cancel`) instead of
  // taking the other.
  Ticket PickOrWait(uint64_t bytes, const CancelTokenPtr& cancel);
  // Whether `source` is below its in-flight limit.
  bool HasRoom(int source) const;
  // A read of `bytes` starts on `source`.
  Ticket Start(int source, uint64_t bytes, Clock::time_point now);
  // It ended: `ok` reads are rate and latency samples, failures halve the
  // source's rate.
  void Finish(const Ticket& ticket, bool ok, Clock::time_point now);
  // It was cut short (cancelled): no sample.
  void Abandon(const Ticket& ticket);

  // How long a read of `bytes` on `source` may take before it is late (the
  // window's p99 scaled to its size); nullopt while too few samples.
  std::optional<Clock::duration> LateAfter(int source, uint64_t bytes) const;
  // When a read of `bytes` started now on `source` is expected to finish,
  // from now; nullopt when the source was never measured.
  std::optional<Clock::duration> ExpectedTime(int source, uint64_t bytes) const;

  // For tests and logs.
  double rate(int source) const;  // the highest aggregate measured, bytes/s; 0: unmeasured
  // The aggregate rate expected with `reads` in flight on `source` (the
  // model above); 0 when the source was never measured.
  double RateAt(int source, int reads) const;
  uint64_t bytes_in_flight(int source) const;
  int in_flight(int source) const;
  int waiting(int source) const;  // PickOrWait callers waiting for its slot

  // In-flight counts above this share the top count's rate sample.
  static constexpr int kMaxCounted = 64;

 private:
  struct Source {
    // [k]: EWMA of the aggregate bytes/s with k reads in flight; 0:
    // unmeasured ([0] unused).
    std::array<double, kMaxCounted + 1> rate_at{};
    std::array<Clock::time_point, kMaxCounted + 1> measured_at{};  // of rate_at[k]
    int newest = 0;  // the count of the newest sample (0: none)
    uint64_t bytes_in_flight = 0;
    int in_flight = 0;
    uint64_t bytes_waiting = 0;
    int waiting = 0;
    Clock::time_point last_start{};       // of the last read, or its end
    std::vector<double> seconds_per_mib;  // ring of latency_window
    size_t next_sample = 0;
  };
  // rate_at[k] if it counts (measured, fresh or the newest), else 0.
  double SampleLocked(int source, int k) const;
  double OwnRateAtLocked(int source, int reads) const;
  double RateAtLocked(int source, int reads) const;
  bool MeasuredLocked(int source) const;
  bool HasRoomLocked(int source) const;
  int ChooseLocked(uint64_t bytes, Clock::time_point now, bool ignore_limits);
  void FinishUnnotified(const Ticket& ticket, bool ok, Clock::time_point now);
  Ticket StartLocked(int source, uint64_t bytes, Clock::time_point now);

  const SourceSplitOptions options_;
  mutable std::mutex mu_;
  std::array<Source, kSources> sources_;  // guarded by mu_
  unsigned ties_ = 0;                     // guarded by mu_
  Clock::time_point latest_{};            // the latest time passed in; guarded by mu_
  std::condition_variable room_cv_;       // a read ended
};

}  // namespace dsfs
