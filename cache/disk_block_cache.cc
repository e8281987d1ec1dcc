#include "cache/disk_block_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/posix.h"

namespace dsfs {
namespace {

// Free bytes of the filesystem holding path, or of its nearest existing
// parent (cache_dir may not exist yet). nullopt if it cannot be measured.
std::optional<uint64_t> FreeBytesNear(std::string p) {
  while (::access(p.c_str(), F_OK) != 0 && p.find('/') != std::string::npos && p != "/") {
    size_t slash = p.find_last_of('/');
    p.resize(slash == 0 ? 1 : slash);  // "/a" -> "/"
  }
  struct statvfs vfs;
  if (::statvfs(p.c_str(), &vfs) != 0) return std::nullopt;
  return static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
}

}  // namespace

DiskBlockCache::DiskBlockCache(DiskCacheOptions options, Metrics* metrics)
    : options_(std::move(options)),
      own_metrics_(metrics ? nullptr : std::make_unique<Metrics>()),
      metrics_(metrics ? metrics : own_metrics_.get()),
      hits_(
          metrics_->GetCounter("dsfs_cache_disk_hits_total", "Blocks served from the disk cache")),
      misses_(
          metrics_->GetCounter("dsfs_cache_disk_misses_total", "Disk cache lookups that missed")),
      corrupt_(metrics_->GetCounter("dsfs_cache_corrupt_blocks_total",
                                    "Block files that failed verification and were dropped")),
      write_errors_(metrics_->GetCounter("dsfs_cache_write_errors_total",
                                         "Disk cache Puts that failed (disk full, EIO)")),
      read_errors_(metrics_->GetCounter("dsfs_cache_read_errors_total",
                                        "Disk cache reads that failed with an I/O error")),
      evictions_(metrics_->GetCounter("dsfs_cache_evictions_total", "Blocks evicted by LRU")),
      index_loaded_(metrics_->GetCounter("dsfs_cache_index_entries_loaded_total",
                                         "Index entries loaded into the LRU policy")),
      files_scanned_(metrics_->GetCounter("dsfs_cache_files_scanned_total",
                                          "Block file headers read by reconcile")),
      orphan_files_(metrics_->GetCounter("dsfs_cache_orphan_files_total",
                                         "Block files found without an index entry")),
      orphan_entries_(metrics_->GetCounter("dsfs_cache_orphan_index_entries_total",
                                           "Index entries found without a block file")),
      temp_removed_(metrics_->GetCounter("dsfs_cache_temp_files_removed_total",
                                         "Temp files left by a crash, removed")),
      old_format_removed_(
          metrics_->GetCounter("dsfs_cache_old_format_files_removed_total",
                               "Block files of format 1/2 (no byte offset) deleted by reconcile")),
      index_writes_(metrics_->GetCounter("dsfs_cache_index_writes_total",
                                         "Write batches applied to the RocksDB index")),
      turned_off_(
          metrics_->GetCounter("dsfs_cache_disk_off_total",
                               "1 once the disk tier has turned itself off (see the log)")),
      bytes_read_(metrics_->GetCounter("dsfs_cache_disk_bytes_read_total",
                                       "Bytes of blocks served from the disk cache (the disk tier)")),
      on_(metrics_->GetGauge("dsfs_cache_disk_on",
                             "1 while the disk cache is in use, 0 once it turned itself off")) {
  on_.Set(1);
  tmp_prefix_ = std::to_string(::getpid()) + "-" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

Result<std::unique_ptr<DiskBlockCache>> DiskBlockCache::Open(const DiskCacheOptions& options,
                                                             Metrics* metrics) {
  const std::string& dir = options.dir;
  if (dir.empty()) return Status::InvalidArgument("cache_dir is empty");
  if (options.block_size == 0) return Status::InvalidArgument("cache block size is 0");
  if (options.capacity_bytes < options.block_size) {
    return Status::InvalidArgument("cache_size (" + std::to_string(options.capacity_bytes) +
                                   " bytes) is smaller than one block (" +
                                   std::to_string(options.block_size) + " bytes)");
  }
  std::unique_ptr<DiskBlockCache> cache(new DiskBlockCache(options, metrics));
  // A disk that cannot take one more block cannot cache anything: mount
  // without the disk tier rather than fail (or wait on writes that fail).
  auto disk_full = [&] {
    auto free = FreeBytesNear(dir);
    return free && *free < options.block_size;
  };
  auto off = [&](const std::string& why) {
    std::lock_guard lock(cache->mu_);
    cache->TurnOffLocked(why);
    return std::move(cache);
  };
  auto free_text = [&] {
    auto free = FreeBytesNear(dir);
    return std::to_string(free ? *free : 0) + " bytes free, a block is " +
           std::to_string(options.block_size);
  };

  auto opened = CacheDir::Open(dir);
  if (!opened.ok()) {
    if (opened.status().code() == StatusCode::kIoError && disk_full()) {
      return off("the disk of " + dir + " is full (" + free_text() + ")");
    }
    return opened.status();
  }
  cache->dir_.emplace(std::move(opened).value());
  CacheDir& cd = *cache->dir_;
  if (disk_full()) return off("the disk of " + dir + " is full (" + free_text() + ")");
  bool suspect = false;
  if (Status st = cd.PrepareLayout(&suspect); !st.ok()) {
    if (disk_full()) return off("the disk of " + dir + " is full (" + free_text() + ")");
    return st;
  }
  DSFS_ASSIGN_OR_RETURN(bool clean, cd.TakeCleanMarker());

  IndexOpenOutcome outcome;
  auto opened_index = CacheIndex::Open(cd.index_dir(), &outcome);
  if (!opened_index.ok()) {
    if (disk_full()) return off("the disk of " + dir + " is full (" + free_text() + ")");
    // Not known to be corrupt (permissions, a lock): never wiped.
    return opened_index.status().WithContext("cache_dir " + dir +
                                             ": the index cannot be opened (left as it is)");
  }
  std::unique_ptr<CacheIndex> index = std::move(opened_index).value();
  IndexMeta meta;
  DiskCacheState first = DiskCacheState::kLoadingIndex;
  if (outcome != IndexOpenOutcome::kExisting) {
    first = DiskCacheState::kRebuilding;
  } else if (auto m = index->ReadMeta(); !m.ok()) {
    if (m.status().code() != StatusCode::kCorruption) return m.status();
    DSFS_ASSIGN_OR_RETURN(index, CacheIndex::Recreate(std::move(index), m.status().message()));
    first = DiskCacheState::kRebuilding;
  } else if (auto empty = index->Empty(); !empty.ok()) {
    if (empty.status().code() != StatusCode::kCorruption) return empty.status();
    DSFS_ASSIGN_OR_RETURN(index, CacheIndex::Recreate(std::move(index), empty.status().message()));
    first = DiskCacheState::kRebuilding;
  } else if (*empty) {
    // An empty index says nothing about the files beside it (it may have
    // been deleted with CLEAN still there): count them. Cheap when there
    // are none.
    first = DiskCacheState::kRebuilding;
  } else if (m->block_format < kOldestServedBlockFormat || m->block_format > kBlockFormatVersion) {
    // Its ids name blocks of format 1/2, which are never served (or of a
    // newer dsfs): rebuild from the files, which deletes those. Format 3
    // blocks are served: their index is kept.
    DSFS_ASSIGN_OR_RETURN(
        index, CacheIndex::Recreate(std::move(index), "it indexes blocks of format " +
                                                          std::to_string(m->block_format) +
                                                          ", this dsfs writes format " +
                                                          std::to_string(kBlockFormatVersion)));
    first = DiskCacheState::kRebuilding;
  } else {
    meta = *m;
  }
  if (cd.fresh()) first = DiskCacheState::kLoadingIndex;  // nothing to count
  {
    std::lock_guard lock(cache->mu_);
    cache->index_ = std::move(index);
    cache->next_seq_ = meta.max_seq + 1;
    cache->used_bytes_ = meta.used_bytes;
    cache->StartLocked(first, !cd.fresh() && (!clean || suspect));
  }
  if (options.background) cache->thread_ = std::thread([c = cache.get()] { c->BackgroundMain(); });
  return cache;
}

DiskBlockCache::~DiskBlockCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  bool off;
  {
    std::lock_guard lock(mu_);
    off = state_ == DiskCacheState::kOff;
  }
  if (!off && FlushAccessTimes().ok()) {
    std::lock_guard lock(mu_);
    if (index_ && index_->Flush().ok() && consistent_ && dir_) {
      // Marks the index as matching the files: the next Open skips the scan.
      Status st = dir_->MarkClean();
      if (!st.ok()) spdlog::warn("disk cache: {}", st.ToString());
    }
  }
  {
    std::lock_guard lock(mu_);
    index_.reset();
  }
}

std::string DiskBlockCache::PathOf(const BlockId& id) const {
  std::string hex = id.ToHex();
  return options_.dir + "/blocks/" + hex.substr(0, 2) + "/" + hex + ".blk";
}

BlockExtent DiskBlockCache::ExtentOf(const BlockKey& key) const {
  return dsfs::ExtentOf(key, options_.block_size);
}

std::string DiskBlockCache::BlockPath(const BlockKey& key) const {
  return PathOf(ComputeBlockId(ExtentOf(key)));
}

uint64_t DiskBlockCache::UsedBytes() const { return used_bytes_.load(); }

size_t DiskBlockCache::block_count() const {
  std::lock_guard lock(mu_);
  return policy_.size();
}

IndexMeta DiskBlockCache::MetaLocked() const {
  return IndexMeta{used_bytes_.load(), next_seq_ - 1, kBlockFormatVersion};
}

Status DiskBlockCache::WriteIndexLocked(CacheIndex::Batch& batch) {
  if (batch.count() == 0) return Status::Ok();
  if (!index_) return Status::IoError("disk cache index is not open");
  index_writes_.Add();
  return index_->Write(batch);
}

void DiskBlockCache::DropLocked(const BlockId& id, CacheIndex::Batch* batch) {
  std::string path = PathOf(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    if (errno == EISDIR) {
      RemoveTreeNoFollow(path);  // a directory where a block file should be
    } else {
      spdlog::warn("disk cache: cannot delete {}: {}", path, ErrnoText(errno));
      consistent_ = false;
    }
  }
  policy_.Remove(id);
  dirty_.erase(id);
  if (state_ == DiskCacheState::kLoadingIndex) dropped_.insert(id);
  batch->Delete(id);
  if (AcceptsPutsLocked()) used_bytes_ = policy_.total_bytes();
}

void DiskBlockCache::EvictLocked(uint64_t incoming, const BlockId* keep, CacheIndex::Batch* batch) {
  uint64_t base = policy_.total_bytes();
  if (keep) {
    if (auto e = policy_.Find(*keep)) base -= e->bytes;  // being replaced
  }
  if (base + incoming <= options_.capacity_bytes) return;
  for (const auto& v : policy_.PickVictims(base + incoming - options_.capacity_bytes, keep)) {
    DropLocked(v.id, batch);
    evictions_.Add();
  }
}

void DiskBlockCache::CountWriteError(const Status& st) {
  write_errors_.Add();
  uint64_t n = write_errors_.value();
  if (n == 1 || n % 100 == 0) {
    spdlog::warn("disk cache write failed ({} so far; reads continue): {}", n, st.ToString());
  }
}

void DiskBlockCache::ReportCorrupt(const BlockId& id, const Status& st) {
  corrupt_.Add();
  spdlog::warn("disk cache: dropping corrupt block {}: {}", id.ToHex(), st.message());
}

bool DiskBlockCache::Contains(const BlockKey& key) const {
  const BlockId id = ComputeBlockId(ExtentOf(key));
  std::lock_guard lock(mu_);
  return state_ != DiskCacheState::kOff && policy_.Find(id).has_value();
}

Result<std::optional<BlockData>> DiskBlockCache::Get(const BlockKey& key) {
  return Lookup(key, [this](const std::string& path, const BlockExtent& extent) {
    return ReadBlockFile(path, extent, options_.buffers);
  });
}

Result<std::optional<BlockData>> DiskBlockCache::GetRange(const BlockKey& key, uint64_t offset,
                                                          size_t len) {
  return Lookup(key, [&](const std::string& path, const BlockExtent& extent) {
    return ReadBlockFileRange(path, extent, offset, len, options_.buffers);
  });
}

Result<std::optional<BlockData>> DiskBlockCache::Lookup(const BlockKey& key,
                                                        const BlockReader& read) {
  {
    std::lock_guard lock(mu_);
    if (state_ == DiskCacheState::kOff) {
      misses_.Add();
      return std::optional<BlockData>();
    }
  }
  const BlockExtent extent = ExtentOf(key);
  BlockId id = ComputeBlockId(extent);
  auto data = read(PathOf(id), extent);
  if (data.ok()) {
    hits_.Add();
    bytes_read_.Add((*data)->size());
    std::lock_guard lock(mu_);
    if (policy_.Touch(id, next_seq_)) {
      ++next_seq_;
      dirty_.insert(id);
      if (dirty_.size() >= options_.access_flush_batch) cv_.notify_all();
    }
    return std::optional<BlockData>(std::move(data).value());
  }
  const Status& st = data.status();
  if (st.code() == StatusCode::kIoError) {
    read_errors_.Add();
    spdlog::warn("disk cache read failed: {}", st.ToString());
    return st;
  }
  misses_.Add();
  std::lock_guard lock(mu_);
  CacheIndex::Batch batch;
  if (st.code() == StatusCode::kCorruption) {
    ReportCorrupt(id, st);
    DropLocked(id, &batch);
  } else if (AcceptsPutsLocked() && policy_.Find(id)) {
    DropLocked(id, &batch);  // index entry without a file
    orphan_entries_.Add();
  }
  if (batch.count() > 0) {
    batch.SetMeta(MetaLocked());
    Status ws = WriteIndexLocked(batch);
    if (!ws.ok()) {
      consistent_ = false;
      spdlog::warn("disk cache: {}", ws.ToString());
    }
  }
  return std::optional<BlockData>();
}

Status DiskBlockCache::Put(const BlockKey& key, BlockData data) {
  if (!data) return Status::InvalidArgument("disk cache Put without data");
  const BlockExtent extent = ExtentOf(key);
  if (data->size() != extent.length) {
    return Status::InvalidArgument(
        "block " + std::to_string(key.index) + " of '" + key.object.key.substr(0, 64) + "' is " +
        std::to_string(data->size()) + " bytes, but with a block size of " +
        std::to_string(options_.block_size) + " its extent is " + std::to_string(extent.length));
  }
  if (BlockFileSize(extent) - extent.length > kMaxBlockHeaderSize) {
    return Status::InvalidArgument("key too long to cache: " + key.object.key.substr(0, 64));
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.ready_wait,
                 [&] { return AcceptsPutsLocked() || state_ == DiskCacheState::kOff || stop_; });
    if (state_ == DiskCacheState::kOff) return Status::Unavailable("disk cache is off");
    if (stop_) return Status::Unavailable("disk cache is closing");
    if (!AcceptsPutsLocked()) return Status::Unavailable("disk cache index is still loading");
  }
  BlockId id = ComputeBlockId(extent);
  std::string final_path = PathOf(id);
  std::string tmp_path = options_.dir + "/tmp/" + id.ToHex() + "." + tmp_prefix_ + "." +
                         std::to_string(tmp_counter_.fetch_add(1)) + ".tmp";
  Status st = WriteBlockFile(tmp_path, extent, *data);
  if (!st.ok()) {
    CountWriteError(st);
    return st;
  }
  uint64_t bytes = BlockFileSize(extent);

  std::lock_guard lock(mu_);
  CacheIndex::Batch batch;
  EvictLocked(bytes, &id, &batch);
  int rc = ::rename(tmp_path.c_str(), final_path.c_str());
  if (rc != 0 && errno == ENOENT) {
    std::string sub = final_path.substr(0, final_path.find_last_of('/'));
    if (::mkdir(sub.c_str(), 0700) == 0 || errno == EEXIST) {
      rc = ::rename(tmp_path.c_str(), final_path.c_str());
    }
  }
  if (rc != 0) {
    st = Status::IoError("rename " + tmp_path + " -> " + final_path + ": " + ErrnoText(errno));
    ::unlink(tmp_path.c_str());
  } else {
    policy_.Add(id, bytes, next_seq_++);
    dirty_.erase(id);
    used_bytes_ = policy_.total_bytes();
    batch.Put(id, IndexRecord{bytes, next_seq_ - 1});
  }
  batch.SetMeta(MetaLocked());
  Status ws = WriteIndexLocked(batch);
  if (!ws.ok() && st.ok()) {
    // Without an index entry the block would be unaccounted: take it back.
    ::unlink(final_path.c_str());
    policy_.Remove(id);
    used_bytes_ = policy_.total_bytes();
    consistent_ = false;  // evictions above may not have reached the index
    st = ws;
  }
  if (!st.ok()) {
    st = Status(StatusCode::kIoError, st.message());
    CountWriteError(st);
  }
  return st;
}

Status DiskBlockCache::FlushAccessTimes() {
  std::lock_guard lock(mu_);
  if (dirty_.empty() || !index_) return Status::Ok();
  CacheIndex::Batch batch;
  for (const auto& id : dirty_) {
    if (auto e = policy_.Find(id)) batch.Put(id, IndexRecord{e->bytes, e->seq});
  }
  dirty_.clear();
  batch.SetMeta(MetaLocked());
  return WriteIndexLocked(batch);
}

}  // namespace dsfs
