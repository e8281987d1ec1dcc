#include "cache/disk_block_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "common/config.h"

namespace dsfs {
namespace {

constexpr char kFormatPrefix[] = "dsfs-cache-format ";

std::string ErrnoText(int err) { return std::strerror(err); }

struct DirEntry {
  std::string name;
  bool is_dir = false;
};

// Entries of a directory except . and .. (NotFound if it does not exist).
Result<std::vector<DirEntry>> ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::IoError("opendir " + path + ": " + ErrnoText(errno));
  }
  std::vector<DirEntry> out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::lstat((path + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    out.push_back({std::move(name), is_dir});
  }
  ::closedir(d);
  return out;
}

// Removes a file or a whole tree (for junk inside our own directories).
void RemoveTree(const std::string& path) {
  auto entries = ListDir(path);
  if (entries.ok()) {
    for (const auto& e : *entries) RemoveTree(path + "/" + e.name);
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Creates cache_dir if needed and checks it is ours and writable.
Status PrepareCacheDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::IoError("cache_dir " + dir + ": " + ErrnoText(errno));
    // Parents are ordinary directories; only cache_dir itself is private.
    std::string parent = dir;
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    parent = parent.substr(
        0, parent.find_last_of('/') == std::string::npos ? 0 : parent.find_last_of('/'));
    std::vector<std::string> missing;
    for (std::string p = parent; !p.empty() && ::access(p.c_str(), F_OK) != 0;
         p = p.substr(0, p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/'))) {
      missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::IoError("cannot create " + *it + " for cache_dir " + dir + ": " +
                               ErrnoText(errno));
      }
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IoError("cannot create cache_dir " + dir + ": " + ErrnoText(errno));
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return Status::IoError("cache_dir " + dir + ": " + ErrnoText(errno));
    }
  }
  if (!S_ISDIR(st.st_mode))
    return Status::InvalidArgument("cache_dir " + dir + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Status::AccessDenied("cache_dir " + dir + " is owned by uid " +
                                std::to_string(st.st_uid) + ", but dsfs runs as uid " +
                                std::to_string(::geteuid()) +
                                "; use a cache_dir owned by this user");
  }
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
    return Status::ReadOnly("cache_dir " + dir + " is on a read-only filesystem");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::AccessDenied("cache_dir " + dir + " is not writable: " + ErrnoText(errno));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return Status::IoError("cannot chmod 0700 cache_dir " + dir + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

// Reads FORMAT. Returns true for a new cache (no FORMAT, nothing else there).
Result<bool> CheckFormat(const std::string& dir) {
  std::string path = dir + "/FORMAT";
  std::ifstream in(path);
  if (!in) {
    if (::access(path.c_str(), F_OK) == 0) {
      return Status::IoError("cannot read " + path + ": " + ErrnoText(errno));
    }
    DSFS_ASSIGN_OR_RETURN(auto entries, ListDir(dir));
    for (const auto& e : entries) {
      if (e.name == "LOCK" || e.name == "lost+found" || e.name == "FORMAT.tmp") continue;
      return Status::InvalidArgument("cache_dir " + dir +
                                     " is not empty and has no FORMAT file, so it is not a dsfs "
                                     "cache; choose an empty or new directory");
    }
    return true;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  int version = 0;
  const char* begin = text.data() + std::strlen(kFormatPrefix);
  const char* end = text.data() + text.size();
  if (!text.starts_with(kFormatPrefix) || std::from_chars(begin, end, version).ec != std::errc()) {
    return Status::InvalidArgument("cache_dir " + dir + " has an unreadable FORMAT file ('" +
                                   text.substr(0, 40) +
                                   "'); remove it or choose another cache_dir");
  }
  if (version != kCacheDirFormatVersion) {
    return Status::InvalidArgument("cache_dir " + dir + " has format version " +
                                   std::to_string(version) + ", this dsfs understands " +
                                   std::to_string(kCacheDirFormatVersion) +
                                   "; remove it or choose another cache_dir");
  }
  return false;
}

Status WriteSmallFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("create " + tmp + ": " + ErrnoText(errno));
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  int err = errno;
  ok = (::fsync(fd) == 0) && ok;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    return Status::IoError("write " + path + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError("mkdir " + path + ": " + ErrnoText(errno));
  }
  return Status::Ok();
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
      index_writes_(metrics_->GetCounter("dsfs_cache_index_writes_total",
                                         "Write batches applied to the RocksDB index")) {
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
  DSFS_RETURN_IF_ERROR(PrepareCacheDir(dir));
  DSFS_ASSIGN_OR_RETURN(bool fresh, CheckFormat(dir));

  std::unique_ptr<DiskBlockCache> cache(new DiskBlockCache(options, metrics));
  std::string lock_path = dir + "/LOCK";
  cache->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (cache->lock_fd_ < 0) return Status::IoError("create " + lock_path + ": " + ErrnoText(errno));
  if (::flock(cache->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Unavailable("cache_dir " + dir + " is in use by another dsfs process");
    }
    return Status::IoError("lock " + lock_path + ": " + ErrnoText(errno));
  }
  if (fresh) {
    DSFS_RETURN_IF_ERROR(WriteSmallFile(
        dir + "/FORMAT", kFormatPrefix + std::to_string(kCacheDirFormatVersion) + "\n"));
  }
  DSFS_RETURN_IF_ERROR(MakeDir(dir + "/tmp"));
  DSFS_RETURN_IF_ERROR(MakeDir(dir + "/blocks"));
  std::string clean_path = dir + "/CLEAN";
  bool clean = ::access(clean_path.c_str(), F_OK) == 0;
  if (clean && ::unlink(clean_path.c_str()) != 0) {
    return Status::IoError("unlink " + clean_path + ": " + ErrnoText(errno));
  }

  bool recreated = false;
  DSFS_ASSIGN_OR_RETURN(auto index, CacheIndex::Open(dir + "/index", &recreated));
  IndexMeta meta;
  if (!recreated) {
    auto m = index->ReadMeta();
    if (m.ok()) {
      meta = *m;
    } else {
      // Unreadable meta: treat like a broken index.
      spdlog::warn("cache index meta unreadable ({}); rebuilding", m.status().message());
      DSFS_ASSIGN_OR_RETURN(index, CacheIndex::Recreate(std::move(index), m.status().message()));
      recreated = true;
    }
  }
  {
    std::lock_guard lock(cache->mu_);
    cache->index_ = std::move(index);
    cache->next_seq_ = meta.max_seq + 1;
    cache->used_bytes_ = meta.used_bytes;
    cache->rebuild_ = recreated;
    cache->needs_reconcile_ = recreated || (!clean && !fresh);
    cache->consistent_ = !cache->needs_reconcile_;
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
  if (FlushAccessTimes().ok()) {
    std::lock_guard lock(mu_);
    if (index_ && index_->Flush().ok() && consistent_) {
      // Marks the index as matching the files: the next Open skips the scan.
      Status st = WriteSmallFile(options_.dir + "/CLEAN", "");
      if (!st.ok()) spdlog::warn("disk cache: {}", st.ToString());
    }
  }
  {
    std::lock_guard lock(mu_);
    index_.reset();
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string DiskBlockCache::PathOf(const BlockId& id) const {
  std::string hex = id.ToHex();
  return options_.dir + "/blocks/" + hex.substr(0, 2) + "/" + hex + ".blk";
}

std::string DiskBlockCache::BlockPath(const BlockKey& key) const {
  return PathOf(ComputeBlockId(key));
}

uint64_t DiskBlockCache::UsedBytes() const { return used_bytes_.load(); }

size_t DiskBlockCache::block_count() const {
  std::lock_guard lock(mu_);
  return policy_.size();
}

bool DiskBlockCache::ready() const {
  std::lock_guard lock(mu_);
  return ready_;
}

bool DiskBlockCache::WaitForStartup(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return startup_done_; });
}

void DiskBlockCache::BackgroundMain() {
  Status st = LoadIndex();
  bool reconcile;
  {
    std::lock_guard lock(mu_);
    if (!st.ok() && !stop_) spdlog::warn("disk cache: loading the index: {}", st.ToString());
    reconcile = needs_reconcile_ && !stop_;
  }
  if (reconcile) {
    st = Reconcile();
    std::lock_guard lock(mu_);
    if (!st.ok() && !stop_) spdlog::warn("disk cache: reconcile: {}", st.ToString());
  }
  std::unique_lock lock(mu_);
  startup_done_ = true;
  cv_.notify_all();
  while (!stop_) {
    cv_.wait_for(lock, options_.access_flush_interval,
                 [&] { return stop_ || dirty_.size() >= options_.access_flush_batch; });
    if (stop_) break;
    lock.unlock();
    st = FlushAccessTimes();
    if (!st.ok()) spdlog::warn("disk cache: writing access times: {}", st.ToString());
    lock.lock();
  }
}

Status DiskBlockCache::LoadIndex() {
  CacheIndex* index;
  {
    std::lock_guard lock(mu_);
    if (rebuild_ || ready_) return Status::Ok();  // nothing to load / already loaded
    index = index_.get();  // only LoadIndex replaces index_, so it stays valid
  }
  std::vector<std::pair<BlockId, IndexRecord>> chunk;
  auto apply = [&] {
    std::lock_guard lock(mu_);
    for (const auto& [id, rec] : chunk) {
      if (!dropped_.count(id)) policy_.AddIfAbsent(id, rec.bytes, rec.seq);
    }
    index_loaded_.Add(chunk.size());
    chunk.clear();
    return !stop_;
  };
  Status st = index->ForEach([&](const BlockId& id, const IndexRecord& rec) {
    chunk.emplace_back(id, rec);
    return chunk.size() < 4096 || apply();
  });
  if (st.ok()) apply();
  std::lock_guard lock(mu_);
  if (stop_) return Status::Unavailable("disk cache closing");
  if (!st.ok()) {
    // The index opened but cannot be read: start over from the files.
    auto fresh = CacheIndex::Recreate(std::move(index_), st.message());
    if (!fresh.ok()) return fresh.status();
    index_ = std::move(fresh).value();
    policy_ = LruPolicy();
    dirty_.clear();
    rebuild_ = true;
    needs_reconcile_ = true;
    consistent_ = false;
    return Status::Ok();
  }
  MarkReadyLocked();
  return Status::Ok();
}

Status DiskBlockCache::Reconcile() {
  // 1. Temp files of earlier runs (ours start with tmp_prefix_).
  std::string tmp_dir = options_.dir + "/tmp";
  DSFS_ASSIGN_OR_RETURN(auto temps, ListDir(tmp_dir));
  for (const auto& e : temps) {
    if (e.name.find(tmp_prefix_) != std::string::npos) continue;
    RemoveTree(tmp_dir + "/" + e.name);
    temp_removed_.Add();
  }
  // 2. Block files without index entries: added if valid, else deleted.
  std::string blocks_dir = options_.dir + "/blocks";
  DSFS_ASSIGN_OR_RETURN(auto subdirs, ListDir(blocks_dir));
  CacheIndex::Batch batch;
  for (const auto& sub : subdirs) {
    std::string sub_path = blocks_dir + "/" + sub.name;
    if (!sub.is_dir || sub.name.size() != 2 || !IsHex(sub.name)) {
      RemoveTree(sub_path);
      continue;
    }
    auto files = ListDir(sub_path);
    if (!files.ok()) continue;
    for (const auto& f : *files) {
      std::string path = sub_path + "/" + f.name;
      BlockId id;
      if (f.is_dir || f.name.size() != 36 || !f.name.ends_with(".blk") ||
          !f.name.starts_with(sub.name) || !BlockId::FromHex(f.name.substr(0, 32), &id)) {
        RemoveTree(path);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        if (stop_) return Status::Unavailable("disk cache closing");
        if (policy_.Find(id)) continue;
      }
      files_scanned_.Add();
      auto info = ReadBlockFileHeader(path);
      std::lock_guard lock(mu_);
      if (policy_.Find(id)) continue;  // a Put raced us
      if (!info.ok() || ComputeBlockId(info->key) != id) {
        if (info.status().code() == StatusCode::kNotFound) continue;
        ReportCorrupt(id, info.ok() ? Status::Corruption(path + ": header names another block")
                                    : info.status());
        DropLocked(id, &batch);
        continue;
      }
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) continue;  // dropped meanwhile
      // Recency unknown: oldest, so these go first.
      policy_.Add(id, info->file_size(), 0);
      if (ready_) used_bytes_ = policy_.total_bytes();
      batch.Put(id, IndexRecord{info->file_size(), 0});
      orphan_files_.Add();
      if (batch.count() >= 1024) {
        Status ws = WriteIndexLocked(batch);
        if (!ws.ok()) return ws;
        batch = CacheIndex::Batch();
      }
    }
  }
  // 3. Index entries without files.
  std::vector<BlockId> ids;
  {
    std::lock_guard lock(mu_);
    if (!rebuild_) ids = policy_.Ids();
  }
  for (const auto& id : ids) {
    std::string path = PathOf(id);
    if (::access(path.c_str(), F_OK) == 0 || errno != ENOENT) continue;
    std::lock_guard lock(mu_);
    if (stop_) return Status::Unavailable("disk cache closing");
    if (!policy_.Find(id) || ::access(path.c_str(), F_OK) == 0) continue;
    DropLocked(id, &batch);
    orphan_entries_.Add();
  }
  std::lock_guard lock(mu_);
  if (ready_) {
    EvictLocked(0, nullptr, &batch);
    batch.SetMeta(MetaLocked());
    Status ws = WriteIndexLocked(batch);
    if (!ws.ok()) return ws;
  } else {
    Status ws = WriteIndexLocked(batch);
    if (!ws.ok()) return ws;
    MarkReadyLocked();
  }
  consistent_ = true;
  needs_reconcile_ = false;
  return Status::Ok();
}

void DiskBlockCache::MarkReadyLocked() {
  ready_ = true;
  dropped_.clear();
  used_bytes_ = policy_.total_bytes();
  CacheIndex::Batch batch;
  EvictLocked(0, nullptr, &batch);  // the cap may have shrunk since the last mount
  batch.SetMeta(MetaLocked());
  Status st = WriteIndexLocked(batch);
  if (!st.ok()) spdlog::warn("disk cache: {}", st.ToString());
  cv_.notify_all();
}

IndexMeta DiskBlockCache::MetaLocked() const {
  return IndexMeta{used_bytes_.load(), next_seq_ - 1};
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
    spdlog::warn("disk cache: cannot delete {}: {}", path, ErrnoText(errno));
    consistent_ = false;
  }
  policy_.Remove(id);
  dirty_.erase(id);
  if (!ready_) dropped_.insert(id);
  batch->Delete(id);
  if (ready_) used_bytes_ = policy_.total_bytes();
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

Result<std::optional<BlockData>> DiskBlockCache::Get(const BlockKey& key) {
  BlockId id = ComputeBlockId(key);
  auto data = ReadBlockFile(PathOf(id), key, options_.buffers);
  if (data.ok()) {
    hits_.Add();
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
  } else if (ready_ && policy_.Find(id)) {
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
  if (data->size() > options_.block_size) {
    return Status::InvalidArgument("block of " + std::to_string(data->size()) +
                                   " bytes is larger than the cache block size " +
                                   std::to_string(options_.block_size));
  }
  if (BlockFileSize(key, 0) > kMaxBlockHeaderSize) {
    return Status::InvalidArgument("key too long to cache: " + key.object.key.substr(0, 64));
  }
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, options_.ready_wait, [&] { return ready_ || stop_; }) || stop_) {
      return Status::Unavailable("disk cache index is still loading");
    }
  }
  BlockId id = ComputeBlockId(key);
  std::string final_path = PathOf(id);
  std::string tmp_path = options_.dir + "/tmp/" + id.ToHex() + "." + tmp_prefix_ + "." +
                         std::to_string(tmp_counter_.fetch_add(1)) + ".tmp";
  Status st = WriteBlockFile(tmp_path, key, *data);
  if (!st.ok()) {
    CountWriteError(st);
    return st;
  }
  uint64_t bytes = BlockFileSize(key, data->size());

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

Result<uint64_t> ResolveCacheSize(const std::string& text, const std::string& dir) {
  if (text.empty()) return Status::InvalidArgument("cache_size is empty");
  uint64_t bytes = 0;
  if (text.back() == '%') {
    double pct = 0;
    const char* begin = text.data();
    const char* end = text.data() + text.size() - 1;
    auto [ptr, ec] = std::from_chars(begin, end, pct);
    if (ec != std::errc() || ptr != end || !(pct > 0 && pct <= 100)) {
      return Status::InvalidArgument("cache_size '" + text +
                                     "' is not a percentage between 0 and 100");
    }
    // Measure the filesystem of dir, or of its nearest existing parent.
    std::string p = dir.empty() ? "." : dir;
    while (::access(p.c_str(), F_OK) != 0 && p.find('/') != std::string::npos && p != "/") {
      p = p.substr(0, p.find_last_of('/'));
      if (p.empty()) p = "/";
    }
    struct statvfs vfs;
    if (::statvfs(p.c_str(), &vfs) != 0) {
      return Status::IoError("cannot measure the filesystem of " + p + ": " + ErrnoText(errno));
    }
    double total = static_cast<double>(vfs.f_blocks) * static_cast<double>(vfs.f_frsize);
    bytes = static_cast<uint64_t>(total * pct / 100.0);
  } else {
    DSFS_ASSIGN_OR_RETURN(bytes, ParseSize(text));
  }
  if (bytes == 0) return Status::InvalidArgument("cache_size '" + text + "' is zero");
  return bytes;
}

}  // namespace dsfs
