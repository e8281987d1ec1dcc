// DiskBlockCache: blocks in files under cache_dir, indexed by RocksDB.
//
// Layout of cache_dir (0700, files 0600):
//   FORMAT               "dsfs-cache-format 1\n"; another number is refused
//   LOCK                 flock()ed while open: one dsfs per cache_dir
//   CLEAN                exists only between a clean close and the next Open
//   index/               RocksDB: block id -> (file bytes, recency seq), usage
//   index.broken/        the last index that could not be opened (kept for a look)
//   tmp/                 blocks being written (<id>.<n>.tmp), renamed when complete
//   blocks/XX/<id>.blk   one file per block; <id> = 32 hex digits of XXH3-128 of
//                        (key, etag, size, index), XX = its first two digits
//                        (256 directories: 10 TB of 4 MiB blocks is ~10k files each)
// See block_file.h for the file format. The files are the truth: a block is
// served only if its header names exactly the block asked for and both
// checksums match; anything else is dropped, counted
// (dsfs_cache_corrupt_blocks_total) and reported as a miss.
//
// Open does not scan: it checks the directory, reads FORMAT, opens RocksDB
// and reads two meta keys. A background thread then loads the index into
// the LRU policy (index entries only, no block files). Only after an
// unclean shutdown (no CLEAN file) or a rebuilt index does it also scan the
// block files: temp files are deleted, files without index entries are
// checked and added (as least recently used) or deleted, and index entries
// without files are dropped. Until the policy covers every block (ready()),
// Get works (files are the truth) and Put waits up to ready_wait.
//
// Recency: a hit updates the LRU order in memory and marks the block dirty;
// dirty records are written to RocksDB in one batch every
// access_flush_interval, when access_flush_batch are pending, and at close.
// A crash loses at most that interval of recency, never data or usage.
//
// Capacity: Put evicts least recently used blocks before renaming the new
// one in, so the bytes in blocks/ never exceed capacity_bytes; the only
// excess is the temp file each concurrent writer has open.
//
// Thread safety: Get from any number of threads, Put from any thread.
// Block file reads and temp file writes happen without a lock. One mutex,
// mu_, guards all shared state; renames, unlinks and index writes that must
// agree with the policy happen under it. There is no other mutex, so no
// lock order to respect.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include "cache/block_cache.h"
#include "cache/block_file.h"
#include "cache/cache_index.h"
#include "cache/lru_policy.h"
#include "common/metrics.h"
#include "common/status.h"

namespace dsfs {

inline constexpr int kCacheDirFormatVersion = 1;

struct DiskCacheOptions {
  std::string dir;                // cache_dir=
  uint64_t capacity_bytes = 0;    // cache_size=, resolved (ResolveCacheSize); >= block_size
  uint64_t block_size = 4 << 20;  // largest block Put accepts
  // Background thread for index load, reconcile and recency flushes. Off
  // only in tests and tools that call LoadIndex()/Reconcile() themselves.
  bool background = true;
  // Recency is written to the index this often (and when this many blocks
  // are pending): a crash forgets at most this much LRU order.
  std::chrono::milliseconds access_flush_interval{5000};
  size_t access_flush_batch = 4096;
  // How long a Put waits for the index to load after Open before giving up
  // (Unavailable; callers skip caching that block).
  std::chrono::milliseconds ready_wait{30000};
  // Where the buffers of blocks read back come from (null: plain allocations).
  // Must outlive the cache.
  BufferPool* buffers = nullptr;
};

class DiskBlockCache : public BlockCache {
 public:
  // Creates or opens cache_dir. Fails with a clear message if the dir is
  // owned by another user, not writable, used by another dsfs, not a dsfs
  // cache, or of another format version. A corrupt index is not an error:
  // it is moved aside and rebuilt from the files in the background.
  // metrics may be null (then counters are kept privately).
  static Result<std::unique_ptr<DiskBlockCache>> Open(const DiskCacheOptions& options,
                                                      Metrics* metrics);
  // Stops the background thread, writes pending recency, flushes the index
  // and marks the shutdown clean.
  ~DiskBlockCache() override;
  DiskBlockCache(const DiskBlockCache&) = delete;
  DiskBlockCache& operator=(const DiskBlockCache&) = delete;

  Result<std::optional<BlockData>> Get(const BlockKey& key) override;
  // IoError on a failed write (disk full, EIO): counted in
  // dsfs_cache_write_errors_total, the cache keeps serving reads.
  // InvalidArgument for a block larger than block_size; Unavailable if the
  // index is still loading after ready_wait.
  Status Put(const BlockKey& key, BlockData data) override;
  uint64_t UsedBytes() const override;

  // True once the LRU policy accounts for every block on disk.
  bool ready() const;
  // Waits up to timeout for the background startup work (index load and,
  // if needed, reconcile) to finish. Returns whether it has (never true
  // with background=false).
  bool WaitForStartup(std::chrono::milliseconds timeout);
  // Startup steps, run by the background thread; public for background=false.
  // LoadIndex reads every index entry into the policy; Reconcile scans the
  // files (see above). Both are idempotent.
  Status LoadIndex();
  Status Reconcile();
  // Writes pending recency updates to the index now.
  Status FlushAccessTimes();

  // Where key's file lives (whether or not it exists).
  std::string BlockPath(const BlockKey& key) const;
  size_t block_count() const;
  const DiskCacheOptions& options() const { return options_; }

 private:
  DiskBlockCache(DiskCacheOptions options, Metrics* metrics);
  std::string PathOf(const BlockId& id) const;
  void BackgroundMain();
  // Drops a block (file, policy, index); mu_ held.
  void DropLocked(const BlockId& id, CacheIndex::Batch* batch);
  // Evicts LRU blocks until `incoming` more bytes fit; mu_ held.
  void EvictLocked(uint64_t incoming, const BlockId* keep, CacheIndex::Batch* batch);
  Status WriteIndexLocked(CacheIndex::Batch& batch);
  void MarkReadyLocked();
  void CountWriteError(const Status& st);
  void ReportCorrupt(const BlockId& id, const Status& st);
  IndexMeta MetaLocked() const;

  const DiskCacheOptions options_;
  std::unique_ptr<Metrics> own_metrics_;  // when none was passed
  Metrics* metrics_;
  Counter& hits_;
  Counter& misses_;
  Counter& corrupt_;
  Counter& write_errors_;
  Counter& read_errors_;
  Counter& evictions_;
  Counter& index_loaded_;
  Counter& files_scanned_;
  Counter& orphan_files_;
  Counter& orphan_entries_;
  Counter& temp_removed_;
  Counter& index_writes_;
  int lock_fd_ = -1;        // flock()ed LOCK file; immutable after Open
  std::string tmp_prefix_;  // marks this instance's temp files; immutable
  std::atomic<uint64_t> tmp_counter_{0};
  std::atomic<uint64_t> used_bytes_{0};  // written under mu_, read lock-free

  mutable std::mutex mu_;
  std::condition_variable cv_;                        // ready_, startup_done_, stop_, dirty_ (mu_)
  std::unique_ptr<CacheIndex> index_;                 // guarded by mu_ (replaced on corruption)
  LruPolicy policy_;                                  // guarded by mu_
  uint64_t next_seq_ = 1;                             // guarded by mu_
  std::unordered_set<BlockId, BlockIdHash> dirty_;    // guarded by mu_: recency to write
  std::unordered_set<BlockId, BlockIdHash> dropped_;  // guarded by mu_: dropped before ready_
  bool ready_ = false;                                // guarded by mu_
  bool rebuild_ = false;          // guarded by mu_: index is new, rebuild it from files
  bool needs_reconcile_ = false;  // guarded by mu_: unclean shutdown or rebuild
  bool consistent_ = false;       // guarded by mu_: index known to match the files
  bool startup_done_ = false;     // guarded by mu_
  bool stop_ = false;             // guarded by mu_
  std::thread thread_;
};

// cache_size= -> bytes: a size ("200G", see ParseSize) or a percentage of
// the size of the filesystem holding dir ("10%"; dir need not exist yet,
// its nearest existing parent is measured). InvalidArgument if it does not
// parse or is zero.
Result<uint64_t> ResolveCacheSize(const std::string& text, const std::string& dir);

}  // namespace dsfs
