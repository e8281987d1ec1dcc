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
      write_queue_max_(std::max<size_t>(options.cache_write_queue, 1)),
      backfill_on_(options.cache_backfill),
      deferred_max_(options.cache_deferred_max),
      max_get_blocks_(std::max<uint64_t>(options.max_get_size / block_size_, 1)),
      split_(options.warm_split),
      recent_(options.recent_blocks_mem) {
  if (metrics) {
    hits_metric_ =
        &metrics->GetCounter("dsfs_cache_hits_total", "Blocks served by the block cache");
    misses_metric_ =
        &metrics->GetCounter("dsfs_cache_misses_total", "Blocks not in the block cache");
    recent_hits_metric_ = &metrics->GetCounter(
        "dsfs_cache_recent_hits_total",
        "Cache hits served by a block a recent lookup read from the disk (no disk read)");
    collapsed_metric_ = &metrics->GetCounter("dsfs_fetch_collapsed_total",
                                             "Block fetches that joined a GET already in flight");
    cache_errors_metric_ = &metrics->GetCounter("dsfs_cache_errors_total",
                                                "Block cache Get/Put errors (treated as misses)");
    cache_write_dropped_metric_ = &metrics->GetCounter(
        "dsfs_cache_write_dropped_total",
        "Fetched blocks never written to the cache (write queue full, nothing deferred)");
    cache_write_deferred_metric_ = &metrics->GetCounter(
        "dsfs_cache_write_deferred_total",
        "Fetched blocks that found the cache write queue full (deferred to the backfill)");
    backfill_metric_ = &metrics->GetCounter(
        "dsfs_cache_backfill_blocks_total",
        "Deferred blocks fetched again while idle and offered to the cache");
    diverted_metric_ = &metrics->GetCounter(
        "dsfs_cache_diverted_blocks_total",
        "Cached blocks fetched from the store because the cache disk was slower (warm_split)");
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

bool BlockFetcher::CurrentLocked(const ObjectId& object,
                                 const std::shared_ptr<InFlight>& entry) const {
  auto it = inflight_.find(BlockKey{object, entry->index});
  return it != inflight_.end() && it->second == entry;
}

void BlockFetcher::ExpediteLocked(const ObjectId& object, const std::shared_ptr<InFlight>& entry) {
  entry->expedited = true;
  entry->demanded = true;
  entry->cancel_asked = false;
  JobPtr job = entry->job.lock();
  if (!job || job->blocks.size() != 1) {
    // Out of its run: the reader waits for this block only, not for a GET
    // of the whole run (the run's queue slot skips it now).
    job = std::make_shared<Job>();
    job->object = object;
    job->blocks.push_back(entry);
    entry->job = job;
  }
  demand_queue_.push_back(std::move(job));
}

BlockFetcher::Future BlockFetcher::Fetch(const BlockKey& key, FetchPriority priority,
                                         bool check_cache) {
  std::unique_lock lock(mu_);
  auto it = inflight_.find(key);
  if (it != inflight_.end()) {
    ++stats_.collapsed;
    Bump(collapsed_metric_);
    std::shared_ptr<InFlight> e = it->second;
    Future f = e->future;  // copied under mu_: the entry may go once unlocked
    if (priority == FetchPriority::kDemand) {
      e->demanded = true;
      e->cancel_asked = false;
      if (!e->started && !e->expedited) {
        ExpediteLocked(key.object, e);
        lock.unlock();
        work_cv_.notify_one();
      }
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
  entry->index = key.index;
  entry->check_cache = check_cache;
  entry->expedited = priority == FetchPriority::kDemand;
  entry->demanded = entry->expedited;
  auto job = std::make_shared<Job>();
  job->object = key.object;
  job->blocks.push_back(entry);
  entry->job = job;
  inflight_.emplace(key, entry);
  (priority == FetchPriority::kDemand ? demand_queue_ : prefetch_queue_).push_back(std::move(job));
  Future f = entry->future;
  lock.unlock();
  work_cv_.notify_one();
  return f;
}

std::vector<BlockFetcher::Future> BlockFetcher::FetchRun(const BlockKey& first, uint64_t count) {
  std::vector<Future> out;
  out.reserve(count);
  int queued = 0;
  {
    std::lock_guard lock(mu_);
    JobPtr job;
    auto flush = [&] {
      if (!job) return;
      prefetch_queue_.push_back(std::move(job));
      job.reset();
      ++queued;
    };
    for (uint64_t i = 0; i < count; ++i) {
      const BlockKey key{first.object, first.index + i};
      auto it = inflight_.find(key);
      if (it != inflight_.end()) {
        // Already in flight (a reader's miss, a GET left running): joined;
        // the run goes on in a new job after it.
        ++stats_.collapsed;
        Bump(collapsed_metric_);
        out.push_back(it->second->future);
        flush();
        continue;
      }
      if (stopping_) {
        std::promise<Result<BlockData>> p;
        p.set_value(Status::Unavailable("block fetcher shutting down"));
        out.push_back(p.get_future().share());
        continue;
      }
      auto entry = std::make_shared<InFlight>();
      entry->future = entry->promise.get_future().share();
      entry->index = key.index;
      if (!job) {
        job = std::make_shared<Job>();
        job->object = key.object;
      }
      job->blocks.push_back(entry);
      entry->job = job;
      inflight_.emplace(key, entry);
      out.push_back(entry->future);
    }
    flush();
  }
  if (queued == 1) {
    work_cv_.notify_one();
  } else if (queued > 1) {
    work_cv_.notify_all();
  }
  return out;
}

void BlockFetcher::Expedite(const BlockKey& key) {
  std::unique_lock lock(mu_);
  auto it = inflight_.find(key);
  if (it == inflight_.end()) return;
  std::shared_ptr<InFlight> e = it->second;
  e->demanded = true;
  e->cancel_asked = false;
  if (e->started || e->expedited) return;
  ExpediteLocked(key.object, e);
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
      std::shared_ptr<InFlight> e = it->second;
      e->cancel_asked = true;
      // One GET may carry other blocks: it is aborted only when none of
      // them is wanted any more.
      const JobPtr job = e->job.lock();
      if (job) {
        for (const auto& b : job->blocks) {
          if (CurrentLocked(key.object, b) && (!b->cancel_asked || b->demanded)) {
            return CancelOutcome::kKept;
          }
        }
      }
      // Out of the map: a later Fetch of these blocks starts a new GET
      // rather than joining one that is being aborted.
      e->cancel->Cancel();
      if (job) {
        for (const auto& b : job->blocks) {
          if (b != e && CurrentLocked(key.object, b))
            inflight_.erase(BlockKey{key.object, b->index});
        }
      }
      inflight_.erase(key);
      ++stats_.cancelled_running;
      return CancelOutcome::kAborting;
    }
    // Queued: its job skips it (no longer in the map), so it is never
    // fetched.
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

BlockFetcher::JobPtr BlockFetcher::TakeLocked(const JobPtr& job, std::deque<JobPtr>& queue) {
  std::vector<std::shared_ptr<InFlight>> taken;
  size_t i = 0;
  auto live = [&](const std::shared_ptr<InFlight>& b) {
    return b->job.lock() == job && !b->started && CurrentLocked(job->object, b);
  };
  for (; i < job->blocks.size(); ++i) {
    const auto& b = job->blocks[i];
    if (!live(b)) {
      if (!taken.empty()) break;  // a hole: the rest is another GET
      continue;
    }
    taken.push_back(b);
  }
  // What is left after the hole goes back first in line, as its own job.
  JobPtr rest;
  for (; i < job->blocks.size(); ++i) {
    const auto& b = job->blocks[i];
    if (!live(b)) continue;
    if (rest && rest->blocks.back()->index + 1 != b->index) queue.push_front(std::move(rest));
    if (!rest) {
      rest = std::make_shared<Job>();
      rest->object = job->object;
    }
    rest->blocks.push_back(b);
    b->job = rest;
  }
  if (rest) queue.push_front(std::move(rest));
  if (taken.empty()) return nullptr;
  // The running GET's job: exactly these blocks, one token.
  auto running = std::make_shared<Job>();
  running->object = job->object;
  running->blocks = std::move(taken);
  auto token = std::make_shared<CancelToken>();
  for (auto& b : running->blocks) {
    b->started = true;
    b->job = running;
    b->cancel = token;
  }
  return running;
}

void BlockFetcher::WorkerLoop() {
  for (;;) {
    JobPtr running;
    bool demand = false;  // a reader waits for it (fixed once started)
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(
          lock, [&] { return stopping_ || !demand_queue_.empty() || !prefetch_queue_.empty(); });
      if (stopping_) return;
      std::deque<JobPtr>& q = demand_queue_.empty() ? prefetch_queue_ : demand_queue_;
      JobPtr job = std::move(q.front());
      q.pop_front();
      // Stale slots (started via the other queue, cancelled, or moved to
      // another job) are skipped.
      running = TakeLocked(job, q);
      if (!running) continue;
      if (!q.empty()) work_cv_.notify_one();  // TakeLocked may have queued the rest
      for (const auto& b : running->blocks) demand = demand || b->expedited;
    }
    RunJob(running, demand);
  }
}

void BlockFetcher::Requeue(const ObjectId& object,
                           std::span<const std::shared_ptr<InFlight>> blocks, bool singles,
                           bool demand) {
  std::vector<std::shared_ptr<InFlight>> aborted;
  {
    std::lock_guard lock(mu_);
    std::deque<JobPtr>& q = demand ? demand_queue_ : prefetch_queue_;
    JobPtr run;
    // Back to front, each job pushed to the front: they keep their order.
    for (size_t i = blocks.size(); i-- > 0;) {
      const auto& b = blocks[i];
      if (!CurrentLocked(object, b) || (b->cancel_asked && !b->demanded)) {
        // Aborted, or let go by its stream while it ran: not fetched;
        // nobody else completes it.
        EraseIfCurrentLocked(BlockKey{object, b->index}, b);
        aborted.push_back(b);
        continue;
      }
      if (singles || !run || run->blocks.front()->index != b->index + 1) {
        if (run) q.push_front(std::move(run));
        run = std::make_shared<Job>();
        run->object = object;
      }
      run->blocks.insert(run->blocks.begin(), b);
      b->job = run;
      b->started = false;
      b->cancel = std::make_shared<CancelToken>();
    }
    if (run) q.push_front(std::move(run));
  }
  work_cv_.notify_all();
  for (const auto& b : aborted) {
    b->promise.set_value(Status::Cancelled("read-ahead of block " + std::to_string(b->index) +
                                           " of '" + object.key + "' cancelled"));
  }
}

void BlockFetcher::RunJob(const JobPtr& job, bool demand) {
  const ObjectId& object = job->object;
  std::span<const std::shared_ptr<InFlight>> blocks = job->blocks;
  if (blocks.size() == 1 && blocks.front()->check_cache &&
      Cached(BlockKey{object, blocks.front()->index}) &&
      split_.ShouldDivert(ReadSplit::Clock::now())) {
    // A warm block while the disk is the slower source: from the store;
    // if that fails, from the disk after all.
    std::vector<Result<BlockData>> r =
        GetFromStore(object, blocks.front()->index, 1, blocks.front()->cancel);
    if (r.front().ok() || r.front().status().code() == StatusCode::kCancelled) {
      if (r.front().ok()) {
        std::lock_guard lock(mu_);
        ++stats_.diverted;
        Bump(diverted_metric_);
      }
      Complete(object, {blocks.begin(), blocks.end()}, std::move(r), /*from_store=*/true);
      return;
    }
  }
  if (blocks.front()->check_cache) {
    // The GET covers the blocks before the first one the cache has: a run
    // is never fetched over blocks already cached (a cache with holes, e.g.
    // after a crash mid-fill).
    size_t misses = 0;
    for (; misses < blocks.size(); ++misses) {
      auto hit = LookupCache(BlockKey{object, blocks[misses]->index});
      if (!hit) continue;
      std::vector<Result<BlockData>> r;
      r.emplace_back(std::move(*hit));
      Complete(object, {blocks[misses]}, std::move(r), /*from_store=*/false);
      // A cached first block: most likely a warm read; the others go back
      // one by one, so several workers read the disk. After misses: the
      // rest goes back as a run, to be looked at the same way.
      if (misses + 1 < blocks.size()) {
        Requeue(object, blocks.subspan(misses + 1), /*singles=*/misses == 0, demand);
      }
      if (misses == 0) return;
      blocks = blocks.first(misses);
      break;
    }
  }
  if (blocks.front()->cancel->cancelled()) {
    // Cancelled while it looked in the cache: no GET.
    std::vector<Result<BlockData>> r;
    for (const auto& b : blocks) {
      r.emplace_back(Status::Cancelled("read-ahead of block " + std::to_string(b->index) + " of '" +
                                       object.key + "' cancelled"));
    }
    Complete(object, {blocks.begin(), blocks.end()}, std::move(r), /*from_store=*/false);
    return;
  }
  size_t handed_out = 0;
  auto early = [&](size_t i, BlockData data) {
    {
      std::lock_guard lock(mu_);
      ++stats_.early_blocks;  // counted before its readers wake
    }
    std::vector<Result<BlockData>> one;
    one.emplace_back(std::move(data));
    Complete(object, {blocks[i]}, std::move(one), /*from_store=*/true);
  };
  std::vector<Result<BlockData>> r = GetFromStore(object, blocks.front()->index, blocks.size(),
                                                  blocks.front()->cancel, early, &handed_out);
  if (handed_out == 0) {
    Complete(object, {blocks.begin(), blocks.end()}, std::move(r), /*from_store=*/true);
    return;
  }
  if (handed_out >= blocks.size()) return;
  // Some blocks went out before the GET failed (the store retries nothing
  // once a block is out): the rest gets a GET of its own, retried and
  // failed over as any. Each round hands out at least one block, so this
  // ends. A cancelled GET's blocks fail as they would have.
  std::span<const std::shared_ptr<InFlight>> rest = blocks.subspan(handed_out);
  const Result<BlockData>& first_left = r[handed_out];
  if (first_left.ok() || first_left.status().code() == StatusCode::kCancelled) {
    Complete(object, {rest.begin(), rest.end()},
             std::vector<Result<BlockData>>(std::make_move_iterator(r.begin() + handed_out),
                                            std::make_move_iterator(r.end())),
             /*from_store=*/true);
    return;
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.early_refetches;
  }
  Requeue(object, rest, /*singles=*/false, demand);
}

void BlockFetcher::Complete(const ObjectId& object,
                            const std::vector<std::shared_ptr<InFlight>>& blocks,
                            std::vector<Result<BlockData>> results, bool from_store) {
  // An object without an ETag has no version to key its blocks by: it is
  // never written to the cache.
  const bool cacheable = from_store && cache_ != nullptr && !object.etag.empty();
  std::vector<std::pair<BlockKey, BlockData>> writes;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const BlockKey key{object, blocks[i]->index};
      if (!results[i].ok()) {
        // Leave the map first: a caller that sees the error and retries
        // must start a new GET, not join this failed one.
        EraseIfCurrentLocked(key, blocks[i]);
      } else if (cacheable) {
        writes.emplace_back(key, *results[i]);
      }
    }
  }
  // A diverted block, or one a backfill found cached, is not written
  // twice (looked up without mu_: the cache has its own lock).
  std::erase_if(writes, [&](const auto& w) { return cache_->Contains(w.first); });
  if (!writes.empty()) {
    // Announced before the waiters wake: FlushCacheWrites() must wait for
    // these writes even before they are queued.
    std::lock_guard lock(write_mu_);
    write_incoming_ += static_cast<int>(writes.size());
  }
  // Fulfilled before queueing the cache writes and before leaving the map,
  // so a Fetch that joins in between gets these bytes instead of a second
  // GET.
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i]->promise.set_value(std::move(results[i]));
  for (auto& [key, data] : writes) QueueCacheWrite(key, std::move(data));
  std::lock_guard lock(mu_);
  // A cancelled fetch already left the map; the key may be a new fetch.
  for (const auto& b : blocks) EraseIfCurrentLocked(BlockKey{object, b->index}, b);
}

std::optional<BlockData> BlockFetcher::LookupCache(const BlockKey& key) {
  return CountedLookup(key, BlockLength(key.object, key.index), [&] { return cache_->Get(key); },
                       /*whole=*/true);
}

std::optional<BlockData> BlockFetcher::LookupCacheRange(const BlockKey& key, uint64_t offset,
                                                        size_t len) {
  const uint64_t block = BlockLength(key.object, key.index);
  const uint64_t want = offset >= block ? 0 : std::min<uint64_t>(len, block - offset);
  return CountedLookup(key, want, [&] { return cache_->GetRange(key, offset, len); },
                       /*whole=*/false);
}

std::optional<BlockData> BlockFetcher::LookupRecent(const BlockKey& key) {
  if (!cache_ || key.object.etag.empty()) return std::nullopt;
  std::optional<BlockData> hit = recent_.Find(key);
  if (!hit) return std::nullopt;
  std::lock_guard lock(mu_);
  ++stats_.cache_hits;
  ++stats_.recent_hits;
  Bump(hits_metric_);
  Bump(recent_hits_metric_);
  return hit;
}

std::optional<BlockData> BlockFetcher::CountedLookup(
    const BlockKey& key, uint64_t want,
    const std::function<Result<std::optional<BlockData>>()>& get, bool whole) {
  if (!cache_ || key.object.etag.empty()) {
    std::lock_guard lock(mu_);
    ++stats_.cache_misses;
    Bump(misses_metric_);
    return std::nullopt;
  }
  auto from_disk = [&] {
    split_.DiskReadStarted();
    const auto start = ReadSplit::Clock::now();
    Result<std::optional<BlockData>> r = get();
    split_.DiskReadDone(r.ok() && r->has_value() && **r ? (**r)->size() : 0,
                        ReadSplit::Clock::now() - start);
    return r;
  };
  // A whole block read from the disk is kept for the requests that follow
  // (several FUSE requests read one block); concurrent lookups share one read.
  bool from_memory = false;
  Result<std::optional<BlockData>> r =
      whole ? recent_.GetOrLoad(key, want, from_disk, &from_memory) : from_disk();
  std::lock_guard lock(mu_);
  if (!r.ok()) {
    ++stats_.cache_errors;
    Bump(cache_errors_metric_);
  } else if (r->has_value() && **r && (**r)->size() == want) {
    ++stats_.cache_hits;
    Bump(hits_metric_);
    if (from_memory) {
      ++stats_.recent_hits;
      Bump(recent_hits_metric_);
    }
    return **r;
  }
  // Bytes of the wrong length are treated as a miss (the store refills the block).
  ++stats_.cache_misses;
  Bump(misses_metric_);
  return std::nullopt;
}

std::vector<Result<BlockData>> BlockFetcher::GetFromStore(const ObjectId& object, uint64_t first,
                                                          uint64_t count, CancelTokenPtr cancel,
                                                          const EarlyBlock& early,
                                                          size_t* handed_out) {
  if (handed_out != nullptr) *handed_out = 0;
  auto all = [&](const Status& st) {
    return std::vector<Result<BlockData>>(count, Result<BlockData>(st));
  };
  const std::string what =
      (count == 1 ? "block " + std::to_string(first)
                  : "blocks " + std::to_string(first) + "-" + std::to_string(first + count - 1)) +
      " of '" + object.key + "'";
  std::vector<std::shared_ptr<Buffer>> bufs;
  std::vector<GetPart> parts;
  uint64_t total = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t len = BlockLength(object, first + i);
    if (len == 0) return all(Status::InvalidArgument(what + " is past the end"));
    bufs.push_back(AllocateBuffer(buffers_, len));
    parts.push_back(GetPart{bufs.back()->data(), len});
    total += len;
  }
  GetRequest req{.key = object.key,
                 .range = ByteRange{first * block_size_, total},
                 .if_match = object.etag,
                 .cancel = std::move(cancel)};
  size_t given = 0;
  if (early && count > 1 && handed_out != nullptr) {
    // Each block goes to its readers as soon as its bytes are in, not when
    // the whole GET ends (a run of 16 blocks otherwise holds the first one
    // back for the other 15).
    req.on_parts_done = [&](size_t n) {
      for (; given < n && given < count; ++given) early(given, BlockData(bufs[given]));
      *handed_out = given;
    };
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.store_gets;
    if (count > 1) ++stats_.run_gets;
    stats_.store_blocks += count;
  }
  // One block: Get (every store has it); several: straight into each
  // block's buffer where the store can.
  const auto start = ReadSplit::Clock::now();
  Result<GetResult> got =
      count == 1 ? store_.Get(req, parts[0].data, parts[0].length) : store_.GetParts(req, parts);
  if (!got.ok()) return all(got.status().WithContext(what));
  const auto end = ReadSplit::Clock::now();
  split_.StoreGetDone(got->bytes, end - start, end);
  if (got->bytes != total) return all(Status::Transient("short " + what));
  // The store checked the version against If-Match; this guards a store
  // that did not (a block is cached under object.etag).
  if (got->etag != object.etag) {
    return all(Status::PreconditionFailed(what + ": store returned version '" + got->etag +
                                          "', not " + object.etag));
  }
  std::vector<Result<BlockData>> out;
  out.reserve(count);
  for (auto& b : bufs) out.emplace_back(BlockData(std::move(b)));
  return out;
}

void BlockFetcher::QueueCacheWrite(const BlockKey& key, BlockData data) {
  {
    std::lock_guard lock(write_mu_);
    --write_incoming_;  // announced by the worker; now queued, deferred or dropped
    if (write_queue_.size() >= write_queue_max_ || write_stopping_) {
      // Never waits: the reader and the read-ahead go on at the network's
      // speed; the block is written later, or not at all.
      if (backfill_on_ && !write_stopping_ && deferred_.size() < deferred_max_) {
        if (deferred_.try_emplace(key, data).second) {
          ++put_deferred_;
          Bump(cache_write_deferred_metric_);
        }
      } else {
        ++put_dropped_;
        Bump(cache_write_dropped_metric_);
      }
      if (write_queue_.empty() && !write_busy_ && write_incoming_ == 0) {
        write_idle_cv_.notify_all();
      }
      return;
    }
    write_queue_.emplace_back(key, std::move(data));
  }
  write_cv_.notify_one();
}

bool BlockFetcher::Idle() const {
  std::lock_guard lock(mu_);
  return !stopping_ && inflight_.empty();
}

bool BlockFetcher::StartBackfill() {
  // The previous backfill GET first (its blocks come back through
  // Complete and the write queue).
  for (const Future& f : backfill_) {
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  }
  backfill_.clear();
  if (!Idle()) return false;
  BlockKey first;
  uint64_t count = 0;
  {
    std::lock_guard lock(write_mu_);
    if (write_stopping_ || !write_queue_.empty()) return false;
    // The first deferred block not cached meanwhile, and the deferred blocks
    // right after it, as one run of at most a queue's worth (it must fit
    // the queue) and max_get_size.
    const uint64_t limit = std::min<uint64_t>(write_queue_max_, max_get_blocks_);
    while (!deferred_.empty()) {
      auto it = deferred_.begin();
      if (count == 0) {
        BlockKey k = it->first;
        deferred_.erase(it);
        if (Cached(k)) continue;
        first = std::move(k);
        count = 1;
        continue;
      }
      if (count >= limit || !(it->first.object == first.object) ||
          it->first.index != first.index + count) {
        break;
      }
      deferred_.erase(it);
      ++count;
    }
    if (count == 0) return false;
    backfilled_ += count;
  }
  for (uint64_t i = 0; i < count; ++i) Bump(backfill_metric_);
  backfill_ = count == 1 ? std::vector<Future>{Fetch(first, FetchPriority::kPrefetch)}
                         : FetchRun(first, count);
  return true;
}

void BlockFetcher::WriterLoop() {
  std::unique_lock lock(write_mu_);
  for (;;) {
    if (write_queue_.empty() && !write_stopping_) {
      // Deferred blocks whose bytes are still held elsewhere: from memory.
      for (auto it = deferred_.begin();
           it != deferred_.end() && write_queue_.size() < write_queue_max_;) {
        if (BlockData data = it->second.lock()) {
          write_queue_.emplace_back(it->first, std::move(data));
          it = deferred_.erase(it);
        } else {
          ++it;
        }
      }
      if (!write_queue_.empty()) continue;
      if (deferred_.empty() && backfill_.empty()) {
        write_cv_.wait(lock, [&] {
          return write_stopping_ || !write_queue_.empty() || !deferred_.empty();
        });
      } else {
        // Deferred blocks wait for an idle fetcher: look again now and then.
        lock.unlock();
        const bool started = StartBackfill();
        lock.lock();
        if (!started) {
          write_cv_.wait_for(lock, kBackfillPoll,
                             [&] { return write_stopping_ || !write_queue_.empty(); });
        }
      }
      continue;
    }
    if (write_queue_.empty()) {
      // Stopping and drained.
      write_idle_cv_.notify_all();
      return;
    }
    auto [key, data] = std::move(write_queue_.front());
    write_queue_.pop_front();
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
  s.put_deferred = put_deferred_;
  s.backfilled = backfilled_;
  s.puts = puts_;
  return s;
}

}  // namespace dsfs
