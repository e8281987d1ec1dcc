#include "backends/bounded_store.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "common/buffer.h"

namespace dsfs {

struct BoundedStore::Shared {
  std::shared_ptr<ObjectStore> owned;  // kept alive for detached workers
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;  // guarded by mu
  int idle = 0;                             // guarded by mu: workers waiting for work
  int running = 0;                          // guarded by mu: workers alive
  bool stop = false;                        // guarded by mu
  std::condition_variable exited_cv;
  std::atomic<uint64_t> timeouts{0};
  // Scratch buffers of ranged reads, one per busy worker at most.
  BufferPool scratch;

  explicit Shared(int workers) : scratch(kChunk, static_cast<size_t>(workers)) {}

  void Loop() {
    std::unique_lock lock(mu);
    while (true) {
      ++idle;
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      --idle;
      if (queue.empty()) break;  // stop
      auto task = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
    --running;
    exited_cv.notify_all();
  }
};

namespace {

// One request's result, shared by the caller and the worker.
template <typename T>
struct Slot {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<T>> result;  // guarded by mu
};

}  // namespace

BoundedStore::BoundedStore(ObjectStore& inner, int workers, std::chrono::milliseconds deadline)
    : inner_(&inner), deadline_(deadline), shared_(std::make_shared<Shared>(std::max(1, workers))) {
  const int n = std::max(1, workers);
  shared_->running = n;
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([shared = shared_] { shared->Loop(); });
  }
}

BoundedStore::BoundedStore(std::unique_ptr<ObjectStore> inner, int workers,
                           std::chrono::milliseconds deadline)
    : BoundedStore(*inner, workers, deadline) {
  shared_->owned = std::shared_ptr<ObjectStore>(std::move(inner));
}

BoundedStore::~BoundedStore() {
  std::unique_lock lock(shared_->mu);
  shared_->stop = true;
  shared_->queue.clear();
  shared_->cv.notify_all();
  // A worker stuck in the inner store (a hung NFS read) may never return.
  const bool all_exited = shared_->exited_cv.wait_for(
      lock, std::chrono::seconds(1), [&] { return shared_->running == 0; });
  lock.unlock();
  for (auto& t : threads_) {
    if (all_exited) {
      t.join();
    } else {
      t.detach();
    }
  }
}

uint64_t BoundedStore::timeouts() const { return shared_->timeouts.load(); }

template <typename T>
Result<T> BoundedStore::Run(std::function<Result<T>()> fn, const std::string& what,
                            const CancelTokenPtr& cancel) {
  auto slot = std::make_shared<Slot<T>>();
  {
    std::lock_guard lock(shared_->mu);
    // Every worker is busy (hung on the share, most likely) and work is
    // already waiting: do not queue behind them.
    if (shared_->idle == 0 && !shared_->queue.empty()) {
      ++shared_->timeouts;
      return Status::Unavailable(what + ": " + inner_->Describe() +
                                 " is not answering (all share workers busy)");
    }
    shared_->queue.push_back([slot, fn = std::move(fn)] {
      Result<T> r = fn();
      std::lock_guard l(slot->mu);
      slot->result.emplace(std::move(r));
      slot->cv.notify_all();
    });
  }
  shared_->cv.notify_one();
  std::unique_lock lock(slot->mu);
  const auto give_up = std::chrono::steady_clock::now() + deadline_;
  auto done = [&] { return slot->result.has_value(); };
  while (cancel && !done() && std::chrono::steady_clock::now() < give_up) {
    if (IsCancelled(cancel)) return Status::Cancelled(what + ": cancelled");
    slot->cv.wait_until(lock, std::min(give_up, std::chrono::steady_clock::now() + kCancelPoll),
                        done);
  }
  if (!slot->cv.wait_until(lock, give_up, done)) {
    ++shared_->timeouts;
    return Status::Unavailable(what + ": " + inner_->Describe() + " did not answer within " +
                               std::to_string(deadline_.count()) + " ms");
  }
  return std::move(*slot->result);
}

Result<ObjectInfo> BoundedStore::Head(const std::string& key) {
  ObjectStore* inner = inner_;
  return Run<ObjectInfo>([inner, key] { return inner->Head(key); }, "HEAD '" + key + "'");
}

Result<ListPage> BoundedStore::List(const ListRequest& request) {
  ObjectStore* inner = inner_;
  return Run<ListPage>([inner, request] { return inner->List(request); },
                       "LIST '" + request.prefix + "'");
}

struct BoundedStore::Destination {
  std::mutex mu;
  bool open = true;  // guarded by mu: the caller still waits
  std::vector<GetPart> parts;
};

Result<GetResult> BoundedStore::ChunkedGet(const GetRequest& request,
                                           std::span<const GetPart> parts) {
  auto dest = std::make_shared<Destination>();
  dest->parts.assign(parts.begin(), parts.end());
  ObjectStore* inner = inner_;
  std::shared_ptr<Shared> shared = shared_;
  // Chunks, re-pinned: no early hand-out (and the worker may outlive the
  // caller's callback).
  GetRequest pinned = request;
  pinned.on_parts_done = nullptr;
  auto read = [inner, shared, dest, request = std::move(pinned)]() -> Result<GetResult> {
    const uint64_t total = request.range->length;
    auto scratch = shared->scratch.Allocate(static_cast<size_t>(std::min<uint64_t>(kChunk, total)));
    GetRequest sub = request;
    GetResult out;
    for (uint64_t done = 0; done < total;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, total - done));
      sub.range = ByteRange{request.range->offset + done, n};
      DSFS_ASSIGN_OR_RETURN(GetResult r, inner->Get(sub, scratch->data(), n));
      if (r.bytes != n) {
        return Status::IoError("short read of '" + request.key + "' in " + inner->Describe());
      }
      if (done == 0) {
        out = r;
        sub.if_match = r.etag;  // the rest from the same version
      }
      std::lock_guard lock(dest->mu);
      if (!dest->open) return Status::Cancelled("GET '" + request.key + "': the caller left");
      CopyIntoParts(dest->parts, done, scratch->data(), n);
      done += n;
    }
    out.bytes = static_cast<size_t>(total);
    return out;
  };
  auto r = Run<GetResult>(read, "GET '" + request.key + "'", request.cancel);
  std::lock_guard lock(dest->mu);
  dest->open = false;  // from here the worker writes nothing of the caller's
  return r;
}

Result<GetResult> BoundedStore::GetParts(const GetRequest& request,
                                         std::span<const GetPart> parts) {
  if (!request.range) return ObjectStore::GetParts(request, parts);
  size_t total = 0;
  for (const GetPart& p : parts) total += p.length;
  if (total < request.range->length) return Status::InvalidArgument("buffers too small for GET");
  return ChunkedGet(request, parts);
}

Result<GetResult> BoundedStore::Get(const GetRequest& request, char* buf, size_t buf_len) {
  if (request.range) {
    if (buf_len < request.range->length) return Status::InvalidArgument("buffer too small for GET");
    const GetPart whole{buf, static_cast<size_t>(request.range->length)};
    return ChunkedGet(request, std::span<const GetPart>(&whole, 1));
  }
  ObjectStore* inner = inner_;
  // The worker reads into its own buffer: if it returns after the caller
  // gave up, it writes nothing the caller still owns.
  auto own = Buffer::Allocate(buf_len);
  auto r = Run<GetResult>(
      [inner, request, own] { return inner->Get(request, own->data(), own->size()); },
      "GET '" + request.key + "'", request.cancel);
  if (r.ok()) std::memcpy(buf, own->data(), std::min(r->bytes, buf_len));
  return r;
}

}  // namespace dsfs
