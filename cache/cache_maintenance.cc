#include "cache/cache_maintenance.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <set>
#include <tuple>
#include <unordered_map>

#include "cache/block_file.h"
#include "cache/cache_dir.h"
#include "cache/cache_index.h"
#include "common/posix.h"

namespace dsfs {
namespace {

std::string BlockPathOf(const std::string& dir, const BlockId& id) {
  std::string hex = id.ToHex();
  return dir + "/blocks/" + hex.substr(0, 2) + "/" + hex + ".blk";
}

// One file (or other entry) under blocks/XX/.
struct BlockEntry {
  std::string path;
  bool name_ok = false;  // blocks/XX/<id>.blk with XX the id's first digits
  BlockId id;
};

// Calls fn for every entry under blocks/*/ (and for stray entries of blocks/).
Status ForEachBlockEntry(const std::string& dir, const std::function<void(const BlockEntry&)>& fn) {
  std::string blocks = dir + "/blocks";
  auto subs = ListDirNoFollow(blocks);
  if (!subs.ok()) {
    if (subs.status().code() == StatusCode::kNotFound) return Status::Ok();  // never used
    return subs.status();
  }
  for (const auto& sub : *subs) {
    std::string sub_path = blocks + "/" + sub.name;
    if (!sub.is_dir) {
      fn(BlockEntry{sub_path, false, {}});
      continue;
    }
    DSFS_ASSIGN_OR_RETURN(auto files, ListDirNoFollow(sub_path));
    for (const auto& f : files) {
      BlockEntry e{sub_path + "/" + f.name, false, {}};
      e.name_ok = !f.is_dir && f.name.size() == 36 && f.name.ends_with(".blk") &&
                  BlockId::FromHex(f.name.substr(0, 32), &e.id) &&
                  f.name.starts_with(sub.name) && sub.name.size() == 2;
      fn(e);
    }
  }
  return Status::Ok();
}

bool IsRegular(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct Locked {
  CacheDir dir;
  std::unique_ptr<CacheIndex> index;
};

// Takes the LOCK (refused while a mount holds it) and opens the index.
Result<Locked> OpenLocked(const std::string& dir) {
  DSFS_RETURN_IF_ERROR(CheckIsCacheDir(dir));
  DSFS_ASSIGN_OR_RETURN(CacheDir cd, CacheDir::Open(dir));
  IndexOpenOutcome outcome;
  DSFS_ASSIGN_OR_RETURN(auto index, CacheIndex::Open(cd.index_dir(), &outcome));
  return Locked{std::move(cd), std::move(index)};
}

// Marks the last close unclean: the next mount then reconciles the files
// against the index, whatever a tool did to them.
void DropCleanMarker(const std::string& dir) { ::unlink((dir + "/CLEAN").c_str()); }

}  // namespace

Status CheckIsCacheDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::InvalidArgument(dir + " is not a dsfs cache directory: " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(dir + " is not a dsfs cache directory: not a directory");
  }
  std::string format = dir + "/FORMAT";
  if (::lstat(format.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(dir + " is not a dsfs cache directory (no FORMAT file)");
  }
  return Status::Ok();
}

const char* CacheProblemName(CacheProblemKind kind) {
  switch (kind) {
    case CacheProblemKind::kNotRegular: return "not-a-regular-file";
    case CacheProblemKind::kBadName: return "bad-name";
    case CacheProblemKind::kBadHeader: return "bad-header";
    case CacheProblemKind::kOldVersion: return "wrong-version";
    case CacheProblemKind::kWrongSize: return "wrong-size";
    case CacheProblemKind::kBadChecksum: return "bad-checksum";
    case CacheProblemKind::kMisnamed: return "misnamed";
    case CacheProblemKind::kNoEntry: return "block-without-entry";
    case CacheProblemKind::kNoBlock: return "entry-without-block";
    case CacheProblemKind::kTempFile: return "temp-file";
  }
  return "?";
}

bool FsckReport::corrupt() const {
  return std::any_of(problems.begin(), problems.end(),
                     [](const CacheProblem& p) { return p.corruption(); });
}

Result<CacheUsage> CacheUsageOf(const std::string& dir) {
  DSFS_RETURN_IF_ERROR(CheckIsCacheDir(dir));
  CacheUsage u;
  std::set<std::tuple<std::string, std::string, uint64_t>> objects;
  DSFS_RETURN_IF_ERROR(ForEachBlockEntry(dir, [&](const BlockEntry& e) {
    auto info = e.name_ok ? ReadBlockFileHeader(e.path) : Status::Corruption(e.path);
    if (!info.ok()) {
      if (info.status().code() != StatusCode::kNotFound) ++u.unreadable;
      return;
    }
    ++u.blocks;
    u.bytes += info->file_size();
    const ObjectId& o = info->extent.object;
    objects.emplace(o.key, o.etag, o.size);
  }));
  u.objects = objects.size();
  struct stat st;
  u.clean = ::lstat((dir + "/CLEAN").c_str(), &st) == 0;
  return u;
}

Result<FsckReport> FsckCache(const std::string& dir, bool repair) {
  DSFS_ASSIGN_OR_RETURN(Locked l, OpenLocked(dir));
  FsckReport report;
  std::unordered_map<BlockId, IndexRecord, BlockIdHash> entries;
  DSFS_RETURN_IF_ERROR(l.index->ForEach([&](const BlockId& id, const IndexRecord& rec) {
    entries.emplace(id, rec);
    return true;
  }));
  report.entries_checked = entries.size();
  std::vector<std::string> bad_files;
  std::unordered_map<BlockId, uint64_t, BlockIdHash> good;  // id -> file bytes
  auto problem = [&](CacheProblemKind kind, const std::string& path, std::string detail) {
    if (detail.starts_with(path + ": ")) detail.erase(0, path.size() + 2);  // said once
    report.problems.push_back({kind, path, std::move(detail)});
  };
  DSFS_RETURN_IF_ERROR(ForEachBlockEntry(dir, [&](const BlockEntry& e) {
    ++report.blocks_checked;
    if (!IsRegular(e.path)) {
      problem(CacheProblemKind::kNotRegular, e.path, "not a regular file");
      bad_files.push_back(e.path);
      return;
    }
    if (!e.name_ok) {
      problem(CacheProblemKind::kBadName, e.path, "not blocks/XX/<id>.blk");
      bad_files.push_back(e.path);
      return;
    }
    auto info = ReadBlockFileHeader(e.path);  // also checks the file's size
    if (!info.ok()) {
      const std::string& msg = info.status().message();
      CacheProblemKind kind = CacheProblemKind::kBadHeader;
      if (msg.find(kOldBlockFormat) != std::string::npos ||
          msg.find("format version") != std::string::npos) {
        kind = CacheProblemKind::kOldVersion;
      } else if (msg.find("short file") != std::string::npos ||
                 msg.find("header says") != std::string::npos) {
        kind = CacheProblemKind::kWrongSize;
      }
      problem(kind, e.path, msg);
      bad_files.push_back(e.path);
      return;
    }
    if (ComputeBlockId(info->extent) != e.id) {
      problem(CacheProblemKind::kMisnamed, e.path, "header names another block");
      bad_files.push_back(e.path);
      return;
    }
    auto data = ReadBlockFile(e.path, info->extent);  // every data checksum (each chunk)
    if (!data.ok()) {
      problem(CacheProblemKind::kBadChecksum, e.path, data.status().message());
      bad_files.push_back(e.path);
      return;
    }
    auto it = entries.find(e.id);
    if (it == entries.end()) {
      problem(CacheProblemKind::kNoEntry, e.path, "valid block, not in the index");
    } else if (it->second.bytes != info->file_size()) {
      problem(CacheProblemKind::kWrongSize, e.path,
              "index says " + std::to_string(it->second.bytes) + " bytes, file has " +
                  std::to_string(info->file_size()));
    }
    good.emplace(e.id, info->file_size());
  }));
  if (auto temps = ListDirNoFollow(dir + "/tmp"); temps.ok()) {
    for (const auto& t : *temps) {
      problem(CacheProblemKind::kTempFile, dir + "/tmp/" + t.name, "unfinished write");
      bad_files.push_back(dir + "/tmp/" + t.name);
    }
  }
  for (const auto& [id, rec] : entries) {
    if (!good.count(id)) {
      problem(CacheProblemKind::kNoBlock, BlockPathOf(dir, id), "index entry without a valid file");
    }
  }
  if (!repair) return report;
  for (const auto& path : bad_files) RemoveTreeNoFollow(path);
  CacheIndex::Batch batch;
  IndexMeta meta = {};
  DSFS_ASSIGN_OR_RETURN(meta, l.index->ReadMeta());
  meta.used_bytes = 0;
  for (const auto& [id, rec] : entries) {
    if (!good.count(id)) batch.Delete(id);
  }
  for (const auto& [id, bytes] : good) {
    auto it = entries.find(id);
    uint64_t seq = it == entries.end() ? 0 : it->second.seq;  // unindexed: oldest
    if (it == entries.end() || it->second.bytes != bytes) batch.Put(id, IndexRecord{bytes, seq});
    meta.used_bytes += bytes;
  }
  meta.block_format = kBlockFormatVersion;
  batch.SetMeta(meta);
  DSFS_RETURN_IF_ERROR(l.index->Write(batch));
  DSFS_RETURN_IF_ERROR(l.index->Flush());
  report.repaired = true;
  return report;
}

Result<GcReport> GcCache(const std::string& dir, uint64_t target_bytes) {
  DSFS_ASSIGN_OR_RETURN(Locked l, OpenLocked(dir));
  std::vector<std::pair<BlockId, IndexRecord>> entries;
  DSFS_RETURN_IF_ERROR(l.index->ForEach([&](const BlockId& id, const IndexRecord& rec) {
    entries.emplace_back(id, rec);
    return true;
  }));
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
  GcReport r;
  for (const auto& [id, rec] : entries) r.remaining_bytes += rec.bytes;
  DSFS_ASSIGN_OR_RETURN(IndexMeta meta, l.index->ReadMeta());
  CacheIndex::Batch batch;
  for (const auto& [id, rec] : entries) {
    if (r.remaining_bytes <= target_bytes) break;
    std::string path = BlockPathOf(dir, id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::IoError("unlink " + path + ": " + ErrnoText(errno));
    }
    batch.Delete(id);
    ++r.evicted_blocks;
    r.evicted_bytes += rec.bytes;
    r.remaining_bytes -= rec.bytes;
  }
  meta.used_bytes = r.remaining_bytes;
  batch.SetMeta(meta);
  DSFS_RETURN_IF_ERROR(l.index->Write(batch));
  DSFS_RETURN_IF_ERROR(l.index->Flush());
  return r;
}

Status ClearCache(const std::string& dir) {
  DSFS_RETURN_IF_ERROR(CheckIsCacheDir(dir));
  DSFS_ASSIGN_OR_RETURN(CacheDir cd, CacheDir::Open(dir));
  DropCleanMarker(dir);
  for (const char* name : {"index", "index.broken", "blocks", "tmp"}) {
    RemoveTreeNoFollow(dir + "/" + name);
  }
  struct stat st;
  for (const char* name : {"index", "blocks", "tmp"}) {
    if (::lstat((dir + "/" + name).c_str(), &st) == 0) {
      return Status::IoError("cannot remove " + dir + "/" + name);
    }
  }
  return Status::Ok();
}

}  // namespace dsfs
