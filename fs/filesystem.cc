#include "fs/filesystem.h"

#include <fcntl.h>

#include <map>
#include <spdlog/spdlog.h>

#include "fs/attr.h"
#include "fs/names.h"

namespace dsfs {
namespace {

// Symlink targets are small; refuse to read a "symlink" object that is not.
constexpr uint64_t kMaxSymlinkSize = 4096;
// Old tools mark directories with "name_$folder$" objects: never shown.
constexpr std::string_view kFolderSuffix = "_$folder$";

mode_t TypeBits(NodeKind kind) {
  switch (kind) {
    case NodeKind::kDir: return S_IFDIR;
    case NodeKind::kSymlink: return S_IFLNK;
    case NodeKind::kFile: break;
  }
  return S_IFREG;
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

MetadataCacheOptions MetadataCacheOptionsFrom(const FsConfig& c) {
  MetadataCacheOptions o;
  o.stat_ttl = c.stat_ttl;
  o.list_ttl = c.list_ttl;
  o.negative_ttl = c.negative_ttl;
  o.max_entries = c.max_stat_entries;
  o.max_listings = c.max_listings;
  return o;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

Filesystem::Filesystem(const FsConfig& config, ObjectStore& store, ObjectReader& reader,
                       const Clock& clock, Metrics* metrics)
    : config_(config),
      store_(store),
      reader_(reader),
      metrics_(metrics),
      meta_(MetadataCacheOptionsFrom(config), clock) {}

Filesystem::~Filesystem() = default;

void Filesystem::Count(const char* name) {
  if (metrics_) metrics_->GetCounter(name).Add();
}

Result<InodeInfo> Filesystem::GetInode(InodeId ino) const {
  auto node = inodes_.Get(ino);
  if (!node) return Status::NotFound("stale inode " + std::to_string(ino));
  return *node;
}

Status Filesystem::ReadOnlyError() const {
  if (config_.read_only) return Status::ReadOnly("dsfs is mounted read-only");
  return Status::NotSupported("writes are not implemented");
}

Result<NodeMeta> Filesystem::Resolve(const std::string& path) {
  if (path.empty()) return ImplicitDirMeta(config_);
  auto cached = meta_.GetStat(path);
  if (cached.state == MetadataCache::Lookup::kFound) return cached.meta;
  if (cached.state == MetadataCache::Lookup::kNegative) {
    return Status::NotFound("no such file '" + path + "' (cached)");
  }
  // A fresh listing of the parent answers "does it exist" and "is it a
  // directory" without a request.
  std::optional<Listing::Child> hint;
  if (auto listing = meta_.GetListing(ParentOf(path))) {
    auto it = listing->children.find(BaseName(path));
    if (it == listing->children.end()) {
      meta_.PutNegative(path);
      return Status::NotFound("no such file '" + path + "' (listing)");
    }
    hint = it->second;
  }
  auto meta = ResolveUncached(path, hint ? &*hint : nullptr);
  if (meta.ok()) {
    meta_.PutStat(path, *meta);
  } else if (meta.status().code() == StatusCode::kNotFound) {
    meta_.PutNegative(path);
  }
  return meta;
}

Result<NodeMeta> Filesystem::ResolveUncached(const std::string& path,
                                             const Listing::Child* hint) {
  const std::string key = KeyOf(path);
  if (hint && hint->kind == NodeKind::kDir) {
    // A directory by the listing: a "path/" marker may carry its mode.
    Count("dsfs_fs_resolve_requests_total");
    auto marker = store_.Head(key + "/");
    if (marker.ok()) return MetaFromHead(*marker, /*marker=*/true, config_);
    if (marker.status().code() != StatusCode::kNotFound) return marker.status();
    return ImplicitDirMeta(config_);
  }
  Count("dsfs_fs_resolve_requests_total");
  auto head = store_.Head(key);
  if (head.ok()) return MetaFromHead(*head, /*marker=*/false, config_);
  if (head.status().code() != StatusCode::kNotFound) return head.status();

  // Not an object: a directory if anything lives under "path/".
  ListRequest req;
  req.prefix = key + "/";
  req.delimiter = "/";
  req.max_keys = 1;
  DSFS_ASSIGN_OR_RETURN(ListPage page, store_.List(req));
  if (page.objects.empty() && page.common_prefixes.empty()) {
    return Status::NotFound("no such file '" + path + "'");
  }
  if (!page.objects.empty() && page.objects.front().key == req.prefix) {
    // A "path/" marker: s3fs keeps the directory's mode/uid/gid on it.
    auto marker = store_.Head(req.prefix);
    if (marker.ok()) return MetaFromHead(*marker, /*marker=*/true, config_);
  }
  return ImplicitDirMeta(config_);
}

Result<std::shared_ptr<const Listing>> Filesystem::LoadListing(const std::string& path) {
  if (auto cached = meta_.GetListing(path)) return cached;
  auto listing = std::make_shared<Listing>();
  ListRequest req;
  req.prefix = path.empty() ? config_.prefix : KeyOf(path) + "/";
  req.delimiter = "/";
  size_t skipped = 0;
  do {
    Count("dsfs_fs_list_requests_total");
    DSFS_ASSIGN_OR_RETURN(ListPage page, store_.List(req));
    for (const auto& obj : page.objects) {
      std::string name = obj.key.substr(req.prefix.size());
      if (name.empty()) continue;  // the directory's own marker
      if (name.ends_with(kFolderSuffix)) continue;
      if (!IsValidName(name)) {
        ++skipped;
        spdlog::warn("skipping object key that cannot be a file name: '{}'", obj.key);
        continue;
      }
      Listing::Child child{NodeKind::kFile, obj.size, obj.etag, obj.mtime_sec};
      listing->children.insert_or_assign(name, child);  // the file wins a name clash
    }
    for (const auto& cp : page.common_prefixes) {
      std::string name = cp.substr(req.prefix.size());
      if (!name.empty() && name.back() == '/') name.pop_back();
      if (!IsValidName(name)) {
        ++skipped;
        spdlog::warn("skipping prefix that cannot be a directory name: '{}'", cp);
        continue;
      }
      listing->children.try_emplace(name, Listing::Child{NodeKind::kDir, 0, "", 0});
    }
    req.continuation = page.next_continuation;
  } while (!req.continuation.empty());
  if (skipped && metrics_) metrics_->GetCounter("dsfs_fs_skipped_keys_total").Add(skipped);
  std::shared_ptr<const Listing> result = std::move(listing);
  meta_.PutListing(path, result);
  return result;
}

Result<EntryReply> Filesystem::Lookup(InodeId parent, const std::string& name) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo dir, GetInode(parent));
  if (dir.kind != NodeKind::kDir) return Status::NotDirectory(dir.path);
  if (name.size() > kMaxNameLength) return Status::NameTooLong(name.substr(0, 32) + "...");
  if (!IsValidName(name)) return Status::NotFound("invalid name");
  const std::string path = JoinPath(dir.path, name);
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(path));
  EntryReply reply;
  reply.ino = inodes_.Acquire(path, meta);
  reply.attr = ToStat(reply.ino, meta, config_);
  return reply;
}

void Filesystem::Forget(InodeId ino, uint64_t nlookup) { inodes_.Forget(ino, nlookup); }

Result<struct stat> Filesystem::GetAttr(InodeId ino) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  // A file's node is one object version: its attributes never change and
  // need no request (so an open file keeps answering while OBS is down; a
  // new version is found by the next lookup, which makes a new node).
  if (node.kind != NodeKind::kDir && ino != kRootInode) return ToStat(ino, node.meta, config_);
  auto meta = Resolve(node.path);
  if (!meta.ok()) {
    // A directory the kernel holds stays a directory while the store cannot
    // tell; a directory that is gone is ENOENT.
    if (meta.status().code() == StatusCode::kNotFound || ino == kRootInode) return meta.status();
    return ToStat(ino, node.meta, config_);
  }
  return ToStat(ino, *meta, config_);
}

Result<std::string> Filesystem::ReadLink(InodeId ino) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(node.path));
  if (meta.kind != NodeKind::kSymlink) return Status::InvalidArgument("not a symlink");
  if (meta.size > kMaxSymlinkSize) return Status::InvalidArgument("symlink target too long");
  std::string target(meta.size, '\0');
  if (meta.size == 0) return target;
  GetRequest req{.key = KeyOf(node.path), .range = std::nullopt, .if_match = meta.etag};
  DSFS_ASSIGN_OR_RETURN(GetResult got, store_.Get(req, target.data(), target.size()));
  target.resize(got.bytes);
  return target;
}

Result<uint64_t> Filesystem::OpenDir(InodeId ino) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (node.kind != NodeKind::kDir) return Status::NotDirectory(node.path);
  DSFS_ASSIGN_OR_RETURN(auto listing, LoadListing(node.path));
  DirHandle handle;
  handle.ino = ino;
  handle.entries.reserve(listing->children.size() + 2);
  handle.entries.push_back({".", ino, S_IFDIR});
  handle.entries.push_back({"..", ino == kRootInode ? ino : inodes_.PeekId(ParentOf(node.path)),
                            S_IFDIR});
  for (const auto& [name, child] : listing->children) {
    const std::string path = JoinPath(node.path, name);
    // A listing cannot tell a symlink from a file (that is in the object's
    // metadata): unless a stat says so, a file's type is "unknown" and the
    // caller stats it.
    mode_t type = TypeBits(child.kind);
    if (child.kind != NodeKind::kDir) {
      auto cached = meta_.GetStat(path);
      type = cached.state == MetadataCache::Lookup::kFound ? TypeBits(cached.meta.kind) : 0;
    }
    handle.entries.push_back({name, inodes_.PeekId(path), type});
  }
  uint64_t id = next_handle_++;
  std::lock_guard lock(handles_mu_);
  dirs_[id] = std::move(handle);
  return id;
}

Result<std::vector<DirEntry>> Filesystem::ReadDir(uint64_t handle, uint64_t offset,
                                                  size_t max_entries) {
  std::lock_guard lock(handles_mu_);
  auto it = dirs_.find(handle);
  if (it == dirs_.end()) return Status::InvalidArgument("bad directory handle");
  const auto& entries = it->second.entries;
  std::vector<DirEntry> out;
  for (uint64_t i = offset; i < entries.size() && out.size() < max_entries; ++i) {
    out.push_back(entries[i]);
  }
  return out;
}

void Filesystem::ReleaseDir(uint64_t handle) {
  std::lock_guard lock(handles_mu_);
  dirs_.erase(handle);
}

Result<OpenReply> Filesystem::Open(InodeId ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
    return ReadOnlyError();
  }
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(node.path));
  if (meta.kind == NodeKind::kDir) return Status::IsDirectory(node.path);
  if (!node.etag.empty() && node.etag != meta.etag) {
    // This node stands for an older version; the kernel retries the open
    // after a fresh lookup, which yields the new version's node.
    return Status::PreconditionFailed("'" + node.path + "' changed since it was looked up");
  }
  FileHandle fh;
  fh.ino = ino;
  fh.object = ObjectId{KeyOf(node.path), meta.etag, meta.size};
  OpenReply reply;
  reply.keep_cache = inodes_.ReuseKernelCache(ino, meta.etag);
  reply.handle = next_handle_++;
  reader_.Opened(fh.object);
  std::lock_guard lock(handles_mu_);
  files_[reply.handle] = std::move(fh);
  return reply;
}

Result<size_t> Filesystem::Read(uint64_t handle, uint64_t offset, size_t len, char* buf) {
  DSFS_ASSIGN_OR_RETURN(SliceList slices, ReadSlices(handle, offset, len));
  return CopySlices(slices, buf);
}

Result<SliceList> Filesystem::ReadSlices(uint64_t handle, uint64_t offset, size_t len) {
  FileHandle fh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Status::InvalidArgument("bad file handle");
    fh = it->second;
  }
  auto n = reader_.ReadSlices(fh.object, offset, len);
  if (!n.ok() && n.status().code() == StatusCode::kPreconditionFailed) {
    // The object changed under this handle: the next open sees the new one.
    if (auto node = inodes_.Get(fh.ino)) {
      meta_.Invalidate(node->path);
      inodes_.DropKernelCache(fh.ino);
    }
    Count("dsfs_fs_stale_reads_total");
  }
  return n;
}

void Filesystem::Release(uint64_t handle) {
  ObjectId object;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return;
    object = std::move(it->second.object);
    files_.erase(it);
  }
  reader_.Released(object);
}

Result<std::string> Filesystem::GetXattr(InodeId ino, const std::string& name) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (ino == kRootInode && name == kStatsXattr && metrics_) return metrics_->Render();
  if (name == kProveXattr) return ProveReport(node);
  return Status::NoAttribute(name + " on '" + node.path + "'");
}

Result<std::string> Filesystem::ProveReport(const InodeInfo& node) {
  if (!prover_) return Status::NotSupported("no share to prove (mount with fallback=)");
  const bool dir = node.kind == NodeKind::kDir;
  const std::string key = node.path.empty() ? config_.prefix : KeyOf(node.path);
  const std::string prefix = dir && !node.path.empty() ? key + "/" : key;
  DSFS_ASSIGN_OR_RETURN(std::vector<ProofLine> lines, prover_(prefix));
  std::map<std::string, uint64_t> counts;
  std::string body;
  uint64_t total = 0;
  uint64_t left_out = 0;
  for (const ProofLine& l : lines) {
    if (!dir && l.key != key) continue;  // a file's prefix also matches "file2"
    ++total;
    ++counts[l.result];
    std::string line = l.result + " " + l.key.substr(config_.prefix.size()) + "\n";
    // getxattr(2) values are at most 64 KiB.
    if (body.size() + line.size() < kMaxXattrReport) {
      body += line;
    } else {
      ++left_out;
    }
  }
  if (left_out) body += "... " + std::to_string(left_out) + " more\n";
  std::string summary = "total " + std::to_string(total);
  for (const char* r : {"proven", "differs", "missing", "unprovable", "error"}) {
    summary += std::string(" ") + r + " " + std::to_string(counts[r]);
  }
  return body + summary + "\n";
}

Result<std::string> Filesystem::ListXattr(InodeId ino) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (ino == kRootInode && metrics_) return std::string(kStatsXattr) + '\0';
  return std::string();
}

Result<struct statvfs> Filesystem::StatFs() {
  // An object store has no capacity; report a large, fixed one (as s3fs
  // does) so tools that check free space do not refuse to work.
  struct statvfs st {};
  st.f_bsize = 1 << 20;
  st.f_frsize = 1 << 20;
  st.f_blocks = 1ULL << 30;
  st.f_bfree = 1ULL << 30;
  st.f_bavail = 1ULL << 30;
  st.f_files = 1ULL << 30;
  st.f_ffree = 1ULL << 30;
  st.f_favail = 1ULL << 30;
  st.f_namemax = kMaxNameLength;
  if (config_.read_only) st.f_flag |= ST_RDONLY;
  return st;
}

}  // namespace dsfs
