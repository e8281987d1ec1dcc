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
// A ranged Get or GetParts is read by the worker in chunks of kChunk bytes
// into a scratch buffer of its own (from a small pool: no fresh pages per
// read), each chunk then copied into the caller's buffers under the call's
// lock while the caller still waits; the caller closes that window before
// it returns, so a read that returns after the caller gave up never writes
// into memory the caller has reused. Every chunk after the first is pinned
// (If-Match) to the version the first one returned: one version per call.
// An unranged Get reads the whole object into a buffer of the task's own,
// copied out once it completed in time. A Get whose cancel token is
// cancelled stops waiting within kCancelPoll (the worker finishes on its
// own).
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
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override;
  std::string Describe() const override { return inner_->Describe(); }

  // Requests that missed the deadline or found every worker stuck.
  uint64_t timeouts() const;

 private:
  struct Shared;  // queue and workers' state, shared with detached workers
  struct Destination;  // one ranged read's buffers, while the caller waits
  // What a worker reads per inner Get of a ranged read: large enough that
  // the per-call cost (open, fstat on the share) is small against the
  // transfer, small enough that a scratch buffer per worker is cheap.
  static constexpr size_t kChunk = 4u << 20;
  Result<GetResult> ChunkedGet(const GetRequest& request, std::span<const GetPart> parts);
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
