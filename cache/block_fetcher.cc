#include "cache/block_fetcher.h"

#include <algorithm>
#include <utility>

namespace dsfs {

BlockFetcher::BlockFetcher(ObjectStore& store, BlockCache* cache, const ReadAheadOptions& options,
                           Metrics* metrics)
    : store_(store),
      cache_(cache),
      block_size_(std::max<uint64_t>(options.block_size, 1)),
      buffers_(options.buffers),
      write_queue_max_(options.cache_write_queue) {
  if (metrics) {
    hits_metric_ =
        &metrics->GetCounter("dsfs_cache_hits_total", "Blocks served by the block cache");
    misses_metric_ =
        &metrics->GetCounter("dsfs_cache_misses_total", "Blocks not in the block cache");
    collapsed_metric_ = &metrics->GetCounter("dsfs_fetch_collapsed_total",
                                             "Block fetches that joined a GET already in flight");
    cache_errors_metric_ = &metrics->GetCounter("dsfs_cache_errors_total",
                                                "Block cache Get/Put errors (treated as misses)");
    cache_write_dropped_metric_ = &metrics->GetCounter(
        "dsfs_cache_write_dropped_total", "Fetched blocks not written to the cache (queue full)");
  }
  int threads = std::max(options.max_inflight, 1);
  workers_.reserve(threads);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
}

BlockFetcher::~BlockFetcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    // Nothing waits for a GET any more: abort the running ones so joining
    // the workers does not wait for whole transfers.
    for (auto& [key, entry] : inflight_) {
      if (entry->started) entry->cancel->Cancel();
    }
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  // Every fetch still queued fails: its waiters must not hang.
  InFlightMap left;
  {
    std::lock_guard lock(mu_);
    left.swap(inflight_);
    demand_queue_.clear();
    prefetch_queue_.clear();
  }
  for (auto& [key, entry] : left) {
    entry->promise.set_value(Status::Unavailable("block fetcher shutting down"));
  }
  {
    std::lock_guard lock(write_mu_);
    write_stopping_ = true;
  }
  write_cv_.notify_all();
  write_space_cv_.notify_all();
  writer_.join();
}

uint64_t BlockFetcher::BlockCount(const ObjectId& id) const {
  return (id.size + block_size_ - 1) / block_size_;
}

uint64_t BlockFetcher::BlockLength(const ObjectId& id, uint64_t index) const {
  uint64_t start = index * block_size_;
  if (index >= BlockCount(id)) return 0;
  return std::min(block_size_, id.size - start);
}

BlockFetcher::Future BlockFetcher::Fetch(const BlockKey& key, FetchPriority priority,
                                         bool check_cache) {
  std::unique_lock lock(mu_);
  auto it = inflight_.find(key);
  if (it != inflight_.end()) {
    ++stats_.collapsed;
    Bump(collapsed_metric_);
    InFlight& e = *it->second;
    Future f = e.future;  // copied under mu_: the entry may go once unlocked
    if (priority == FetchPriority::kDemand) e.demanded = true;
    if (priority == FetchPriority::kDemand && !e.started && !e.expedited) {
      e.expedited = true;
      demand_queue_.push_back(key);
      lock.unlock();
      work_cv_.notify_one();
    }
    return f;
  }
  if (stopping_) {
    std::promise<Result<BlockData>> p;
    p.set_value(Status::Unavailable("block fetcher shutting down"));
    return p.get_future().share();
  }
  auto entry = std::make_shared<InFlight>();
  entry->future = entry->promise.get_future().share();
  entry->check_cache = check_cache;
  entry->expedited = priority == FetchPriority::kDemand;
  entry->demanded = entry->expedited;
  inflight_.emplace(key, entry);
  (priority == FetchPriority::kDemand ? demand_queue_ : prefetch_queue_).push_back(key);
  Future f = entry->future;
  lock.unlock();
  work_cv_.notify_one();
  return f;
}

void BlockFetcher::Expedite(const BlockKey& key) {
  std::unique_lock lock(mu_);
  auto it = inflight_.find(key);
  if (it == inflight_.end()) return;
  it->second->demanded = true;
  if (it->second->started || it->second->expedited) return;
  it->second->expedited = true;
  demand_queue_.push_back(key);
  lock.unlock();
  work_cv_.notify_one();
}

CancelOutcome BlockFetcher::CancelPrefetch(const BlockKey& key, bool abort_running) {
  std::shared_ptr<InFlight> entry;
  {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(key);
    if (it == inflight_.end()) return CancelOutcome::kNotFound;
    if (it->second->demanded) return CancelOutcome::kKept;
    if (it->second->started) {
      if (!abort_running) return CancelOutcome::kKept;
      // Out of the map: a later Fetch of this block starts a new GET rather
      // than joining one that is being aborted.
      it->second->cancel->Cancel();
      inflight_.erase(it);
      ++stats_.cancelled_running;
      return CancelOutcome::kAborting;
    }
    // Queued: its queue slot goes stale (WorkerLoop skips keys not in the
    // map), so the GET is never issued.
    entry = std::move(it->second);
    inflight_.erase(it);
    ++stats_.cancelled_queued;
  }
  entry->promise.set_value(Status::Cancelled("read-ahead of block " + std::to_string(key.index) +
                                             " of '" + key.object.key + "' cancelled"));
  return CancelOutcome::kDequeued;
}

void BlockFetcher::EraseIfCurrentLocked(const BlockKey& key,
                                        const std::shared_ptr<InFlight>& entry) {
  auto it = inflight_.find(key);
  if (it != inflight_.end() && it->second == entry) inflight_.erase(it);
}

void BlockFetcher::WorkerLoop() {
  for (;;) {
    BlockKey key;
    std::shared_ptr<InFlight> entry;
    bool demand = false;  // a reader waits for it (fixed once started)
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(
          lock, [&] { return stopping_ || !demand_queue_.empty() || !prefetch_queue_.empty(); });
      if (stopping_) return;
      std::deque<BlockKey>& q = demand_queue_.empty() ? prefetch_queue_ : demand_queue_;
      key = std::move(q.front());
      q.pop_front();
      auto it = inflight_.find(key);
      // Stale queue slot: already started via the other queue, or
      // cancelled while queued.
      if (it == inflight_.end() || it->second->started) continue;
      entry = it->second;
      entry->started = true;
      demand = entry->expedited;
    }
    bool from_store = false;
    Result<BlockData> result = Load(key, *entry, &from_store);
    if (result.ok()) {
      BlockData data = *result;
      // An object without an ETag has no version to key its blocks by: it
      // is never written to the cache.
      const bool write = from_store && cache_ != nullptr && !key.object.etag.empty();
      if (write) {
        // Announced before the waiters wake: FlushCacheWrites() must wait
        // for this write even before it is queued.
        std::lock_guard lock(write_mu_);
        ++write_incoming_;
      }
      // Fulfil before queueing the cache write (which may wait) and before
      // leaving the map, so a Fetch that joins in between gets these bytes
      // instead of a second GET.
      entry->promise.set_value(std::move(result));
      if (write) QueueCacheWrite(key, std::move(data), /*may_wait=*/!demand);
      std::lock_guard lock(mu_);
      // A cancelled fetch already left the map; the key may be a new fetch.
      EraseIfCurrentLocked(key, entry);
    } else {
      // Leave the map first: a caller that sees the error and retries must
      // start a new GET, not join this failed one.
      {
        std::lock_guard lock(mu_);
        EraseIfCurrentLocked(key, entry);
      }
      entry->promise.set_value(std::move(result));
    }
  }
}

std::optional<BlockData> BlockFetcher::LookupCache(const BlockKey& key) {
  if (!cache_ || key.object.etag.empty()) {
    std::lock_guard lock(mu_);
    ++stats_.cache_misses;
    Bump(misses_metric_);
    return std::nullopt;
  }
  Result<std::optional<BlockData>> r = cache_->Get(key);
  std::lock_guard lock(mu_);
  if (!r.ok()) {
    ++stats_.cache_errors;
    Bump(cache_errors_metric_);
  } else if (r->has_value() && **r && (**r)->size() == BlockLength(key.object, key.index)) {
    ++stats_.cache_hits;
    Bump(hits_metric_);
    return **r;
  }
  // A block of the wrong length is treated as a miss (the store refills it).
  ++stats_.cache_misses;
  Bump(misses_metric_);
  return std::nullopt;
}

Result<BlockData> BlockFetcher::Load(const BlockKey& key, const InFlight& entry, bool* from_store) {
  if (entry.check_cache) {
    if (auto hit = LookupCache(key)) return *hit;
  }
  if (entry.cancel->cancelled()) {
    // Cancelled while it looked in the cache: no GET.
    return Status::Cancelled("read-ahead of block " + std::to_string(key.index) + " of '" +
                             key.object.key + "' cancelled");
  }
  *from_store = true;
  return GetFromStore(key, entry.cancel);
}

Result<BlockData> BlockFetcher::GetFromStore(const BlockKey& key, CancelTokenPtr cancel) {
  uint64_t len = BlockLength(key.object, key.index);
  if (len == 0) {
    return Status::InvalidArgument("block " + std::to_string(key.index) + " is past the end of '" +
                                   key.object.key + "'");
  }
  std::shared_ptr<Buffer> data = AllocateBuffer(buffers_, len);
  GetRequest req{.key = key.object.key,
                 .range = ByteRange{key.index * block_size_, len},
                 .if_match = key.object.etag,
                 .cancel = std::move(cancel)};
  {
    std::lock_guard lock(mu_);
    ++stats_.store_gets;
  }
  Result<GetResult> got = store_.Get(req, data->data(), len);
  if (!got.ok()) {
    return got.status().WithContext("block " + std::to_string(key.index) + " of '" +
                                    key.object.key + "'");
  }
  if (got->bytes != len) {
    return Status::Transient("short block " + std::to_string(key.index) + " of '" + key.object.key +
                             "'");
  }
  // The store checked the version against If-Match; this guards a store
  // that did not (a block is cached under key.object.etag).
  if (got->etag != key.object.etag) {
    return Status::PreconditionFailed("block " + std::to_string(key.index) + " of '" +
                                      key.object.key + "': store returned version '" + got->etag +
                                      "', not " + key.object.etag);
  }
  return BlockData(std::move(data));
}

void BlockFetcher::QueueCacheWrite(const BlockKey& key, BlockData data, bool may_wait) {
  {
    std::unique_lock lock(write_mu_);
    --write_incoming_;  // announced by the worker; now queued or dropped
    if (write_queue_.empty() && !write_busy_ && write_incoming_ == 0) {
      write_idle_cv_.notify_all();  // in case this write is dropped below
    }
    // Read-ahead waits (bounded) for room: it slows to the cache disk's
    // speed instead of leaving blocks out of the cache. A block a reader
    // waited for never waits here (its reader already has the bytes).
    if (may_wait && write_queue_.size() >= write_queue_max_) {
      write_space_cv_.wait_for(lock, kCacheWriteMaxWait, [&] {
        return write_stopping_ || write_queue_.size() < write_queue_max_;
      });
    }
    if (write_stopping_ || write_queue_.size() >= write_queue_max_) {
      ++put_dropped_;
      Bump(cache_write_dropped_metric_);
      return;
    }
    write_queue_.emplace_back(key, std::move(data));
  }
  write_cv_.notify_one();
}

void BlockFetcher::WriterLoop() {
  std::unique_lock lock(write_mu_);
  for (;;) {
    write_cv_.wait(lock, [&] { return write_stopping_ || !write_queue_.empty(); });
    if (write_queue_.empty()) {
      // Stopping and drained.
      write_idle_cv_.notify_all();
      return;
    }
    auto [key, data] = std::move(write_queue_.front());
    write_queue_.pop_front();
    write_space_cv_.notify_all();
    write_busy_ = true;
    lock.unlock();
    Status st = cache_->Put(key, std::move(data));
    lock.lock();
    write_busy_ = false;
    if (st.ok()) {
      ++puts_;
    } else {
      ++put_errors_;
      Bump(cache_errors_metric_);
    }
    if (write_queue_.empty() && write_incoming_ == 0) write_idle_cv_.notify_all();
  }
}

void BlockFetcher::FlushCacheWrites() {
  std::unique_lock lock(write_mu_);
  write_idle_cv_.wait(lock,
                      [&] { return write_queue_.empty() && !write_busy_ && write_incoming_ == 0; });
}

FetcherStats BlockFetcher::stats() const {
  FetcherStats s;
  {
    std::lock_guard lock(mu_);
    s = stats_;
  }
  std::lock_guard lock(write_mu_);
  s.put_errors = put_errors_;
  s.put_dropped = put_dropped_;
  s.puts = puts_;
  return s;
}

}  // namespace dsfs
