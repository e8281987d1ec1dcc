#include "fs/filesystem.h"

#include <charconv>
#include <string_view>

#include <fcntl.h>

#include <map>
#include <spdlog/spdlog.h>

#include <unordered_set>

#include "common/logging.h"
#include "fs/attr.h"
#include "fs/names.h"

namespace dsfs {
namespace {

// The kernel takes a symlink target of at most PATH_MAX - 1 bytes (a
// longer reply fails in libfuse with EINVAL and no word of why).
constexpr uint64_t kMaxSymlinkSize = 4095;
// Old tools mark directories with "name_$folder$" objects: never shown.
constexpr std::string_view kFolderSuffix = "_$folder$";
// S3's (and OBS's) largest object: a listed size above it is a bad reply.
constexpr uint64_t kMaxObjectSize = uint64_t{5} << 40;

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
  o.max_listing_bytes = c.list_mem;
  o.sweep_interval = c.list_sweep_interval;
  return o;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

Filesystem::Filesystem(const FsConfig& config, ObjectStore& store, ObjectReader& reader,
                       const Clock& clock, Metrics* metrics, const WriteOptions& write)
    : config_(config),
      clock_(clock),
      store_(store),
      reader_(reader),
      metrics_(metrics),
      meta_(MetadataCacheOptionsFrom(config), clock),
      write_(write),
      dirty_(write.max_dirty,
             metrics ? &metrics->GetGauge("dsfs_write_dirty_bytes",
                                          "Bytes written to staged files and not uploaded yet")
                     : nullptr) {
  if (!metrics_) return;
  // The counters Count() adds to, with their help text (the Prometheus
  // exposition wants one for each).
  static constexpr std::pair<const char*, const char*> kCounters[] = {
      {"dsfs_fs_resolve_requests_total", "store requests made to resolve a path (HEAD, one-key LIST)"},
      {"dsfs_fs_list_requests_total", "LIST pages requested for directory listings"},
      {"dsfs_fs_stale_reads_total", "reads refused because the object changed under the handle (ESTALE)"},
      {"dsfs_fs_put_requests_total", "objects written by namespace changes (markers, symlinks)"},
      {"dsfs_fs_copy_requests_total", "server-side copies made by renames and attribute changes"},
      {"dsfs_fs_delete_requests_total", "objects deleted by unlink, rmdir and renames"},
      {"dsfs_fs_skipped_keys_total", "listed keys left out because they cannot be POSIX names"},
      {"dsfs_write_uploads_total", "files uploaded on flush, fsync or close"},
      {"dsfs_write_upload_errors_total", "uploads that failed (the writer got the error)"},
      {"dsfs_write_kept_total", "files whose final upload failed, kept in staging/kept"},
      {"dsfs_write_early_uploads_total", "uploads started early because max_dirty was reached"},
      {"dsfs_write_staging_errors_total", "writes refused because the staging disk failed or was full"},
      {"dsfs_write_streamed_uploads_total", "uploads whose parts went up while the file was written (streamupload)"},
      {"dsfs_write_stream_abandoned_total", "streamed uploads given up (a write into a part sent, a failure): the file went up whole"},
  };
  for (const auto& [name, help] : kCounters) metrics_->GetCounter(name, help);
}

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
  // Being written here: the staged file is what the name is now (a new
  // file may not be in the bucket yet, whatever the caches hold).
  if (auto ws = WritingAt(path)) return StagedMeta(*ws);
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
  if (meta.ok() && IsHidden(path, meta->etag)) {
    meta = Status::NotFound("'" + path + "' is unlinked (open handles keep it)");
  }
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

Result<std::shared_ptr<const Listing>> Filesystem::LoadListing(const std::string& path,
                                                              const CancelTokenPtr& cancel) {
  if (auto cached = meta_.GetListing(path)) return cached;
  Listing listing;
  ListRequest req;
  req.prefix = path.empty() ? config_.prefix : KeyOf(path) + "/";
  req.delimiter = "/";
  req.cancel = cancel;
  const std::string what = "listing of '" + EscapeForLog(req.prefix) + "'";
  const auto deadline = clock_.Now() + config_.list_timeout;
  std::unordered_set<std::string> tokens;  // every continuation token seen
  size_t pages = 0;
  int empty_pages = 0;
  size_t skipped = 0;
  // A hostile listing may hold millions of bad keys: log the first few.
  constexpr size_t kMaxSkipLogs = 10;
  auto skip = [&](const char* why, const std::string& key) {
    if (++skipped <= kMaxSkipLogs)
      spdlog::warn("{}: skipping {}: '{}'", what, why, EscapeForLog(key));
  };
  auto add = [&](std::string name, Listing::Child child, bool replace) {
    const size_t bytes = Listing::ChildBytes(name, child);
    bool inserted = false;
    if (replace) {
      inserted = listing.children.insert_or_assign(std::move(name), std::move(child)).second;
    } else {
      inserted = listing.children.try_emplace(std::move(name), std::move(child)).second;
    }
    if (inserted) listing.bytes += bytes;
  };
  // The bytes loaded so far count as live listing memory (other loads see
  // them), and are given back however this load ends.
  struct Reservation {
    MetadataCache& meta;
    size_t bytes = 0;
    ~Reservation() { meta.UnreserveListingBytes(bytes); }
  } reserved{meta_};
  do {
    if (IsCancelled(cancel)) return Status::Cancelled(what + ": interrupted");
    if (clock_.Now() >= deadline) {
      return Status::Corruption(what + ": not finished after " +
                                std::to_string(config_.list_timeout.count() / 1000) + " s (" +
                                std::to_string(pages) + " pages): the server does not end it");
    }
    Count("dsfs_fs_list_requests_total");
    DSFS_ASSIGN_OR_RETURN(ListPage page, store_.List(req));
    ++pages;
    if (page.objects.empty() && page.common_prefixes.empty() && !page.next_continuation.empty()) {
      if (++empty_pages >= config_.list_max_empty_pages) {
        return Status::Corruption(what + ": the server sent " + std::to_string(empty_pages) +
                                  " empty pages in a row, each with a new continuation token");
      }
    } else {
      empty_pages = 0;
    }
    for (const auto& obj : page.objects) {
      if (!obj.key.starts_with(req.prefix)) {
        skip("a key outside the listed prefix", obj.key);
        continue;
      }
      std::string name = obj.key.substr(req.prefix.size());
      if (name.empty()) continue;  // the directory's own marker
      if (name.ends_with(kFolderSuffix)) continue;
      if (!IsValidName(name)) {
        skip("an object key that cannot be a file name", obj.key);
        continue;
      }
      if (obj.size > kMaxObjectSize) {
        skip("an object over S3's 5 TiB maximum size (a bad reply)", obj.key);
        continue;
      }
      // The file wins a name clash.
      add(std::move(name), Listing::Child{NodeKind::kFile, obj.size, obj.etag, obj.mtime_sec},
          /*replace=*/true);
    }
    for (const auto& cp : page.common_prefixes) {
      if (!cp.starts_with(req.prefix)) {
        skip("a prefix outside the listed prefix", cp);
        continue;
      }
      std::string name = cp.substr(req.prefix.size());
      if (!name.empty() && name.back() == '/') name.pop_back();
      if (!IsValidName(name)) {
        skip("a prefix that cannot be a directory name", cp);
        continue;
      }
      add(std::move(name), Listing::Child{NodeKind::kDir, 0, "", 0}, /*replace=*/false);
    }
    if (listing.bytes > reserved.bytes) {
      if (!meta_.ReserveListingBytes(listing.bytes - reserved.bytes)) {
        return Status::IoError(
            what + ": directory listings would take more than list_mem=" +
            std::to_string(meta_.max_listing_bytes() >> 20) + " MiB (" +
            std::to_string(meta_.live_listing_bytes() >> 20) +
            " MiB held by open directories and listings in progress, this one " +
            std::to_string(listing.bytes >> 20) + " MiB so far)");
      }
      reserved.bytes = listing.bytes;
    }
    if (!page.next_continuation.empty() && !tokens.insert(page.next_continuation).second) {
      return Status::Corruption(what + ": the server repeated continuation token '" +
                                EscapeForLog(page.next_continuation.substr(0, 64)) + "' (page " +
                                std::to_string(pages) + "): it would loop for ever");
    }
    req.continuation = page.next_continuation;
  } while (!req.continuation.empty());
  if (skipped > kMaxSkipLogs) {
    spdlog::warn("{}: skipped {} keys in all ({} logged)", what, skipped, kMaxSkipLogs);
  }
  if (skipped && metrics_) metrics_->GetCounter("dsfs_fs_skipped_keys_total").Add(skipped);
  meta_.UnreserveListingBytes(reserved.bytes);  // Track counts the listing itself
  reserved.bytes = 0;
  std::shared_ptr<const Listing> result = meta_.Track(std::move(listing));
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
  if (auto ws = WritingOf(ino)) return ToStat(ino, StagedMeta(*ws), config_);
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

Result<std::string> Filesystem::ReadLink(InodeId ino, const CancelTokenPtr& cancel) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(node.path));
  if (meta.kind != NodeKind::kSymlink) return Status::InvalidArgument("not a symlink");
  if (meta.size > kMaxSymlinkSize) {
    return Status::NameTooLong("symlink '" + node.path + "': target of " +
                               std::to_string(meta.size) + " bytes (at most " +
                               std::to_string(kMaxSymlinkSize) + ")");
  }
  std::string target(meta.size, '\0');
  if (meta.size == 0) return target;
  GetRequest req{.key = KeyOf(node.path), .range = std::nullopt, .if_match = meta.etag};
  req.cancel = cancel;
  DSFS_ASSIGN_OR_RETURN(GetResult got, store_.Get(req, target.data(), target.size()));
  target.resize(got.bytes);
  // A NUL would cut the target the kernel sees while st_size says more.
  if (target.find('\0') != std::string::npos) {
    return Status::Corruption("symlink '" + node.path + "': target contains a NUL byte");
  }
  return target;
}

Result<uint64_t> Filesystem::OpenDir(InodeId ino, const CancelTokenPtr& cancel) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (node.kind != NodeKind::kDir) return Status::NotDirectory(node.path);
  DSFS_ASSIGN_OR_RETURN(auto listing, LoadListing(node.path, cancel));
  listing = WithStagedChildren(node.path, std::move(listing));
  DirHandle handle;
  handle.ino = ino;
  handle.parent = ino == kRootInode ? ino : inodes_.PeekId(ParentOf(node.path));
  handle.path = node.path;
  handle.cursor_offset = 2;
  handle.cursor = listing->children.begin();
  handle.listing = std::move(listing);
  uint64_t id = next_handle_++;
  std::lock_guard lock(handles_mu_);
  dirs_[id] = std::move(handle);
  return id;
}

Result<std::vector<DirEntry>> Filesystem::ReadDir(uint64_t handle, uint64_t offset,
                                                  size_t max_entries) {
  DirHandle h;
  {
    std::lock_guard lock(handles_mu_);
    auto it = dirs_.find(handle);
    if (it == dirs_.end()) return Status::InvalidArgument("bad directory handle");
    h = it->second;  // shares the listing; the cursor stays valid with it
  }
  const auto& children = h.listing->children;
  std::vector<DirEntry> out;
  uint64_t i = offset;
  for (; i < 2 && out.size() < max_entries; ++i) {
    out.push_back({i == 0 ? "." : "..", i == 0 ? h.ino : h.parent, S_IFDIR, i + 1});
  }
  if (out.size() >= max_entries || i - 2 >= children.size()) return out;
  auto child = h.cursor;
  if (h.cursor_offset != i) {
    child = std::next(children.begin(), static_cast<std::ptrdiff_t>(i - 2));
  }
  for (; child != children.end() && out.size() < max_entries; ++child, ++i) {
    const auto& [name, c] = *child;
    const std::string path = JoinPath(h.path, name);
    if (c.kind == NodeKind::kFile && IsHidden(path, c.etag)) continue;  // unlinked, still open
    // A listing cannot tell a symlink from a file (that is in the object's
    // metadata): unless a stat says so, a file's type is "unknown" and the
    // caller stats it.
    mode_t type = TypeBits(c.kind);
    if (c.kind != NodeKind::kDir) {
      auto cached = meta_.GetStat(path);
      type = cached.state == MetadataCache::Lookup::kFound ? TypeBits(cached.meta.kind) : 0;
    }
    out.push_back({name, inodes_.PeekId(path), type, i + 1});
  }
  std::lock_guard lock(handles_mu_);
  if (auto it = dirs_.find(handle); it != dirs_.end()) {
    it->second.cursor_offset = i;
    it->second.cursor = child;
  }
  return out;
}

void Filesystem::ReleaseDir(uint64_t handle) {
  std::shared_ptr<const Listing> last;  // freed outside the lock
  std::lock_guard lock(handles_mu_);
  auto it = dirs_.find(handle);
  if (it == dirs_.end()) return;
  last = std::move(it->second.listing);
  dirs_.erase(it);
}

Result<OpenReply> Filesystem::Open(InodeId ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) || WritingOf(ino)) {
    return OpenForWrite(ino, flags);
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
  // Without an ETag nothing says the kernel's pages are still the object's.
  const bool reuse = inodes_.ReuseKernelCache(ino, meta.etag);
  reply.keep_cache = reuse && !meta.etag.empty();
  reply.handle = next_handle_++;
  reader_.Opened(fh.object);
  std::lock_guard lock(handles_mu_);
  files_[reply.handle] = std::move(fh);
  return reply;
}

Result<size_t> Filesystem::Read(uint64_t handle, uint64_t offset, size_t len, char* buf,
                                const CancelTokenPtr& cancel) {
  DSFS_ASSIGN_OR_RETURN(SliceList slices, ReadSlices(handle, offset, len, cancel));
  return CopySlices(slices, buf);
}

Result<SliceList> Filesystem::ReadSlices(uint64_t handle, uint64_t offset, size_t len,
                                         const CancelTokenPtr& cancel) {
  FileHandle fh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Status::InvalidArgument("bad file handle");
    fh = it->second;
  }
  if (fh.write) return ReadStaged(*fh.write, offset, len);
  auto n = reader_.ReadSlices(fh.object, offset, len, cancel);
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
  FileHandle fh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return;
    fh = std::move(it->second);
    files_.erase(it);
  }
  if (fh.write) {
    ReleaseWrite(fh);
  } else {
    reader_.Released(fh.object);
  }
  FinishDeferred(fh.object);
}

Result<std::string> Filesystem::GetXattr(InodeId ino, const std::string& name) {
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  if (ino == kRootInode && name == kStatsXattr && metrics_) return metrics_->Render();
  if (name == kProveXattr) return ProveReport(node);
  if (name.rfind(kWarmXattrPrefix, 0) == 0) return WarmReport(node, name);
  return Status::NoAttribute(name + " on '" + node.path + "'");
}

std::optional<Filesystem::WarmRequest> Filesystem::ParseWarmXattr(const std::string& name) {
  const std::string_view prefix = kWarmXattrPrefix;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const char* p = name.c_str() + prefix.size();
  const char* end = name.c_str() + name.size();
  WarmRequest r;
  auto a = std::from_chars(p, end, r.first);
  if (a.ec != std::errc() || a.ptr == p || a.ptr == end || *a.ptr != '.') return std::nullopt;
  auto b = std::from_chars(a.ptr + 1, end, r.count);
  if (b.ec != std::errc() || b.ptr == a.ptr + 1 || b.ptr != end) return std::nullopt;
  return r;
}

Result<std::string> Filesystem::WarmReport(const InodeInfo& node, const std::string& name) {
  std::optional<WarmRequest> req = ParseWarmXattr(name);
  if (!req) {
    return Status::InvalidArgument("'" + name + "': want " + kWarmXattrPrefix + "FIRST.COUNT");
  }
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(node.path));
  if (meta.kind == NodeKind::kDir) return Status::IsDirectory(node.path);
  const ObjectId id{KeyOf(node.path), meta.etag, meta.size};
  DSFS_ASSIGN_OR_RETURN(ObjectReader::WarmCounts c,
                        reader_.Warm(id, req->first, req->count, nullptr));
  return "fetched " + std::to_string(c.fetched) + " skipped " + std::to_string(c.skipped) +
         " blocks " + std::to_string(c.blocks) + " block_size " + std::to_string(c.block_size) +
         "\n";
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
