// BoundedStore: runs every request of another store on its own small pool
// of threads and waits for each at most `deadline`.
//
// For the SFS share: an NFS hard mount that stops answering blocks the
// thread that reads it, in the kernel, for as long as the server is gone.
// Without this wrapper that thread is a FUSE worker, and a few hung reads
// take every worker and so the whole mount. With it, the FUSE thread waits
// at most `deadline` and gets Unavailable ("did not answer"); the stuck
// pool thread finishes (or not) on its own, and while all `workers` threads
// are stuck new requests fail at once instead of queueing behind them.
//
// A Get reads into a buffer of the task's own and is copied to the caller's
// buffer only after it completed in time: a read that returns after the
// caller gave up never writes into memory the caller has reused. A Get whose
// cancel token is cancelled stops waiting within kCancelPoll (the worker
// finishes on its own).
//
// Thread-safe. One mutex (mu_) guards the queue; each request's result has
// its own (leaf) mutex. No store call runs under either.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/object_store.h"

namespace dsfs {

class BoundedStore : public ObjectStore {
 public:
  // inner must outlive this store (or be owned: the other constructor).
  BoundedStore(ObjectStore& inner, int workers, std::chrono::milliseconds deadline);
  BoundedStore(std::unique_ptr<ObjectStore> inner, int workers,
               std::chrono::milliseconds deadline);
  // Joins the workers that finish within a second; a worker still blocked
  // in the inner store is detached (it keeps an owned inner store and the
  // shared queue alive until it returns).
  ~BoundedStore() override;
  BoundedStore(const BoundedStore&) = delete;
  BoundedStore& operator=(const BoundedStore&) = delete;

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  std::string Describe() const override { return inner_->Describe(); }

  // Requests that missed the deadline or found every worker stuck.
  uint64_t timeouts() const;

 private:
  struct Shared;  // queue and workers' state, shared with detached workers
  template <typename T>
  // Waits for fn at most the deadline, and stops waiting (Cancelled) once
  // `cancel` is cancelled (a hedged read whose other source answered).
  Result<T> Run(std::function<Result<T>()> fn, const std::string& what,
                const CancelTokenPtr& cancel = nullptr);

  // How often a waiting Get checks its cancel token.
  static constexpr std::chrono::milliseconds kCancelPoll{10};

  ObjectStore* inner_;
  const std::chrono::milliseconds deadline_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace dsfs
