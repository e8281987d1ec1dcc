// DiskBlockCache start-up: the background thread, the index load and the
// reconcile of the files against the index (the states and transitions are
// in disk_block_cache.h).
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/disk_block_cache.h"

namespace dsfs {
namespace {

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

const char* DiskCacheStateName(DiskCacheState state) {
  switch (state) {
    case DiskCacheState::kLoadingIndex:
      return "loading-index";
    case DiskCacheState::kRebuilding:
      return "rebuilding";
    case DiskCacheState::kReconciling:
      return "reconciling";
    case DiskCacheState::kReady:
      return "ready";
    case DiskCacheState::kOff:
      return "off";
  }
  return "?";
}

bool DiskBlockCache::ready() const {
  std::lock_guard lock(mu_);
  return AcceptsPutsLocked();
}

DiskCacheState DiskBlockCache::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

bool DiskBlockCache::WaitForStartup(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return state_ == DiskCacheState::kReady || state_ == DiskCacheState::kOff;
  });
}

void DiskBlockCache::StartLocked(DiskCacheState state, bool reconcile_after_load) {
  state_ = state;
  reconcile_after_load_ = reconcile_after_load;
  consistent_ = state == DiskCacheState::kLoadingIndex && !reconcile_after_load;
}

void DiskBlockCache::TurnOffLocked(const std::string& why) {
  if (state_ == DiskCacheState::kOff) return;
  spdlog::warn("disk cache {} is off until the next mount (reads go to the store): {}",
               options_.dir, why);
  state_ = DiskCacheState::kOff;
  consistent_ = false;
  dropped_.clear();
  turned_off_.Add();
  on_.Set(0);
  cv_.notify_all();  // writers waiting for kReady give up now
}

void DiskBlockCache::BackgroundMain() {
  Status st = LoadIndex();
  bool reconcile;
  {
    std::lock_guard lock(mu_);
    reconcile = st.ok() && !stop_ &&
                (state_ == DiskCacheState::kRebuilding || state_ == DiskCacheState::kReconciling);
  }
  if (reconcile) (void)Reconcile();  // a failure has turned the tier off
  std::unique_lock lock(mu_);
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
    if (state_ != DiskCacheState::kLoadingIndex) return Status::Ok();  // nothing to load
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
  if (st.code() == StatusCode::kCorruption) {
    // The index opened but cannot be read: start over from the files.
    auto fresh = CacheIndex::Recreate(std::move(index_), st.message());
    if (!fresh.ok()) {
      TurnOffLocked("cannot recreate the unreadable index: " + fresh.status().ToString());
      return fresh.status();
    }
    index_ = std::move(fresh).value();
    policy_ = LruPolicy();
    dirty_.clear();
    dropped_.clear();
    used_bytes_ = 0;
    next_seq_ = 1;
    state_ = DiskCacheState::kRebuilding;
    consistent_ = false;
    return Status::Ok();
  }
  if (!st.ok()) {
    TurnOffLocked("loading the index: " + st.ToString());
    return st;
  }
  FinishLoadLocked();
  return Status::Ok();
}

void DiskBlockCache::FinishLoadLocked() {
  dropped_.clear();
  CacheIndex::Batch batch;
  EvictLocked(0, nullptr, &batch);  // the cap may have shrunk since the last mount
  used_bytes_ = policy_.total_bytes();
  batch.SetMeta(MetaLocked());
  Status st = WriteIndexLocked(batch);
  if (!st.ok()) {
    TurnOffLocked("writing the index: " + st.ToString());
    return;
  }
  state_ = reconcile_after_load_ ? DiskCacheState::kReconciling : DiskCacheState::kReady;
  cv_.notify_all();
}

Status DiskBlockCache::MarkReadyLocked() {
  CacheIndex::Batch batch;
  EvictLocked(0, nullptr, &batch);
  used_bytes_ = policy_.total_bytes();
  batch.SetMeta(MetaLocked());
  DSFS_RETURN_IF_ERROR(WriteIndexLocked(batch));
  state_ = DiskCacheState::kReady;
  consistent_ = true;
  cv_.notify_all();
  return Status::Ok();
}

Status DiskBlockCache::Reconcile() {
  DiskCacheState at_start;
  bool rebuild;
  {
    std::lock_guard lock(mu_);
    at_start = state_;
    rebuild = state_ == DiskCacheState::kRebuilding;
    if (state_ == DiskCacheState::kOff) return Status::Unavailable("disk cache is off");
    if (state_ == DiskCacheState::kLoadingIndex) {
      return Status::Unavailable("load the index before reconciling");
    }
  }
  // A failure during start-up turns the tier off: nothing must wait for a
  // state the cache can no longer reach. In kReady (an explicit fsck) it
  // is only reported.
  auto fail = [&](Status st) {
    std::lock_guard lock(mu_);
    if (stop_) return Status::Unavailable("disk cache closing");
    if (at_start != DiskCacheState::kReady) TurnOffLocked("reconcile: " + st.ToString());
    return st;
  };
  const std::string& dir = options_.dir;
  // 1. Temp files of earlier runs (ours carry tmp_prefix_). Never
  // followed: a symlink is removed as a link.
  std::string tmp_dir = dir + "/tmp";
  auto temps = ListDirNoFollow(tmp_dir);
  if (!temps.ok()) return fail(temps.status());
  for (const auto& e : *temps) {
    if (e.name.find(tmp_prefix_) != std::string::npos) continue;
    RemoveTreeNoFollow(tmp_dir + "/" + e.name);
    temp_removed_.Add();
  }
  // 2. Block files without index entries: added if valid, else deleted.
  std::string blocks_dir = dir + "/blocks";
  auto subdirs = ListDirNoFollow(blocks_dir);
  if (!subdirs.ok()) return fail(subdirs.status());
  CacheIndex::Batch batch;
  for (const auto& sub : *subdirs) {
    std::string sub_path = blocks_dir + "/" + sub.name;
    if (!sub.is_dir || sub.name.size() != 2 || !IsHex(sub.name)) {
      RemoveTreeNoFollow(sub_path);
      continue;
    }
    auto files = ListDirNoFollow(sub_path);
    if (!files.ok()) return fail(files.status());
    for (const auto& f : *files) {
      std::string path = sub_path + "/" + f.name;
      BlockId id;
      if (f.is_dir || f.name.size() != 36 || !f.name.ends_with(".blk") ||
          !f.name.starts_with(sub.name) || !BlockId::FromHex(f.name.substr(0, 32), &id)) {
        RemoveTreeNoFollow(path);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        if (stop_) return Status::Unavailable("disk cache closing");
        if (policy_.Find(id)) continue;
      }
      files_scanned_.Add();
      // Opened O_NOFOLLOW | O_NONBLOCK and checked to be a regular file.
      auto info = ReadBlockFileHeader(path);
      std::lock_guard lock(mu_);
      if (policy_.Find(id)) continue;  // a Put raced us
      if (!info.ok() && info.status().code() == StatusCode::kNotFound) continue;
      if (!info.ok() && info.status().message().find(kOldBlockFormat) != std::string::npos) {
        old_format_removed_.Add();
        DropLocked(id, &batch);
        continue;
      }
      if (!info.ok() || ComputeBlockId(info->extent) != id) {
        ReportCorrupt(id, info.ok() ? Status::Corruption(path + ": header names another block")
                                    : info.status());
        DropLocked(id, &batch);
        continue;
      }
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) continue;  // dropped meanwhile
      // Recency unknown: oldest, so these go first.
      policy_.Add(id, info->file_size(), 0);
      if (AcceptsPutsLocked()) used_bytes_ = policy_.total_bytes();
      batch.Put(id, IndexRecord{info->file_size(), 0});
      orphan_files_.Add();
      if (batch.count() >= 1024) {
        Status ws = WriteIndexLocked(batch);
        if (!ws.ok()) {
          if (at_start != DiskCacheState::kReady) TurnOffLocked("reconcile: " + ws.ToString());
          return ws;
        }
        batch = CacheIndex::Batch();
      }
    }
  }
  // 3. Index entries without files.
  std::vector<BlockId> ids;
  if (!rebuild) {
    std::lock_guard lock(mu_);
    ids = policy_.Ids();
  }
  for (const auto& id : ids) {
    std::string path = PathOf(id);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 || errno != ENOENT) continue;
    std::lock_guard lock(mu_);
    if (stop_) return Status::Unavailable("disk cache closing");
    if (!policy_.Find(id) || ::lstat(path.c_str(), &st) == 0) continue;
    DropLocked(id, &batch);
    orphan_entries_.Add();
  }
  std::lock_guard lock(mu_);
  if (stop_) return Status::Unavailable("disk cache closing");
  if (state_ == DiskCacheState::kOff) return Status::Unavailable("disk cache is off");
  Status ws = WriteIndexLocked(batch);
  if (!ws.ok()) {
    if (at_start != DiskCacheState::kReady) TurnOffLocked("reconcile: " + ws.ToString());
    return ws;
  }
  Status ms = MarkReadyLocked();
  if (!ms.ok() && at_start != DiskCacheState::kReady) TurnOffLocked("reconcile: " + ms.ToString());
  return ms;
}

}  // namespace dsfs
