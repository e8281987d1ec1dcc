#include "backends/hedger.h"

#include <algorithm>
#include <utility>

namespace dsfs {

struct Hedger::Job {
  CancelTokenPtr caller_cancel;
  std::shared_ptr<CancelToken> first_cancel = std::make_shared<CancelToken>();
  std::shared_ptr<CancelToken> hedge_cancel = std::make_shared<CancelToken>();
  const std::function<bool()>* may_hedge = nullptr;  // valid while !first_done
  Second second;
  size_t len = 0;
  // Guarded by Hedger::mu_.
  bool first_done = false;
  bool watching = false;
  std::multimap<Clock::time_point, std::shared_ptr<Job>>::iterator watch;
  bool hedge_started = false;
  bool hedge_done = false;
  std::optional<Result<GetResult>> hedge_result;
  std::vector<char> buf;  // the hedge's bytes (written by the worker only)
};

Hedger::Hedger(int workers, std::chrono::milliseconds cancel_poll)
    : cancel_poll_(std::max(cancel_poll, std::chrono::milliseconds(1))), idle_(workers) {
  if (workers <= 0) return;
  threads_.emplace_back([this] { WatchLoop(); });
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkLoop(); });
}

Hedger::~Hedger() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    for (auto& job : running_) job->hedge_cancel->Cancel();
    for (auto& job : ready_) {
      job->hedge_done = true;
      job->hedge_result = Status::Cancelled("shutting down");
    }
    ready_.clear();
  }
  watch_cv_.notify_all();
  work_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

Result<GetResult> Hedger::Run(const CancelTokenPtr& caller_cancel,
                              std::optional<Clock::duration> late_after,
                              const std::function<bool()>& may_hedge, const First& first,
                              Second second, size_t len, const Deliver& deliver, Outcome* outcome) {
  *outcome = Outcome::kNoHedge;
  if (!late_after || threads_.empty()) return first(caller_cancel);
  auto job = std::make_shared<Job>();
  job->caller_cancel = caller_cancel;
  job->may_hedge = &may_hedge;
  job->second = std::move(second);
  job->len = len;
  {
    std::lock_guard lock(mu_);
    if (stop_) return first(caller_cancel);
    job->watch = watches_.emplace(Clock::now() + *late_after, job);
    job->watching = true;
  }
  watch_cv_.notify_one();
  Result<GetResult> r = first(job->first_cancel);
  std::unique_lock lock(mu_);
  job->first_done = true;
  job->may_hedge = nullptr;
  if (job->watching) {
    watches_.erase(job->watch);
    job->watching = false;
  }
  if (!job->hedge_started) return r;
  if (r.ok()) {
    job->hedge_cancel->Cancel();
    *outcome = Outcome::kFirstWon;
    return r;
  }
  done_cv_.wait(lock, [&] { return job->hedge_done; });
  if (!job->hedge_result->ok()) {
    *outcome = Outcome::kBothFailed;
    return r;
  }
  Result<GetResult> hedged = std::move(*job->hedge_result);
  lock.unlock();
  deliver(job->buf.data(), hedged->bytes);
  *outcome = Outcome::kHedgeWon;
  return hedged;
}

void Hedger::WatchLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = Clock::now();
    // The caller's cancellation reaches both attempts.
    for (auto& [at, job] : watches_) {
      if (IsCancelled(job->caller_cancel)) job->first_cancel->Cancel();
    }
    for (auto& job : running_) {
      if (IsCancelled(job->caller_cancel)) {
        job->first_cancel->Cancel();
        job->hedge_cancel->Cancel();
      }
    }
    while (!watches_.empty() && watches_.begin()->first <= now) {
      std::shared_ptr<Job> job = watches_.begin()->second;
      watches_.erase(watches_.begin());
      job->watching = false;
      if (job->first_done || idle_ == 0 || IsCancelled(job->caller_cancel) ||
          !(*job->may_hedge)()) {
        continue;
      }
      job->hedge_started = true;
      --idle_;
      ready_.push_back(std::move(job));
      work_cv_.notify_one();
    }
    if (watches_.empty() && running_.empty()) {
      watch_cv_.wait(lock);
    } else {
      auto next = now + cancel_poll_;
      if (!watches_.empty()) next = std::min(next, watches_.begin()->first);
      watch_cv_.wait_until(lock, next);
    }
  }
}

void Hedger::WorkLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] { return stop_ || !ready_.empty(); });
    if (stop_) return;
    std::shared_ptr<Job> job = std::move(ready_.front());
    ready_.pop_front();
    running_.push_back(job);
    lock.unlock();
    job->buf.resize(job->len);
    Result<GetResult> r = job->second(job->hedge_cancel, job->buf.data(), job->len);
    if (r.ok() && r->bytes != job->len) r = Status::Transient("hedge: short read");
    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), job));
    if (r.ok() && !job->first_done) job->first_cancel->Cancel();  // the hedge is the answer
    job->hedge_result = std::move(r);
    job->hedge_done = true;
    ++idle_;
    done_cv_.notify_all();
  }
}

}  // namespace dsfs
