// BlockFetcher: the block miss path of the caching reader.
//
// Fetch(key) returns a shared future for one block (block_size bytes, the
// last block of an object shorter). Blocks come from the BlockCache when it
// has them, else from one ranged GET with If-Match the pinned ETag.
// FetchRun(key, n) asks for n consecutive blocks as one job: one ranged GET
// of all of them (ObjectStore::GetParts, each block its own buffer), while
// each block stays its own in-flight entry, future, cache lookup and cache
// block. So a sequential stream pays OBS's per-request wait and price once
// per run, not once per block. Each block of a run goes to its readers (and
// the cache) as soon as its bytes are in, while the GET goes on, where the
// store can tell (GetRequest::on_parts_done: S3Store can; the share and
// two-source reads hand a run over when it ends). If the GET fails after
// some blocks went out, the rest is queued again as a run of its own.
// Concurrent requests for the same block share one fetch (in-flight map of
// shared futures), whether it is a single block or part of a run. GETs run
// on a pool of max_inflight threads; demand fetches (a reader is waiting)
// are served before prefetch fetches. A demand reader joining a block of a
// queued run takes that block out of the run (its own GET, at once).
//
// Blocks fetched from the store are offered to the BlockCache by a writer
// thread through a bounded queue: a slow or failing cache Put never delays
// or fails a read or a read-ahead. A block that finds the queue full is
// deferred: its key is kept (at most cache_deferred_max), with a weak
// reference to its bytes. When the queue has room again, deferred blocks
// whose bytes are still held elsewhere (read-ahead not yet consumed) are
// written from memory; once the fetcher is idle (nothing in flight) the
// writer fetches the others again, a queue's worth per GET, and writes
// them (the backfill), so a load
// on a disk slower than the network ends with the file cached without ever
// running at the disk's speed. Without cache_backfill, or past the bound,
// the block is skipped. Cache Get and Put errors are counted and treated as
// a miss.
//
// Warm reads on a slow disk (warm_split): a block the cache holds is
// fetched from the store instead when the disk is busy and each of its
// reads delivers less than a GET does (ReadSplit, measured as it goes), so
// the disk and the network serve one warm read together. A diverted GET
// that fails is read from the disk after all.
//
// Cancellation: CancelPrefetch(key) takes a read-ahead fetch nobody waits
// for back. Queued, it is never issued (its future fails at once); running,
// its GET's cancellation token is set and it leaves the in-flight map, so a
// later Fetch of the block starts afresh instead of joining a GET that is
// being aborted. A running GET of several blocks is aborted only once every
// block it carries has been cancelled; until then a cancelled block stays
// in the map (kKept: a later Fetch joins it) and completes with the GET. A
// fetch a demand reader waits for (Fetch(kDemand) joined it, or Expedite)
// is never cancelled.
//
// Shutdown: the destructor stops the pool, sets the cancellation token of
// every GET still running (the store aborts them; it also bounds them with
// its own timeouts), fails fetches still queued with Unavailable, drains the
// cache write queue and joins the writer.
//
// Locks: mu_ (in-flight map, queues, counters) and write_mu_ (cache write
// queue) are never held together, and no store, cache or promise call runs
// under either.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/object_store.h"
#include "cache/block_cache.h"
#include "cache/memory_budget.h"
#include "cache/read_split.h"
#include "cache/recent_blocks.h"
#include "common/cancel.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"

namespace dsfs {

// Read-ahead tunables. Filled from Config by ReadAheadOptionsFrom
// (cache/cache_options.h); the defaults are a default Config's, and the
// reason for each is beside it in common/config.h (CacheConfig).
struct ReadAheadOptions {
  uint64_t block_size = CacheConfig{}.block_size;
  int max_inflight = CacheConfig{}.max_inflight;
  // Largest ranged GET of one read-ahead run, and how many GETs a stream's
  // window is split into at least (the run is window / readahead_gets).
  uint64_t max_get_size = CacheConfig{}.max_get_size;
  int readahead_gets = CacheConfig{}.readahead_gets;
  // First window of a sequential reader: one block.
  uint64_t window_initial = CacheConfig{}.block_size;
  uint64_t window_max = CacheConfig{}.readahead_max;
  uint64_t readahead_warm = CacheConfig{}.readahead_warm;
  // CacheConfig::prefetch_mem resolved (0 there = this rule).
  uint64_t prefetch_mem = DefaultPrefetchMemory();
  std::string prefetch_whole = CacheConfig{}.prefetch_whole;
  uint64_t seq_tolerance = CacheConfig{}.seq_tolerance;
  size_t cache_write_queue = CacheConfig{}.cache_write_queue;
  bool cache_backfill = CacheConfig{}.cache_backfill;
  size_t cache_deferred_max = CacheConfig{}.cache_deferred_max;
  // Part of a warm read comes from the store while the cache disk reads
  // slower than it (see ReadSplit).
  bool warm_split = CacheConfig{}.warm_split;
  // Bytes of blocks read from the disk cache kept for the requests that
  // follow (see RecentBlocks).
  uint64_t recent_blocks_mem = CacheConfig{}.recent_blocks_mem;
  // Where the buffers of fetched blocks come from (null: plain allocations).
  // Must outlive the reader.
  BufferPool* buffers = nullptr;
  size_t max_tracked_objects = CacheConfig{}.max_tracked_objects;
  std::chrono::milliseconds readahead_idle = CacheConfig{}.readahead_idle;
  // Time source for readahead_idle (null: the steady clock). Must outlive
  // the reader.
  const Clock* clock = nullptr;
};

enum class FetchPriority { kDemand, kPrefetch };

// What BlockFetcher::CancelPrefetch did.
enum class CancelOutcome {
  kNotFound,  // not in flight (finished, or never fetched)
  kKept,      // a demand reader waits for it, or it runs and may not be aborted
  kDequeued,  // was queued: never issued; its future failed with Cancelled
  kAborting,  // was running: its token is set; its future completes soon
};

// Counters of one fetcher (tests and dsfsctl stats).
struct FetcherStats {
  uint64_t store_gets = 0;         // ranged GETs issued
  uint64_t run_gets = 0;           // of those, GETs of more than one block
  uint64_t store_blocks = 0;       // blocks those GETs brought
  uint64_t collapsed = 0;          // fetches that joined a GET in flight
  uint64_t cache_hits = 0;         // blocks served by the BlockCache
  uint64_t recent_hits = 0;        // of those, from its blocks kept in memory (no disk read)
  uint64_t cache_misses = 0;       // lookups that found nothing
  uint64_t cache_errors = 0;       // Get errors (treated as misses)
  uint64_t put_errors = 0;         // Put errors (ignored)
  uint64_t put_dropped = 0;        // blocks never written: deferral off or full, or shutdown
  uint64_t put_deferred = 0;       // blocks that found the write queue full
  uint64_t backfilled = 0;         // deferred blocks fetched again for the cache
  uint64_t diverted = 0;           // cached blocks fetched from the store (warm_split)
  uint64_t puts = 0;               // Puts that succeeded
  uint64_t cancelled_queued = 0;   // read-ahead fetches cancelled before their GET
  uint64_t cancelled_running = 0;  // read-ahead GETs whose token was set
  uint64_t early_blocks = 0;       // blocks handed out while their GET still ran
  uint64_t early_refetches = 0;    // GETs that failed after handing some out: the rest again
};


class BlockFetcher {
 public:
  using Future = std::shared_future<Result<BlockData>>;

  // store and (optional) cache and metrics must outlive the fetcher.
  BlockFetcher(ObjectStore& store, BlockCache* cache, const ReadAheadOptions& options,
               Metrics* metrics = nullptr);
  ~BlockFetcher();
  BlockFetcher(const BlockFetcher&) = delete;
  BlockFetcher& operator=(const BlockFetcher&) = delete;

  // The block's bytes, or the store's error (PreconditionFailed when the
  // ETag changed). check_cache=false skips the cache lookup (the caller
  // just looked). A key past the end of the object fails with
  // InvalidArgument. Joining a queued prefetch with kDemand moves it ahead.
  Future Fetch(const BlockKey& key, FetchPriority priority = FetchPriority::kDemand,
               bool check_cache = true);
  // Read-ahead of blocks first.index .. first.index + count - 1 (all inside
  // the object) as one GET (see the top of this file); one future per block.
  // A block already in flight is joined instead, and splits the run there.
  std::vector<Future> FetchRun(const BlockKey& first, uint64_t count);
  // A demand reader waits for key's fetch: it is never cancelled, and if
  // it is queued (not started) it is served before prefetch fetches.
  void Expedite(const BlockKey& key);
  // Takes back key's read-ahead fetch unless a demand reader waits for it
  // (see the top of this file). abort_running=false leaves a running GET
  // alone (kKept).
  CancelOutcome CancelPrefetch(const BlockKey& key, bool abort_running = true);
  // Cache lookup on the caller's thread: a hit, or nullopt for a miss, a
  // missing cache or a cache error (counted).
  std::optional<BlockData> LookupCache(const BlockKey& key);
  // The same for bytes [offset, offset + len) of the block (clipped to it):
  // BlockCache::GetRange, exactly those bytes on a hit; counted (stats,
  // metrics, ReadSplit) as LookupCache counts.
  std::optional<BlockData> LookupCacheRange(const BlockKey& key, uint64_t offset, size_t len);
  // The whole block if a recent lookup read it from the disk and it is
  // still kept (RecentBlocks), counted as a cache hit; else nullopt, with
  // nothing read and nothing counted.
  std::optional<BlockData> LookupRecent(const BlockKey& key);
  // Waits until every queued cache write has been attempted (tests).
  void FlushCacheWrites();

  uint64_t block_size() const { return block_size_; }
  // Number of blocks of the object, and the length of block index.
  uint64_t BlockCount(const ObjectId& id) const;
  uint64_t BlockLength(const ObjectId& id, uint64_t index) const;
  // Whether the block cache most likely holds key (memory only, no I/O).
  bool Cached(const BlockKey& key) const {
    return cache_ != nullptr && !key.object.etag.empty() && cache_->Contains(key);
  }
  FetcherStats stats() const;

 private:
  struct Job;
  // Every field is guarded by mu_ (the promise is set without it, once, by
  // whoever took the entry out of its job: the worker, CancelPrefetch or
  // the destructor).
  struct InFlight {
    std::promise<Result<BlockData>> promise;
    Future future;
    uint64_t index = 0;
    bool started = false;
    bool check_cache = true;
    bool expedited = false;  // queued in demand_queue_ (or started from it)
    bool demanded = false;   // a demand reader waits: never cancelled
    // Running in a GET of several blocks: its stream let it go; the GET is
    // aborted once every block it carries has.
    bool cancel_asked = false;
    // Cancelled to abort the GET (CancelPrefetch, shutdown); shared by the
    // blocks of one running GET.
    std::shared_ptr<CancelToken> cancel = std::make_shared<CancelToken>();
    // The job that fetches it (queued: held by its queue slot; running: by
    // its worker). A queue slot whose job no longer owns an entry skips it.
    std::weak_ptr<Job> job;
  };
  // Consecutive blocks of one object fetched by one worker (one GET for
  // those the cache does not have).
  struct Job {
    ObjectId object;
    std::vector<std::shared_ptr<InFlight>> blocks;  // ascending, consecutive indexes
  };
  using InFlightMap =
      std::map<BlockKey, std::shared_ptr<InFlight>, BlockKeyLess>;
  using JobPtr = std::shared_ptr<Job>;

  // LookupCache and LookupCacheRange: runs get (a cache lookup) and counts
  // it; a result of other than `want` bytes is a miss. whole: get reads the
  // whole block, which goes through recent_ (kept, reads shared).
  std::optional<BlockData> CountedLookup(
      const BlockKey& key, uint64_t want,
      const std::function<Result<std::optional<BlockData>>()>& get, bool whole);
  // Whether entry is key's current fetch (requires mu_).
  bool CurrentLocked(const ObjectId& object, const std::shared_ptr<InFlight>& entry) const;
  // A demand reader waits for a queued entry: its own job, demand queue
  // (requires mu_).
  void ExpediteLocked(const ObjectId& object, const std::shared_ptr<InFlight>& entry);
  // Starts a popped job's entries still its own and not started, up to the
  // first hole, as the returned running job (null: none); the rest goes
  // back to the front of queue (requires mu_).
  JobPtr TakeLocked(const JobPtr& job, std::deque<JobPtr>& queue);
  // Runs one started job: cache lookups, one GET of the blocks before the
  // first cached one, the rest back to the queue.
  void RunJob(const JobPtr& job, bool demand);
  // Puts started blocks back at the front of the queue (one job each, or
  // runs); those aborted or let go meanwhile fail with Cancelled.
  void Requeue(const ObjectId& object, std::span<const std::shared_ptr<InFlight>> blocks,
               bool singles, bool demand);
  // Fulfils blocks[i] with results[i], queues the cache writes, leaves the map.
  void Complete(const ObjectId& object, const std::vector<std::shared_ptr<InFlight>>& blocks,
                std::vector<Result<BlockData>> results, bool from_store);
  void WorkerLoop();
  void WriterLoop();
  // Removes key from the map if it still maps to entry (requires mu_).
  void EraseIfCurrentLocked(const BlockKey& key, const std::shared_ptr<InFlight>& entry);
  // One ranged GET of blocks first .. first + count - 1 into one buffer each.
  // early (several blocks, and handed_out set): called with each block
  // whose bytes are in while the GET still runs (GetRequest::on_parts_done);
  // *handed_out counts them, and the returned results of those blocks are
  // not to be used.
  using EarlyBlock = std::function<void(size_t i, BlockData data)>;
  std::vector<Result<BlockData>> GetFromStore(const ObjectId& object, uint64_t first,
                                              uint64_t count, CancelTokenPtr cancel,
                                              const EarlyBlock& early = nullptr,
                                              size_t* handed_out = nullptr);
  // Queues a write, or defers (or skips) it when the queue is full; never waits.
  void QueueCacheWrite(const BlockKey& key, BlockData data);
  // Writer thread: starts the next backfill GET when the fetcher is idle.
  // Returns whether it started one.
  bool StartBackfill();
  // Whether no fetch is queued or running.
  bool Idle() const;
  // How often the writer looks whether the fetcher has become idle while
  // blocks are deferred.
  static constexpr std::chrono::milliseconds kBackfillPoll{100};
  void Bump(Counter* c) {
    if (c) c->Add();
  }

  ObjectStore& store_;
  BlockCache* const cache_;  // may be null
  const uint64_t block_size_;
  BufferPool* const buffers_;  // may be null
  const size_t write_queue_max_;
  const bool backfill_on_;
  const size_t deferred_max_;
  const uint64_t max_get_blocks_;
  ReadSplit split_;  // null-safe: disabled unless warm_split
  RecentBlocks recent_;
  Counter* hits_metric_ = nullptr;
  Counter* misses_metric_ = nullptr;
  Counter* recent_hits_metric_ = nullptr;
  Counter* collapsed_metric_ = nullptr;
  Counter* cache_errors_metric_ = nullptr;
  Counter* cache_write_dropped_metric_ = nullptr;
  Counter* cache_write_deferred_metric_ = nullptr;
  Counter* backfill_metric_ = nullptr;
  Counter* diverted_metric_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;    // queued work or stop
  InFlightMap inflight_;               // guarded by mu_
  std::deque<JobPtr> demand_queue_;    // guarded by mu_
  std::deque<JobPtr> prefetch_queue_;  // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  FetcherStats stats_;                 // guarded by mu_ (write counters: write_mu_)

  mutable std::mutex write_mu_;
  std::condition_variable write_cv_;                        // queued write or stop
  std::condition_variable write_idle_cv_;                   // queue drained
  std::deque<std::pair<BlockKey, BlockData>> write_queue_;  // guarded by write_mu_
  // Blocks deferred, in key order (runs of one object), each with its
  // bytes while someone else (a read-ahead buffer, a reader) still holds
  // them: those are written from memory once the queue has room; the
  // others are fetched again by the backfill.
  std::map<BlockKey, std::weak_ptr<const Buffer>, BlockKeyLess>
      deferred_;  // guarded by write_mu_
  // The backfill GET running (writer thread only).
  std::vector<Future> backfill_;  // writer thread only
  bool write_busy_ = false;                                 // guarded by write_mu_
  int write_incoming_ = 0;       // guarded by write_mu_: fetched, about to be queued
  bool write_stopping_ = false;  // guarded by write_mu_
  uint64_t put_errors_ = 0;      // guarded by write_mu_
  uint64_t put_dropped_ = 0;     // guarded by write_mu_
  uint64_t put_deferred_ = 0;    // guarded by write_mu_
  uint64_t backfilled_ = 0;      // guarded by write_mu_
  uint64_t puts_ = 0;            // guarded by write_mu_

  std::vector<std::thread> workers_;
  std::thread writer_;
};

}  // namespace dsfs
