// SourceSplit: where the next read of a proven object goes when two sources
// hold the same bytes (OBS and a share copy proven identical), and when a
// read is late enough on one of them to be asked of the other.
//
// Per source it keeps, from the reads it saw finish:
//  - an EWMA of the source's aggregate rate (bytes/s): each read's own
//    bytes/s times the reads that were in flight on that source with it
//    (the mean of the counts at its start and end), so a pipe shared by N
//    reads is measured as the pipe, not as a Nth of it;
//  - the bytes and reads in flight now;
//  - a window of the last reads' durations per MiB (tiny reads count as
//    64 KiB), whose p99 says when a read is late.
// Choose() sends a read where it is expected to finish first:
// (bytes in flight + its length) / rate. A source with no measurement yet
// borrows the other's rate (a fair split when neither is measured: fewer
// bytes in flight wins, ties alternate). A source that has had nothing in
// flight for `probe_after` is given the next read, so a rate measured once
// on a bad moment is measured again instead of starving that source.
// A failed read halves its source's rate (it answered nothing useful).
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
  double rate(int source) const;  // bytes/s, 0 when unmeasured
  uint64_t bytes_in_flight(int source) const;
  int in_flight(int source) const;

 private:
  struct Source {
    double rate = 0;  // bytes/s; 0: unmeasured
    uint64_t bytes_in_flight = 0;
    int in_flight = 0;
    Clock::time_point last_start{};       // of the last read, or its end
    std::vector<double> seconds_per_mib;  // ring of latency_window
    size_t next_sample = 0;
  };
  double RateLocked(int source) const;
  bool HasRoomLocked(int source) const;
  int ChooseLocked(uint64_t bytes, Clock::time_point now, bool ignore_limits);
  void FinishUnnotified(const Ticket& ticket, bool ok, Clock::time_point now);
  Ticket StartLocked(int source, uint64_t bytes, Clock::time_point now);

  const SourceSplitOptions options_;
  mutable std::mutex mu_;
  std::array<Source, kSources> sources_;  // guarded by mu_
  unsigned ties_ = 0;                     // guarded by mu_
  std::condition_variable room_cv_;       // a read ended
};

}  // namespace dsfs
