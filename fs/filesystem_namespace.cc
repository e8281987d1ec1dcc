// Namespace changes: mkdir, rmdir, unlink, rename, symlink, link, and the
// metadata part of setattr, in the s3fs/obsfs on-bucket format.
#include <spdlog/spdlog.h>

#include <chrono>
#include <limits>
#include <unordered_set>

#include "backends/transfer.h"
#include "common/logging.h"
#include "fs/attr.h"
#include "fs/filesystem.h"
#include "fs/names.h"

namespace dsfs {
namespace {

// S3's (and OBS's) longest key.
constexpr size_t kMaxKeyLength = 1024;
// The largest object one CopyObject copies.
// The kernel takes a symlink target of at most PATH_MAX - 1 bytes.
constexpr size_t kMaxSymlinkTarget = 4095;

std::string ParentPath(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

struct timespec WallNow() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

void SetTimes(NodeMeta* m, const struct timespec& now) {
  m->mtime_sec = m->atime_sec = m->ctime_sec = now.tv_sec;
  m->mtime_nsec = m->atime_nsec = m->ctime_nsec = static_cast<uint32_t>(now.tv_nsec);
}

}  // namespace

Status Filesystem::CheckNewName(const std::string& name) {
  if (name.size() > kMaxNameLength) {
    return Status::NameTooLong("name of " + std::to_string(name.size()) + " bytes (at most " +
                               std::to_string(kMaxNameLength) + ")");
  }
  if (!IsValidName(name)) {
    return Status::InvalidArgument("'" + EscapeForLog(name) + "' cannot be a file name");
  }
  return Status::Ok();
}

Result<Filesystem::NewEntry> Filesystem::PrepareNewEntry(InodeId parent, const std::string& name) {
  if (config_.read_only) return ReadOnlyError();
  DSFS_ASSIGN_OR_RETURN(InodeInfo dir, GetInode(parent));
  if (dir.kind != NodeKind::kDir) return Status::NotDirectory(dir.path);
  if (Status s = CheckNewName(name); !s.ok()) return s;
  NewEntry e{std::move(dir), ""};
  e.path = JoinPath(e.parent.path, name);
  // A directory's key carries a trailing '/': keep room for it.
  if (KeyOf(e.path).size() + 1 > kMaxKeyLength) {
    return Status::NameTooLong("path '" + EscapeForLog(e.path.substr(0, 64)) +
                               "...': its object key would exceed 1024 bytes");
  }
  return e;
}

void Filesystem::Created(const std::string& path, const NodeMeta& meta) {
  meta_.PutStat(path, meta);
  meta_.InvalidateListing(ParentPath(path));
}

void Filesystem::Removed(const std::string& path) {
  meta_.InvalidateTree(path);
  meta_.PutNegative(path);
  meta_.InvalidateListing(ParentPath(path));
  inodes_.Detach(path);
  OrphanStaged(path);
}

bool Filesystem::IsHidden(const std::string& path, const std::string& etag) {
  if (!any_deferred_.load() || etag.empty()) return false;
  std::lock_guard lock(handles_mu_);
  auto it = deferred_.find(KeyOf(path));
  return it != deferred_.end() && it->second.path == path && it->second.etags.count(etag);
}

Status Filesystem::DeleteOrDefer(const std::string& path, const std::string& key) {
  {
    std::lock_guard lock(handles_mu_);
    std::unordered_set<std::string> open;
    for (const auto& [id, fh] : files_) {
      if (fh.object.key == key) open.insert(fh.object.etag);
    }
    if (!open.empty()) {
      Deferred& d = deferred_[key];
      d.path = path;
      d.etags.insert(open.begin(), open.end());
      any_deferred_ = true;
      return Status::Ok();
    }
  }
  Count("dsfs_fs_delete_requests_total");
  return store_.Delete(key);
}

void Filesystem::FinishDeferred(const ObjectId& object) {
  if (!any_deferred_.load()) return;
  Deferred d;
  {
    std::lock_guard lock(handles_mu_);
    auto it = deferred_.find(object.key);
    if (it == deferred_.end()) return;
    for (const auto& [id, fh] : files_) {
      if (fh.object.key == object.key) return;  // not the last handle
    }
    d = std::move(it->second);
    deferred_.erase(it);
    any_deferred_ = !deferred_.empty();
  }
  // Only the versions that were unlinked: a new object written under the
  // name since then stays. (S3 has no conditional DELETE: a write between
  // this HEAD and the DELETE is lost, a window of one round trip.)
  auto head = store_.Head(object.key);
  if (!head.ok()) {
    if (head.status().code() != StatusCode::kNotFound) {
      spdlog::warn("unlinked '{}' stays in the bucket: {}", EscapeForLog(object.key),
                   EscapeForLog(head.status().ToString()));
    }
    return;
  }
  if (!d.etags.count(head->etag)) return;
  Count("dsfs_fs_delete_requests_total");
  if (Status s = store_.Delete(object.key); !s.ok()) {
    spdlog::warn("unlinked '{}' stays in the bucket (DELETE at last close failed): {}",
                 EscapeForLog(object.key), EscapeForLog(s.ToString()));
  }
  meta_.Invalidate(d.path);
  meta_.InvalidateListing(ParentPath(d.path));
}

Result<EntryReply> Filesystem::Mkdir(InodeId parent, const std::string& name, mode_t mode,
                                     const Caller& caller) {
  DSFS_ASSIGN_OR_RETURN(NewEntry e, PrepareNewEntry(parent, name));
  auto existing = Resolve(e.path);
  if (existing.ok()) return Status::Exists("'" + EscapeForLog(e.path) + "' exists");
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  NodeMeta meta;
  meta.kind = NodeKind::kDir;
  meta.mode = S_IFDIR | (mode & 07777);
  meta.uid = caller.uid;
  meta.gid = caller.gid;
  SetTimes(&meta, WallNow());
  PutRequest put;
  put.key = KeyOf(e.path) + "/";
  put.attrs = AttrsForDir(meta);
  Count("dsfs_fs_put_requests_total");
  DSFS_ASSIGN_OR_RETURN(PutResult done, store_.Put(put));
  (void)done;  // a directory's node has no version
  meta_.InvalidateTree(e.path);
  Created(e.path, meta);
  EntryReply reply;
  reply.ino = inodes_.Acquire(e.path, meta);
  reply.attr = ToStat(reply.ino, meta, config_);
  return reply;
}

Result<std::vector<ObjectInfo>> Filesystem::ListAll(const std::string& prefix, int max_keys) {
  std::vector<ObjectInfo> out;
  ListRequest req;
  req.prefix = prefix;
  req.max_keys = max_keys;
  const auto deadline = clock_.Now() + config_.list_timeout;
  std::unordered_set<std::string> tokens;
  do {
    if (clock_.Now() >= deadline) {
      return Status::IoError("listing of '" + EscapeForLog(prefix) + "' not finished after " +
                             std::to_string(config_.list_timeout.count() / 1000) + " s");
    }
    Count("dsfs_fs_list_requests_total");
    DSFS_ASSIGN_OR_RETURN(ListPage page, store_.List(req));
    for (auto& o : page.objects) {
      if (o.key.starts_with(prefix)) out.push_back(std::move(o));
    }
    if (!page.next_continuation.empty() && !tokens.insert(page.next_continuation).second) {
      return Status::Corruption("listing of '" + EscapeForLog(prefix) +
                                "': the server repeated a continuation token");
    }
    req.continuation = page.next_continuation;
  } while (!req.continuation.empty() && static_cast<int>(out.size()) < max_keys);
  return out;
}

Status Filesystem::Rmdir(InodeId parent, const std::string& name) {
  if (config_.read_only) return ReadOnlyError();
  DSFS_ASSIGN_OR_RETURN(InodeInfo dir, GetInode(parent));
  if (dir.kind != NodeKind::kDir) return Status::NotDirectory(dir.path);
  if (name == "." ) return Status::InvalidArgument("rmdir of '.'");
  if (name == "..") return Status::NotEmpty("rmdir of '..'");
  if (Status s = CheckNewName(name); !s.ok()) return s;
  const std::string path = JoinPath(dir.path, name);
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(path));
  if (meta.kind != NodeKind::kDir) return Status::NotDirectory(path);
  const std::string marker = KeyOf(path) + "/";
  // Two keys tell: the marker sorts first, anything else is a child.
  DSFS_ASSIGN_OR_RETURN(auto keys, ListAll(marker, 2));
  for (const ObjectInfo& o : keys) {
    if (o.key != marker) return Status::NotEmpty("'" + EscapeForLog(path) + "' is not empty");
  }
  Count("dsfs_fs_delete_requests_total");
  if (Status s = store_.Delete(marker); !s.ok()) return s;
  // The older forms s3fs reads: a "name" object of directory type.
  auto legacy = store_.Head(KeyOf(path));
  if (legacy.ok() && MetaFromHead(*legacy, false, config_).kind == NodeKind::kDir) {
    Count("dsfs_fs_delete_requests_total");
    if (Status s = store_.Delete(KeyOf(path)); !s.ok()) return s;
  }
  Removed(path);
  return Status::Ok();
}

Status Filesystem::Unlink(InodeId parent, const std::string& name) {
  if (config_.read_only) return ReadOnlyError();
  DSFS_ASSIGN_OR_RETURN(InodeInfo dir, GetInode(parent));
  if (dir.kind != NodeKind::kDir) return Status::NotDirectory(dir.path);
  if (Status s = CheckNewName(name); !s.ok()) return s;
  const std::string path = JoinPath(dir.path, name);
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(path));
  if (meta.kind == NodeKind::kDir) return Status::IsDirectory(path);
  if (Status s = DeleteOrDefer(path, KeyOf(path)); !s.ok()) return s;
  Removed(path);
  return Status::Ok();
}

Result<EntryReply> Filesystem::Symlink(InodeId parent, const std::string& name,
                                       const std::string& target, const Caller& caller) {
  DSFS_ASSIGN_OR_RETURN(NewEntry e, PrepareNewEntry(parent, name));
  if (target.empty()) return Status::NotFound("empty symlink target");
  if (target.size() > kMaxSymlinkTarget) {
    return Status::NameTooLong("symlink target of " + std::to_string(target.size()) + " bytes");
  }
  if (target.find('\0') != std::string::npos) {
    return Status::InvalidArgument("symlink target contains a NUL byte");
  }
  auto existing = Resolve(e.path);
  if (existing.ok()) return Status::Exists("'" + EscapeForLog(e.path) + "' exists");
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  NodeMeta meta;
  meta.kind = NodeKind::kSymlink;
  meta.mode = S_IFLNK | 0777;
  meta.size = target.size();
  meta.uid = caller.uid;
  meta.gid = caller.gid;
  SetTimes(&meta, WallNow());
  PutRequest put;
  put.key = KeyOf(e.path);
  put.body.data = target.data();
  put.body.length = target.size();
  put.attrs = AttrsForSymlink(meta);
  Count("dsfs_fs_put_requests_total");
  DSFS_ASSIGN_OR_RETURN(PutResult done, store_.Put(put));
  meta.etag = done.etag;
  Created(e.path, meta);
  EntryReply reply;
  reply.ino = inodes_.Acquire(e.path, meta);
  reply.attr = ToStat(reply.ino, meta, config_);
  return reply;
}

Status Filesystem::Link(InodeId ino, InodeId new_parent, const std::string& new_name) {
  (void)ino;
  (void)new_parent;
  (void)new_name;
  return Status::NotPermitted("hard links cannot be stored in an object store");
}

Status Filesystem::Rename(InodeId parent, const std::string& name, InodeId new_parent,
                          const std::string& new_name, unsigned flags) {
  if (config_.read_only) return ReadOnlyError();
  if (flags & kRenameExchange) {
    return Status::InvalidArgument("RENAME_EXCHANGE: no atomic exchange in an object store");
  }
  if (flags & ~kRenameNoReplace) return Status::InvalidArgument("unknown rename flags");
  DSFS_ASSIGN_OR_RETURN(InodeInfo from_dir, GetInode(parent));
  if (from_dir.kind != NodeKind::kDir) return Status::NotDirectory(from_dir.path);
  if (Status s = CheckNewName(name); !s.ok()) return s;
  DSFS_ASSIGN_OR_RETURN(NewEntry to, PrepareNewEntry(new_parent, new_name));
  const std::string from = JoinPath(from_dir.path, name);
  DSFS_ASSIGN_OR_RETURN(NodeMeta from_meta, Resolve(from));
  if (from == to.path) return Status::Ok();  // rename(2) onto itself does nothing
  auto dest = Resolve(to.path);
  if (!dest.ok() && dest.status().code() != StatusCode::kNotFound) return dest.status();
  if (dest.ok() && (flags & kRenameNoReplace)) {
    return Status::Exists("'" + EscapeForLog(to.path) + "' exists (RENAME_NOREPLACE)");
  }
  if (from_meta.kind != NodeKind::kDir) {
    if (dest.ok() && dest->kind == NodeKind::kDir) return Status::IsDirectory(to.path);
    return RenameFile(from, from_meta, to.path);
  }
  if (dest.ok() && dest->kind != NodeKind::kDir) return Status::NotDirectory(to.path);
  if (to.path.starts_with(from + "/")) {
    return Status::InvalidArgument("cannot move '" + EscapeForLog(from) + "' into itself");
  }
  return RenameDir(from, from_meta, to.path, dest.ok());
}

Result<PutResult> Filesystem::CopyKey(const std::string& src, const std::string& etag,
                                      uint64_t size, const std::string& dst,
                                      std::optional<ObjectAttrs> attrs) {
  TransferOptions options;
  options.part_size = write_.multipart_size;
  options.parallel = write_.parallel_count;
  options.max_single_copy = write_.max_single_copy;
  Count("dsfs_fs_copy_requests_total");
  return CopyObject(store_, src, etag, size, dst, std::move(attrs), options);
}

Status Filesystem::RenameFile(const std::string& from, const NodeMeta& from_meta,
                              const std::string& to) {
  (void)from_meta;
  // A file being written here moves with its staged state.
  if (std::optional<Status> s = RenameStaged(from, to)) return *s;
  return RenameObject(from, to);
}

Status Filesystem::RenameObject(const std::string& from, const std::string& to) {
  const std::string src = KeyOf(from);
  // The version to copy, fresh: a cached ETag may be stale.
  Count("dsfs_fs_resolve_requests_total");
  DSFS_ASSIGN_OR_RETURN(ObjectInfo head, store_.Head(src));
  NodeMeta meta = MetaFromHead(head, false, config_);
  if (meta.kind == NodeKind::kDir) return Status::IsDirectory(from);
  DSFS_ASSIGN_OR_RETURN(PutResult copied,
                        CopyKey(src, head.etag, head.size, KeyOf(to), std::nullopt));
  meta.etag = copied.etag;
  // The new name is there: caches say so whatever the delete does.
  meta_.Invalidate(to);
  Status deleted = DeleteOrDefer(from, src);
  OrphanStaged(to);  // a file being written there was replaced
  inodes_.Rename(from, to);
  MoveStaged(from, to);
  inodes_.SetVersion(to, meta);
  meta_.PutStat(to, meta);
  meta_.InvalidateListing(ParentPath(to));
  if (!deleted.ok()) {
    // Both names hold the object: nothing is lost, the caller hears why.
    meta_.Invalidate(from);
    meta_.InvalidateListing(ParentPath(from));
    return Status::IoError("rename: '" + EscapeForLog(to) + "' is written but '" +
                           EscapeForLog(from) + "' could not be deleted: " + deleted.ToString());
  }
  meta_.PutNegative(from);
  meta_.InvalidateListing(ParentPath(from));
  return Status::Ok();
}

Status Filesystem::RenameDir(const std::string& from, const NodeMeta& from_meta,
                             const std::string& to, bool to_exists) {
  const std::string src = KeyOf(from) + "/";
  const std::string dst = KeyOf(to) + "/";
  if (to_exists) {
    DSFS_ASSIGN_OR_RETURN(auto keys, ListAll(dst, 2));
    for (const ObjectInfo& o : keys) {
      if (o.key != dst) return Status::NotEmpty("'" + EscapeForLog(to) + "' is not empty");
    }
  }
  DSFS_ASSIGN_OR_RETURN(auto objects, ListAll(src, std::numeric_limits<int>::max()));
  // Copy everything first: until the last copy is made no source is gone,
  // so a failure leaves each object at its old name (and maybe its new).
  std::vector<std::pair<std::string, std::string>> moved;  // (source key, new ETag)
  bool marker = false;
  size_t skipped = 0;
  for (const ObjectInfo& o : objects) {
    const std::string rel = o.key.substr(src.size());
    if (rel.empty()) {
      marker = true;
    } else if (!IsValidKeyPath(rel) || (dst + rel).size() > kMaxKeyLength) {
      // Not a POSIX name (hidden from listings): never copied to a new key.
      ++skipped;
      continue;
    }
    auto done = CopyKey(o.key, o.etag, o.size, dst + rel, std::nullopt);
    if (!done.ok()) {
      meta_.InvalidateTree(to);
      meta_.InvalidateListing(ParentPath(to));
      return Status::IoError("rename of directory '" + EscapeForLog(from) + "' stopped at '" +
                             EscapeForLog(o.key) + "' after " + std::to_string(moved.size()) +
                             " of " + std::to_string(objects.size()) +
                             " copies (every object is still at its old name): " +
                             done.status().ToString());
    }
    moved.emplace_back(o.key, done->etag);
  }
  if (skipped) {
    spdlog::warn("rename of '{}': {} keys that are not POSIX names stay under the old prefix",
                 EscapeForLog(from), skipped);
  }
  if (!marker) {
    // An implicit or legacy directory: the new one gets a marker, so an
    // empty directory survives the move.
    PutRequest put;
    put.key = dst;
    put.attrs = AttrsForDir(from_meta);
    Count("dsfs_fs_put_requests_total");
    auto done = store_.Put(put);
    if (!done.ok()) {
      meta_.InvalidateTree(to);
      return Status::IoError("rename of directory '" + EscapeForLog(from) +
                             "': the new marker failed after all copies: " +
                             done.status().ToString());
    }
  }
  // Then the sources.
  Status failed;
  size_t deleted = 0;
  for (const auto& [key, etag] : moved) {
    const std::string rel = key.substr(src.size());
    const std::string old_path = rel.empty() ? from : JoinPath(from, rel);
    Status s;
    if (rel.empty() || rel.back() == '/') {
      Count("dsfs_fs_delete_requests_total");
      s = store_.Delete(key);
    } else {
      s = DeleteOrDefer(old_path, key);
    }
    if (!s.ok()) {
      failed = s;
      break;
    }
    ++deleted;
  }
  if (failed.ok() && !marker) {
    auto legacy = store_.Head(KeyOf(from));
    if (legacy.ok() && MetaFromHead(*legacy, false, config_).kind == NodeKind::kDir) {
      Count("dsfs_fs_delete_requests_total");
      failed = store_.Delete(KeyOf(from));
    }
  }
  meta_.InvalidateTree(from);
  meta_.InvalidateTree(to);
  meta_.InvalidateListing(ParentPath(from));
  meta_.InvalidateListing(ParentPath(to));
  inodes_.Rename(from, to);
  for (const auto& [key, etag] : moved) {
    const std::string rel = key.substr(src.size());
    if (!rel.empty() && rel.back() != '/') inodes_.SetEtag(JoinPath(to, rel), etag);
  }
  if (!failed.ok()) {
    return Status::IoError("rename of directory '" + EscapeForLog(from) + "': all " +
                           std::to_string(moved.size()) + " objects copied, " +
                           std::to_string(deleted) +
                           " sources deleted, then a delete failed (the rest are at both "
                           "names): " + failed.ToString());
  }
  meta_.PutNegative(from);
  return Status::Ok();
}

Result<struct stat> Filesystem::SetAttr(InodeId ino, const AttrChange& change) {
  if (config_.read_only) return ReadOnlyError();
  // A file being written carries the change in its upload.
  if (auto staged = SetStagedAttrs(ino, change)) return *staged;
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (ino == kRootInode) return Status::NotPermitted("the mount root has no object to change");
  const std::string& path = node.path;
  // The object that carries the attributes, fresh (its ETag and every
  // other metadata entry are kept).
  std::string key = KeyOf(path);
  std::optional<ObjectInfo> head;
  bool is_dir = node.kind == NodeKind::kDir;
  if (is_dir) {
    auto marker = store_.Head(key + "/");
    if (marker.ok()) {
      head = std::move(*marker);
      key += "/";
    } else if (marker.status().code() != StatusCode::kNotFound) {
      return marker.status();
    } else {
      auto legacy = store_.Head(key);
      if (legacy.ok() && MetaFromHead(*legacy, false, config_).kind == NodeKind::kDir) {
        head = std::move(*legacy);
      } else {
        key += "/";  // implicit: a new marker
      }
    }
  } else {
    Count("dsfs_fs_resolve_requests_total");
    DSFS_ASSIGN_OR_RETURN(ObjectInfo h, store_.Head(key));
    head = std::move(h);
  }
  // The attributes as stored (not what uid=/gid= make of them), so the
  // copy writes back what the object had beside the change.
  FsConfig stored_config = config_;
  stored_config.uid_set = stored_config.gid_set = false;
  const bool marker = key.ends_with('/');
  NodeMeta meta = head ? MetaFromHead(*head, marker, stored_config) : ImplicitDirMeta(config_);
  const struct timespec now = WallNow();
  if (change.mode) meta.mode = (meta.mode & S_IFMT) | (*change.mode & 07777);
  if (change.uid) meta.uid = *change.uid;
  if (change.gid) meta.gid = *change.gid;
  auto pick = [&](const struct timespec& t) { return t.tv_nsec == UTIME_NOW ? now : t; };
  if (!meta.atime_sec && !meta.atime_nsec) {
    meta.atime_sec = meta.mtime_sec;
    meta.atime_nsec = meta.mtime_nsec;
  }
  if (change.atime) {
    const struct timespec t = pick(*change.atime);
    meta.atime_sec = t.tv_sec;
    meta.atime_nsec = static_cast<uint32_t>(t.tv_nsec);
  }
  if (change.mtime) {
    const struct timespec t = pick(*change.mtime);
    meta.mtime_sec = t.tv_sec;
    meta.mtime_nsec = static_cast<uint32_t>(t.tv_nsec);
  }
  meta.ctime_sec = now.tv_sec;
  meta.ctime_nsec = static_cast<uint32_t>(now.tv_nsec);

  ObjectAttrs attrs;
  if (head) {
    attrs.meta = head->meta;
    attrs.content_type = head->content_type;
  }
  NodeMeta encoded = meta;
  if (meta.kind == NodeKind::kSymlink) encoded.mode = S_IFLNK | 0777;
  EncodeAttrs(encoded, &attrs.meta);
  if (is_dir) attrs.content_type = kDirContentType;
  std::map<std::string, std::string> written_meta = attrs.meta;
  if (!head) {
    PutRequest put;
    put.key = key;
    put.attrs = std::move(attrs);
    Count("dsfs_fs_put_requests_total");
    DSFS_ASSIGN_OR_RETURN(PutResult done, store_.Put(put));
    (void)done;
  } else {
    DSFS_ASSIGN_OR_RETURN(PutResult done,
                          CopyKey(key, head->etag, head->size, key, std::move(attrs)));
    if (!is_dir) meta.etag = done.etag;
  }
  // What a lookup will make of the new object.
  ObjectInfo info;
  info.key = key;
  info.size = head ? head->size : 0;
  info.etag = is_dir ? "" : meta.etag;
  info.mtime_sec = meta.mtime_sec;
  info.meta = std::move(written_meta);
  info.content_type = is_dir ? kDirContentType : (head ? head->content_type : "");
  NodeMeta shown = MetaFromHead(info, marker, config_);
  meta_.PutStat(path, shown);
  meta_.InvalidateListing(ParentPath(path));
  inodes_.SetVersion(path, shown);
  return ToStat(ino, shown, config_);
}

}  // namespace dsfs
