// Hedger: asks a second source for a read that is late on the first.
//
// Run() makes the first attempt on the caller's thread, into the caller's
// buffer. If it has not finished `late_after` after it started, and
// `may_hedge()` agrees then (the other source is not saturated) and a hedge
// worker is free, the second attempt starts on that worker into a buffer of
// its own. Whichever answers first with a good result is the answer:
//  - the first succeeds: the hedge is cancelled and its bytes dropped;
//  - the hedge succeeds first: the first attempt is cancelled, and once it
//    has returned (the store no longer writes the caller's buffer) the
//    hedge's bytes are delivered (copied) into the caller's buffer. The
//    caller's buffer so only ever holds one attempt's bytes.
//  - both fail: the first attempt's result.
// At most one hedge per read; at most `workers` hedges at once (each holds
// a buffer of its read's size). The first attempt runs under a cancel token
// of the Hedger's own; the caller's token is passed on to it (and to the
// hedge) within `cancel_poll`.
//
// Thread-safe. One mutex (mu_) guards every job's state; may_hedge runs
// under it (it must only take leaf locks). The destructor cancels hedges in
// flight and joins the threads; no Run may be in progress.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "backends/object_store.h"

namespace dsfs {

class Hedger {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Outcome {
    kNoHedge,     // the first attempt's result, no hedge started
    kFirstWon,    // a hedge started, the first attempt answered first
    kHedgeWon,    // the hedge's result (delivered into the caller's buffer)
    kBothFailed,  // a hedge started and failed; the first attempt's result
  };
  // Reads into the caller's buffer under `cancel`.
  using First = std::function<Result<GetResult>(const CancelTokenPtr& cancel)>;
  // Reads `len` bytes into `buf` under `cancel`. Runs on a hedge worker,
  // possibly after Run returned: it must not refer to the caller's stack.
  using Second =
      std::function<Result<GetResult>(const CancelTokenPtr& cancel, char* buf, size_t len)>;
  // Copies the hedge's bytes into the caller's buffer.
  using Deliver = std::function<void(const char* bytes, size_t len)>;

  Hedger(int workers, std::chrono::milliseconds cancel_poll);
  ~Hedger();
  Hedger(const Hedger&) = delete;
  Hedger& operator=(const Hedger&) = delete;

  // late_after nullopt (or no workers): the first attempt alone.
  Result<GetResult> Run(const CancelTokenPtr& caller_cancel,
                        std::optional<Clock::duration> late_after,
                        const std::function<bool()>& may_hedge, const First& first, Second second,
                        size_t len, const Deliver& deliver, Outcome* outcome);

 private:
  struct Job;
  void WatchLoop();
  void WorkLoop();

  const std::chrono::milliseconds cancel_poll_;
  std::mutex mu_;
  std::condition_variable watch_cv_;                                // a new watch, or stop
  std::condition_variable work_cv_;                                 // a hedge to start, or stop
  std::condition_variable done_cv_;                                 // a hedge ended
  std::multimap<Clock::time_point, std::shared_ptr<Job>> watches_;  // guarded by mu_
  std::deque<std::shared_ptr<Job>> ready_;                          // guarded by mu_
  std::vector<std::shared_ptr<Job>> running_;                       // guarded by mu_
  int idle_ = 0;                                                    // guarded by mu_
  bool stop_ = false;                                               // guarded by mu_
  std::vector<std::thread> threads_;  // last: started after everything else
};

}  // namespace dsfs
