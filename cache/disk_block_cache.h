// DiskBlockCache: blocks in files under cache_dir, indexed by RocksDB.
//
// Layout: see cache_dir.h. Block files are blocks/XX/<id>.blk, where <id>
// is 32 hex digits of the BlockId of the block's extent (key, ETag, object
// size, byte offset, length; see block_file.h) and XX its first two digits
// (256 directories: 10 TB of 4 MiB blocks is ~10k files each). The cache
// knows the mount's block_size, so BlockKey{object, index} names the extent
// [index * block_size, +block_size) (shorter at the end of the object); a
// cache_dir written with another block_size reuses the blocks whose offset
// and length are the same, and never finds the others (they age out of the
// LRU like any unused block).
//
// The files are the truth: a block is served only if its header names
// exactly the extent asked for and its checksums match; anything else
// (including a symlink, FIFO or directory at its path) is dropped, counted
// (dsfs_cache_corrupt_blocks_total) and reported as a miss.
//
// Start-up (cache/disk_cache_startup.cc). Open does not scan: it checks
// the directory, takes the lock, reads FORMAT, opens RocksDB and reads the
// meta keys. A background thread then walks the states below (or
// LoadIndex() and Reconcile() do, called directly when background=false).
// These are all the transitions:
//
//   Open          -> kLoadingIndex  an index with entries was opened
//   Open          -> kRebuilding    no index, an empty one beside a used
//                                   cache, a corrupt one (moved aside), or
//                                   one naming blocks of an older format
//   Open          -> kOff           less than one block of free space
//   kLoadingIndex -> kReady         index read; the last close was clean
//   kLoadingIndex -> kReconciling   index read; the last close was not
//                                   clean, or Open replaced a symlink
//   kLoadingIndex -> kRebuilding    the index turned out unreadable
//   kRebuilding   -> kReady         the files were scanned into the index
//   kReconciling  -> kReady         the files were checked against it
//   kLoadingIndex | kRebuilding | kReconciling -> kOff   the step failed
//
//   kLoadingIndex  the index is read into the LRU policy (entries only).
//                  Get serves verified files; Put waits (ready_wait).
//   kRebuilding    the index is new: there was none, it was empty beside a
//                  cache that has been used, it was corrupt (moved aside),
//                  or it named blocks of an older block format. Reconcile
//                  builds it from the files. Get serves; Put waits.
//   kReconciling   the policy holds every indexed block; reconcile checks
//                  the files (after an unclean shutdown, or when Open found
//                  a symlink where a cache directory should be): temp files
//                  are deleted, files without entries are checked and added
//                  (least recently used) or deleted, entries without files
//                  are dropped. Get and Put work.
//   kReady         the policy accounts for every block on disk.
//   kOff           the disk tier is off, for good (one warning says why: a
//                  full disk at Open, a failed index load or reconcile).
//                  Get misses and Put fails at once (Unavailable), without
//                  touching the disk, so no writer ever waits on a cache
//                  that cannot become ready; no CLEAN marker is written, so
//                  the next mount reconciles.
// WaitForStartup() returns once the state is kReady or kOff.
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
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include "cache/block_cache.h"
#include "cache/block_file.h"
#include "cache/cache_dir.h"
#include "cache/cache_index.h"
#include "cache/lru_policy.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"

namespace dsfs {

// Start-up states; see the diagram above.
enum class DiskCacheState { kLoadingIndex, kRebuilding, kReconciling, kReady, kOff };
const char* DiskCacheStateName(DiskCacheState state);

// Filled from Config by DiskCacheOptionsFrom (cache/cache_options.h); the
// defaults are a default Config's (reasons in common/config.h, CacheConfig).
struct DiskCacheOptions {
  std::string dir;              // cache_dir=
  uint64_t capacity_bytes = 0;  // cache_size=, resolved (ResolveCacheSize); >= block_size
  // block_size=: the mount's block size; BlockKey.index counts these.
  uint64_t block_size = CacheConfig{}.block_size;
  // Background thread for index load, reconcile and recency flushes. Off
  // only in tests and tools that call LoadIndex()/Reconcile() themselves.
  bool background = true;
  std::chrono::milliseconds access_flush_interval = CacheConfig{}.access_flush_interval;
  size_t access_flush_batch = CacheConfig{}.access_flush_batch;
  // How long a Put waits for the index to load after Open before giving up
  // (Unavailable; callers skip caching that block).
  std::chrono::milliseconds ready_wait = CacheConfig{}.cache_ready_wait;
  // Where the buffers of blocks read back come from (null: plain allocations).
  // Must outlive the cache.
  BufferPool* buffers = nullptr;
};

class DiskBlockCache : public BlockCache {
 public:
  // Creates or opens cache_dir. Fails with a clear message if the dir is
  // owned by another user, not writable, used by another dsfs, not a dsfs
  // cache, of another format version, or if its index cannot be opened for
  // a reason other than corruption (permissions, a lock): such an index is
  // never wiped. A corrupt index is not an error: it is moved aside and
  // rebuilt from the files in the background. A disk with less than one
  // block of free space is not an error either: the cache opens in kOff.
  // metrics may be null (then counters are kept privately).
  static Result<std::unique_ptr<DiskBlockCache>> Open(const DiskCacheOptions& options,
                                                      Metrics* metrics);
  // Stops the background thread, writes pending recency, flushes the index
  // and marks the shutdown clean.
  ~DiskBlockCache() override;
  DiskBlockCache(const DiskBlockCache&) = delete;
  DiskBlockCache& operator=(const DiskBlockCache&) = delete;

  Result<std::optional<BlockData>> Get(const BlockKey& key) override;
  // Reads and verifies only the chunks of the block file the range covers
  // (block_file.h); a hit, a miss, a corrupt file (dropped) and an I/O
  // error count and touch the LRU exactly as Get does.
  Result<std::optional<BlockData>> GetRange(const BlockKey& key, uint64_t offset,
                                            size_t len) override;
  // IoError on a failed write (disk full, EIO): counted in
  // dsfs_cache_write_errors_total, the cache keeps serving reads.
  // InvalidArgument for data whose length is not the length of key's
  // extent; Unavailable if the tier is off or the index is still loading
  // after ready_wait.
  Status Put(const BlockKey& key, BlockData data) override;
  uint64_t UsedBytes() const override;
  bool Contains(const BlockKey& key) const override;

  // True once Put is accepted (kReconciling or kReady).
  bool ready() const;
  DiskCacheState state() const;
  // Waits up to timeout for the state to be kReady or kOff; returns
  // whether it is.
  bool WaitForStartup(std::chrono::milliseconds timeout);
  // Startup steps, run by the background thread; public for background=false.
  // LoadIndex reads every index entry into the policy; Reconcile scans the
  // files (see above). Both are idempotent. A failure during start-up
  // turns the tier off (kOff); Reconcile called in kReady (dsfsctl cache
  // fsck) only reports it.
  Status LoadIndex();
  Status Reconcile();
  // Writes pending recency updates to the index now.
  Status FlushAccessTimes();

  // Where key's file lives (whether or not it exists).
  std::string BlockPath(const BlockKey& key) const;
  BlockExtent ExtentOf(const BlockKey& key) const;
  size_t block_count() const;
  const DiskCacheOptions& options() const { return options_; }

 private:
  DiskBlockCache(DiskCacheOptions options, Metrics* metrics);
  // Reads (and verifies) the block file at path holding extent.
  using BlockReader = std::function<Result<BlockData>(const std::string&, const BlockExtent&)>;
  // Get and GetRange: reads key's file with read, then counts, touches the
  // LRU or drops the file.
  Result<std::optional<BlockData>> Lookup(const BlockKey& key, const BlockReader& read);
  std::string PathOf(const BlockId& id) const;
  void BackgroundMain();
  // Picks the first start-up state from what Open found; mu_ held.
  void StartLocked(DiskCacheState state, bool reconcile_after_load);
  // Goes to kOff with one warning; mu_ held.
  void TurnOffLocked(const std::string& why);
  bool AcceptsPutsLocked() const {
    return state_ == DiskCacheState::kReconciling || state_ == DiskCacheState::kReady;
  }
  // Drops a block (file, policy, index); mu_ held.
  void DropLocked(const BlockId& id, CacheIndex::Batch* batch);
  // Evicts LRU blocks until `incoming` more bytes fit; mu_ held.
  void EvictLocked(uint64_t incoming, const BlockId* keep, CacheIndex::Batch* batch);
  Status WriteIndexLocked(CacheIndex::Batch& batch);
  // The policy now covers every indexed block: kReconciling or kReady.
  void FinishLoadLocked();
  // The policy now covers every block on disk: writes the index, kReady.
  Status MarkReadyLocked();
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
  Counter& old_format_removed_;
  Counter& index_writes_;
  Counter& turned_off_;
  Counter& bytes_read_;  // bytes of blocks served from disk (the disk tier)
  Gauge& on_;            // 1 while the disk tier is usable, 0 once it is off
  // Holds the lock; immutable after Open (empty if Open found no usable disk).
  std::optional<CacheDir> dir_;
  std::string tmp_prefix_;  // marks this instance's temp files; immutable
  std::atomic<uint64_t> tmp_counter_{0};
  std::atomic<uint64_t> used_bytes_{0};  // written under mu_, read lock-free

  mutable std::mutex mu_;
  std::condition_variable cv_;                        // state_, stop_, dirty_ (mu_)
  std::unique_ptr<CacheIndex> index_;                 // guarded by mu_ (replaced on corruption)
  LruPolicy policy_;                                  // guarded by mu_
  uint64_t next_seq_ = 1;                             // guarded by mu_
  std::unordered_set<BlockId, BlockIdHash> dirty_;    // guarded by mu_: recency to write
  std::unordered_set<BlockId, BlockIdHash> dropped_;  // guarded by mu_: dropped in kLoadingIndex
  DiskCacheState state_ = DiskCacheState::kLoadingIndex;  // guarded by mu_
  // Guarded by mu_: kLoadingIndex goes on to kReconciling, not kReady.
  bool reconcile_after_load_ = false;
  // Guarded by mu_: the index is known to match the files (so a clean
  // close may write CLEAN); false after an index write failed.
  bool consistent_ = false;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dsfs
