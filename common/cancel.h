// CancelToken: a flag one thread sets and the threads doing work for it
// poll, so that work nobody waits for any more (a read-ahead of a closed
// file, a read the kernel interrupted, a shutdown) stops at its next
// check instead of running to its deadline.
//
// A token is shared (std::shared_ptr) between whoever may cancel and the
// work in progress; checking it is one atomic load. Cancel() is idempotent
// and never un-done: a new piece of work takes a new token.
#pragma once

#include <atomic>
#include <memory>

namespace dsfs {

class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

using CancelTokenPtr = std::shared_ptr<const CancelToken>;

// Whether a (possibly null) token was cancelled.
inline bool IsCancelled(const CancelTokenPtr& token) { return token && token->cancelled(); }

}  // namespace dsfs
