// The write path of Filesystem: staged files, uploads on flush / fsync /
// release, truncate, and reads of a file being written.
#include <fcntl.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <utility>
#include <vector>

#include "backends/streaming_upload.h"
#include "backends/transfer.h"
#include "common/logging.h"
#include "common/posix.h"
#include "fs/attr.h"
#include "fs/filesystem.h"
#include "fs/names.h"

namespace dsfs {
namespace {

// Copy-in of an object opened for a partial overwrite: one read this big
// at a time (the reader fetches blocks ahead of it).
constexpr size_t kFillChunk = size_t{4} << 20;

std::string ParentPath(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string BaseNameOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// mtime is wall-clock time (the Clock is steady: TTLs only).
void Touch(NodeMeta* meta) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  meta->mtime_sec = now.tv_sec;
  meta->mtime_nsec = static_cast<uint32_t>(now.tv_nsec);
  meta->ctime_sec = meta->mtime_sec;
  meta->ctime_nsec = meta->mtime_nsec;
}

// The name a failed upload's data is kept under: when, which inode, and
// the key with '/' and '%' escaped (cut to stay a valid file name).
std::string KeptName(const std::string& key, InodeId ino) {
  char when[32];
  const std::time_t now = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  std::string name = std::string(when) + "-" + std::to_string(ino) + "-";
  for (char c : key) {
    if (name.size() > 240) break;
    if (c == '/')
      name += "%2F";
    else if (c == '%')
      name += "%25";
    else
      name += c;
  }
  return name;
}

}  // namespace

// One inode being written: its staged file and attributes, shared by every
// handle opened on the inode while it exists.
struct Filesystem::WriteState {
  InodeId ino = 0;
  std::string path;  // guarded by Filesystem::handles_mu_
  int handles = 0;   // guarded by Filesystem::handles_mu_
  // Serializes writes, truncates, reads and uploads of the staged file.
  std::mutex mu;
  std::unique_ptr<StagedFile> staged;  // guarded by mu
  // A new file (or a truncate) that the bucket does not have yet: an
  // upload is due even when no byte was written.
  bool needs_upload = false;  // guarded by mu
  // The last upload failed and close(2) was told; no byte was written
  // since, so the last release does not try again behind its back.
  bool failed = false;  // guarded by mu
  // A write to the staged file failed (ENOSPC): the staged bytes are not
  // what the writer meant, so they are never uploaded; every later write,
  // flush and fsync of the state gets this error.
  Status broken;  // guarded by mu
  // Unlinked while open: the data goes with the last handle.
  bool orphaned = false;  // guarded by mu
  // The parts of a sequential writer going up as it writes (streamupload=),
  // the attributes they were started with, and whether this round of
  // writes can no longer stream (a write into a part sent, a failure).
  std::unique_ptr<StreamingUpload> stream;  // guarded by mu
  NodeMeta stream_meta;                     // guarded by mu
  bool no_stream = false;                   // guarded by mu
  // Attributes as the kernel sees them (size = staged size); read by
  // getattr without waiting for an upload in progress.
  std::mutex attr_mu;
  NodeMeta meta;  // guarded by attr_mu; written with mu held too
};

WriteOptions WriteOptionsFrom(const Config& config) {
  WriteOptions o;
  o.staging_dir = config.cache.dir.empty() ? config.write.tmpdir : config.cache.dir + "/staging";
  o.multipart_size = config.write.multipart_size;
  o.parallel_count = config.write.parallel_count;
  o.max_dirty = config.write.max_dirty;
  o.stream_upload = config.write.stream_upload;
  return o;
}

std::shared_ptr<Filesystem::WriteState> Filesystem::WritingAt(const std::string& path) {
  std::lock_guard lock(handles_mu_);
  for (const auto& [ino, ws] : writing_) {
    if (ws->path == path) return ws;
  }
  return nullptr;
}

std::shared_ptr<Filesystem::WriteState> Filesystem::WritingOf(InodeId ino) {
  std::lock_guard lock(handles_mu_);
  auto it = writing_.find(ino);
  return it == writing_.end() ? nullptr : it->second;
}

NodeMeta Filesystem::StagedMeta(WriteState& ws) {
  std::lock_guard lock(ws.attr_mu);
  return ws.meta;
}

std::shared_ptr<const Listing> Filesystem::WithStagedChildren(
    const std::string& dir, std::shared_ptr<const Listing> listing) {
  std::vector<std::pair<std::string, std::shared_ptr<WriteState>>> extra;
  {
    std::lock_guard lock(handles_mu_);
    for (const auto& [ino, ws] : writing_) {
      if (ws->path.empty() || ParentPath(ws->path) != dir) continue;
      std::string name = BaseNameOf(ws->path);
      if (!listing->children.count(name)) extra.emplace_back(std::move(name), ws);
    }
  }
  if (extra.empty()) return listing;
  // Files created here and not uploaded yet: listed at once. A private
  // copy, not cached (the next listing from the bucket has them).
  auto merged = std::make_shared<Listing>(*listing);
  for (auto& [name, ws] : extra) {
    const NodeMeta m = StagedMeta(*ws);
    merged->children[name] = Listing::Child{NodeKind::kFile, m.size, m.etag, m.mtime_sec};
  }
  return merged;
}

Result<Filesystem::CreateReply> Filesystem::Create(InodeId parent, const std::string& name,
                                                   mode_t mode, int flags, uid_t uid, gid_t gid) {
  if (config_.read_only) return ReadOnlyError();
  DSFS_ASSIGN_OR_RETURN(InodeInfo dir, GetInode(parent));
  if (dir.kind != NodeKind::kDir) return Status::NotDirectory(dir.path);
  if (name.size() > kMaxNameLength) return Status::NameTooLong(name.substr(0, 32) + "...");
  if (!IsValidName(name)) return Status::InvalidArgument("invalid file name");
  const std::string path = JoinPath(dir.path, name);

  auto ws = std::make_shared<WriteState>();
  DSFS_ASSIGN_OR_RETURN(ws->staged, StagedFile::Create(write_.staging_dir, dirty_));
  ws->needs_upload = true;
  NodeMeta meta;
  meta.kind = NodeKind::kFile;
  meta.mode = S_IFREG | (mode & 07777);
  meta.uid = config_.uid_set ? config_.uid : uid;
  meta.gid = config_.gid_set ? config_.gid : gid;
  Touch(&meta);
  ws->meta = meta;
  ws->path = path;
  ws->handles = 1;

  CreateReply reply;
  reply.entry.ino = inodes_.Acquire(path, meta);
  reply.entry.attr = ToStat(reply.entry.ino, meta, config_);
  ws->ino = reply.entry.ino;
  meta_.PutStat(path, meta);
  FileHandle fh;
  fh.ino = ws->ino;
  fh.object = ObjectId{KeyOf(path), "", 0};
  fh.write = ws;
  fh.writable = (flags & O_ACCMODE) != O_RDONLY;
  fh.append = (flags & O_APPEND) != 0;
  reply.open.handle = next_handle_++;
  std::lock_guard lock(handles_mu_);
  writing_[ws->ino] = ws;
  files_[reply.open.handle] = std::move(fh);
  return reply;
}

Result<std::shared_ptr<Filesystem::WriteState>> Filesystem::AttachWrite(InodeId ino,
                                                                        bool truncate) {
  if (auto ws = WritingOf(ino)) {
    std::lock_guard lock(handles_mu_);
    // Still the inode's state (not dropped by its last release meanwhile).
    auto it = writing_.find(ino);
    if (it != writing_.end() && it->second == ws) {
      ++ws->handles;
      return ws;
    }
  }
  DSFS_ASSIGN_OR_RETURN(InodeInfo node, GetInode(ino));
  DSFS_ASSIGN_OR_RETURN(NodeMeta meta, Resolve(node.path));
  if (meta.kind == NodeKind::kDir) return Status::IsDirectory(node.path);
  if (meta.kind == NodeKind::kSymlink) return Status::InvalidArgument("a symlink");
  if (!node.etag.empty() && node.etag != meta.etag) {
    return Status::PreconditionFailed("'" + node.path + "' changed since it was looked up");
  }
  auto ws = std::make_shared<WriteState>();
  ws->ino = ino;
  ws->path = node.path;
  DSFS_ASSIGN_OR_RETURN(ws->staged, StagedFile::Create(write_.staging_dir, dirty_));
  if (truncate) {
    if (meta.size > 0) {
      DSFS_RETURN_IF_ERROR(ws->staged->Truncate(0));
      Touch(&meta);
    }
  } else {
    // The whole version looked up, pinned by its ETag: a partial overwrite
    // never mixes two versions.
    const ObjectId object{KeyOf(node.path), meta.etag, meta.size};
    std::vector<char> buf(std::min<uint64_t>(kFillChunk, std::max<uint64_t>(meta.size, 1)));
    for (uint64_t off = 0; off < meta.size;) {
      DSFS_ASSIGN_OR_RETURN(size_t n, reader_.Read(object, off, buf.size(), buf.data()));
      if (n == 0) {
        return Status::Corruption("'" + node.path + "' ended at " + std::to_string(off) +
                                  " bytes, not " + std::to_string(meta.size));
      }
      DSFS_RETURN_IF_ERROR(ws->staged->Fill(off, buf.data(), n));
      off += n;
    }
  }
  meta.size = ws->staged->size();
  ws->meta = meta;
  ws->handles = 1;
  std::lock_guard lock(handles_mu_);
  auto [it, inserted] = writing_.try_emplace(ino, ws);
  if (!inserted) {
    // Another open made the state first: share it (ours is dropped).
    ++it->second->handles;
    return it->second;
  }
  return ws;
}

void Filesystem::DetachWrite(const std::shared_ptr<WriteState>& ws) {
  std::lock_guard lock(handles_mu_);
  if (--ws->handles > 0) return;
  auto it = writing_.find(ws->ino);
  if (it != writing_.end() && it->second == ws) writing_.erase(it);
}

Result<OpenReply> Filesystem::OpenForWrite(InodeId ino, int flags) {
  const bool writable = (flags & O_ACCMODE) != O_RDONLY;
  if (config_.read_only && (writable || (flags & O_TRUNC))) return ReadOnlyError();
  const bool truncate = writable && (flags & O_TRUNC);
  DSFS_ASSIGN_OR_RETURN(std::shared_ptr<WriteState> ws, AttachWrite(ino, truncate));
  if (truncate) {
    // An existing state (another handle is writing) is cut here.
    std::lock_guard lock(ws->mu);
    AbandonStreamLocked(*ws);
    if (ws->staged->size() > 0) {
      Status st = ws->staged->Truncate(0);
      if (!st.ok()) {
        DetachWrite(ws);
        return st;
      }
      std::lock_guard alock(ws->attr_mu);
      ws->meta.size = 0;
      Touch(&ws->meta);
    }
  }
  FileHandle fh;
  fh.ino = ino;
  // The version it stands for: an unlink or rename while open defers the
  // DELETE of that version to the last close.
  {
    std::lock_guard lock(handles_mu_);
    fh.object = ObjectId{KeyOf(ws->path), "", 0};
  }
  fh.object.etag = StagedMeta(*ws).etag;
  fh.write = ws;
  fh.writable = writable;
  fh.append = (flags & O_APPEND) != 0;
  OpenReply reply;
  // Written bytes reach the kernel's page cache only partly: never trust
  // what it holds for a file being written.
  reply.keep_cache = false;
  inodes_.DropKernelCache(ino);
  reply.handle = next_handle_++;
  std::lock_guard lock(handles_mu_);
  files_[reply.handle] = std::move(fh);
  return reply;
}

Result<SliceList> Filesystem::ReadStaged(WriteState& ws, uint64_t offset, size_t len) {
  std::lock_guard lock(ws.mu);
  const uint64_t size = ws.staged->size();
  if (offset >= size || len == 0) return SliceList{};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
  std::shared_ptr<Buffer> buf = Buffer::Allocate(n);
  DSFS_ASSIGN_OR_RETURN(size_t got, ws.staged->Read(offset, n, buf->data()));
  SliceList out;
  if (got > 0) out.push_back(ReadSlice{buf, buf->data(), got});
  return out;
}

Result<size_t> Filesystem::Write(uint64_t handle, uint64_t offset, const char* data, size_t len) {
  FileHandle fh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Status::InvalidArgument("bad file handle");
    fh = it->second;
  }
  if (!fh.write || !fh.writable) return Status::InvalidArgument("not open for writing");
  WriteState& ws = *fh.write;
  std::lock_guard lock(ws.mu);
  if (!ws.broken.ok()) return ws.broken;
  if (fh.append) offset = ws.staged->size();
  if (offset + len > kMaxUploadSize) {
    return Status::InvalidArgument("a file holds at most 5 TiB (S3's largest object)");
  }
  if (ws.stream && ws.stream->Touches(offset, len)) AbandonStreamLocked(ws);
  if (Status st = ws.staged->Write(offset, data, len); !st.ok()) {
    ws.broken =
        Status(st.code(), "an earlier write failed, the file is not uploaded: " + st.message());
    Count("dsfs_write_staging_errors_total");
    if (ws.stream) AbandonStreamLocked(ws);
    return st;
  }
  ws.failed = false;
  {
    std::lock_guard alock(ws.attr_mu);
    ws.meta.size = ws.staged->size();
    Touch(&ws.meta);
  }
  if (dirty_.over()) {
    // Past max_dirty: this file goes up now, so the staging disk holds at
    // most max_dirty plus what other writers add before they write again.
    Count("dsfs_write_early_uploads_total");
    DSFS_RETURN_IF_ERROR(UploadLocked(ws));
  } else {
    StreamLocked(ws);
  }
  return len;
}

void Filesystem::StreamLocked(WriteState& ws) {
  if (!write_.stream_upload || ws.no_stream || ws.orphaned || !ws.broken.ok()) return;
  const uint64_t size = ws.staged->size();
  const uint64_t part = PartSizeFor(0, write_.multipart_size);
  if (!ws.stream) {
    // Two whole parts: part 1 waits for close, part 2 can go now.
    if (size < 2 * part) return;
    std::string path;
    {
      std::lock_guard lock(handles_mu_);
      path = ws.path;
    }
    const NodeMeta meta = StagedMeta(ws);
    auto up = StreamingUpload::Start(store_, KeyOf(path), AttrsForFile(meta), ws.staged->fd(),
                                     part, write_.parallel_count);
    if (!up.ok()) {
      // It goes up whole at close, which reports the error if it stays.
      ws.no_stream = true;
      spdlog::debug("'{}': no streamed upload: {}", EscapeForLog(path),
                    EscapeForLog(up.status().ToString()));
      return;
    }
    ws.stream = std::move(up).value();
    ws.stream_meta = meta;
    Count("dsfs_write_streamed_uploads_total");
  }
  ws.stream->Advance(size);
}

void Filesystem::AbandonStreamLocked(WriteState& ws) {
  if (!ws.stream) return;
  ws.stream->Abandon();
  ws.stream.reset();
  ws.no_stream = true;
  Count("dsfs_write_stream_abandoned_total");
}

Status Filesystem::UploadLocked(WriteState& ws) {
  if (ws.orphaned) {
    AbandonStreamLocked(ws);
    ws.no_stream = false;
    ws.staged->MarkClean();
    ws.needs_upload = false;
    return Status::Ok();
  }
  std::string path;
  {
    std::lock_guard lock(handles_mu_);
    path = ws.path;
  }
  NodeMeta meta = StagedMeta(ws);
  meta.size = ws.staged->size();
  Body body;
  body.fd = ws.staged->fd();
  body.length = meta.size;
  TransferOptions options;
  options.part_size = write_.multipart_size;
  options.parallel = write_.parallel_count;
  Count("dsfs_write_uploads_total");
  Result<PutResult> put = Status::NotSupported("not streamed");
  bool streamed_error = false;
  if (ws.stream) {
    // The parts sent while it was written, and the rest now; the object
    // takes the attributes its upload started with. Renamed, chmod'ed or
    // chown'ed since, or past 10,000 parts: up whole instead.
    std::unique_ptr<StreamingUpload> stream = std::move(ws.stream);
    const NodeMeta& sm = ws.stream_meta;
    if (stream->key() == KeyOf(path) && sm.mode == meta.mode && sm.uid == meta.uid &&
        sm.gid == meta.gid) {
      put = stream->Finish(meta.size);
      if (put.ok()) {
        meta.mtime_sec = sm.mtime_sec;
        meta.mtime_nsec = sm.mtime_nsec;
        meta.ctime_sec = sm.ctime_sec;
        meta.ctime_nsec = sm.ctime_nsec;
        std::lock_guard lock(ws.attr_mu);
        ws.meta.mtime_sec = sm.mtime_sec;
        ws.meta.mtime_nsec = sm.mtime_nsec;
        ws.meta.ctime_sec = sm.ctime_sec;
        ws.meta.ctime_nsec = sm.ctime_nsec;
      } else if (put.status().code() == StatusCode::kNotSupported) {
        // More parts than S3 allows at this part size: larger parts.
        Count("dsfs_write_stream_abandoned_total");
      } else {
        // Failed after the store's own retries (and aborted): the close's
        // error, as a whole upload's failure would be.
        streamed_error = true;
      }
    } else {
      stream->Abandon();
      Count("dsfs_write_stream_abandoned_total");
    }
  }
  ws.no_stream = false;  // the next round of writes may stream again
  if (!put.ok() && !streamed_error) {
    put = UploadObject(store_, KeyOf(path), body, AttrsForFile(meta), options);
  }
  if (!put.ok()) {
    ws.failed = true;
    Count("dsfs_write_upload_errors_total");
    spdlog::warn("upload of '{}' ({} bytes) failed: {}", EscapeForLog(path), meta.size,
                 EscapeForLog(put.status().ToString()));
    return put.status().WithContext("uploading '" + path + "'");
  }
  ws.staged->MarkClean();
  ws.needs_upload = false;
  ws.failed = false;
  meta.etag = put->etag;
  {
    std::lock_guard lock(ws.attr_mu);
    ws.meta.etag = meta.etag;
  }
  // The same inode is the new version; what described the old one goes.
  // Handles that were reading the old version through this inode follow
  // it (a local write is visible to every reader of the file, as on a
  // local filesystem); only a change by another client is ESTALE.
  const ObjectId now{KeyOf(path), meta.etag, meta.size};
  std::vector<ObjectId> moved;
  bool moved_away = false;
  {
    std::lock_guard lock(handles_mu_);
    // Unlinked or renamed away while this upload was in flight (a release
    // uploads after close(2) returned, so an unlink can come first): the
    // version it wrote is the unlinked name's too, hidden and deleted at
    // the last close, not left under a name the user removed.
    moved_away = ws.path != path;
    if (moved_away) {
      auto d = deferred_.find(now.key);
      if (d != deferred_.end() && d->second.path == path) d->second.etags.insert(now.etag);
    }
    for (auto& [id, h] : files_) {
      // A handle opened under another name (renamed since) keeps it: its
      // last close finishes the deferred DELETE of that name.
      if (h.ino != ws.ino || h.object.key != now.key || h.object == now) continue;
      ObjectId old = std::exchange(h.object, now);
      if (!h.write) moved.push_back(std::move(old));
    }
  }
  for (const ObjectId& old : moved) {
    reader_.Released(old);
    reader_.Opened(now);
  }
  inodes_.SetVersion(ws.ino, meta);
  inodes_.DropKernelCache(ws.ino);
  if (moved_away) {
    meta_.Invalidate(path);  // the unlink's negative entry, or a fresh look
  } else {
    meta_.PutStat(path, meta);
  }
  meta_.Invalidate(ParentPath(path));
  return Status::Ok();
}

Status Filesystem::Flush(uint64_t handle) {
  FileHandle fh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Status::InvalidArgument("bad file handle");
    fh = it->second;
  }
  if (!fh.write || !fh.writable) return Status::Ok();
  std::lock_guard lock(fh.write->mu);
  if (!fh.write->broken.ok()) return fh.write->broken;
  if (!fh.write->staged->dirty() && !fh.write->needs_upload) return Status::Ok();
  return UploadLocked(*fh.write);
}

Status Filesystem::Fsync(uint64_t handle) { return Flush(handle); }

void Filesystem::ReleaseWrite(const FileHandle& fh) {
  WriteState& ws = *fh.write;
  {
    std::lock_guard lock(ws.mu);
    // A close without a flush (the kernel always flushes first; a truncate
    // of a file open only for reading leaves dirty data too): the data
    // still goes up. After a failed flush it does not: the writer was
    // told, and the bucket keeps the version it had.
    if ((ws.staged->dirty() || ws.needs_upload) && !ws.failed && ws.broken.ok()) {
      (void)UploadLocked(ws);  // a failure sets ws.failed: kept below
    } else if (fh.writable && !ws.broken.ok()) {
      spdlog::warn(
          "'{}': closed after a failed write (close(2) returned its error); "
          "the bucket keeps the version it had",
          EscapeForLog(fh.object.key));
    }
    if (ws.failed && !ws.orphaned && LastHandle(ws)) KeepFailedLocked(ws);
  }
  DetachWrite(fh.write);
}

bool Filesystem::LastHandle(const WriteState& ws) {
  std::lock_guard lock(handles_mu_);
  return ws.handles <= 1;
}

void Filesystem::KeepFailedLocked(WriteState& ws) {
  std::string path;
  {
    std::lock_guard lock(handles_mu_);
    path = ws.path;
  }
  const std::string dir = write_.staging_dir + "/" + kKeptDir;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::error("upload of '{}' failed and its data is lost: cannot create '{}': {}",
                  EscapeForLog(path), EscapeForLog(dir), ErrnoText(errno));
    return;
  }
  const std::string kept = dir + "/" + KeptName(path, ws.ino);
  if (Status st = ws.staged->KeepAs(kept); !st.ok()) {
    spdlog::error("upload of '{}' failed and its data is lost: {}", EscapeForLog(path),
                  EscapeForLog(st.ToString()));
    return;
  }
  Count("dsfs_write_kept_total");
  spdlog::warn(
      "upload of '{}' failed: the bucket keeps the version it had; the {} bytes written "
      "are kept in '{}' (not uploaded again: copy it back, then delete it)",
      EscapeForLog(path), ws.staged->size(), EscapeForLog(kept));
}

void Filesystem::OrphanStaged(const std::string& path) {
  std::shared_ptr<WriteState> ws = WritingAt(path);
  if (!ws) return;
  {
    std::lock_guard lock(handles_mu_);
    ws->path.clear();  // no lookup finds it any more
  }
  std::lock_guard lock(ws->mu);
  ws->orphaned = true;
}

void Filesystem::MoveStaged(const std::string& from, const std::string& to) {
  std::lock_guard lock(handles_mu_);
  for (auto& [ino, ws] : writing_) {
    if (ws->path == from) ws->path = to;
  }
}

std::optional<Status> Filesystem::RenameStaged(const std::string& from, const std::string& to) {
  std::shared_ptr<WriteState> ws = WritingAt(from);
  if (!ws) return std::nullopt;
  // Holding mu: an upload in flight (a release's, after close(2) returned)
  // ends first, and none starts while the name moves.
  std::lock_guard lock(ws->mu);
  {
    std::lock_guard hlock(handles_mu_);
    if (ws->path != from) return Status::NotFound("'" + EscapeForLog(from) + "' was removed");
  }
  // In the bucket under `from` (as uploaded or as opened): copied, so a
  // failure of the upload at its close leaves that version at the new name.
  if (!StagedMeta(*ws).etag.empty()) return RenameObject(from, to);
  // A new file not uploaded yet: the name moves, the data goes up under
  // it at the close.
  OrphanStaged(to);  // a file being written there was replaced
  inodes_.Rename(from, to);
  MoveStaged(from, to);
  meta_.Invalidate(to);
  meta_.InvalidateListing(ParentPath(to));
  meta_.PutNegative(from);
  meta_.InvalidateListing(ParentPath(from));
  return Status::Ok();
}

std::optional<Result<struct stat>> Filesystem::SetStagedAttrs(InodeId ino,
                                                               const AttrChange& change) {
  std::shared_ptr<WriteState> ws = WritingOf(ino);
  if (!ws) return std::nullopt;
  std::lock_guard lock(ws->mu);
  NodeMeta meta;
  {
    std::lock_guard alock(ws->attr_mu);
    NodeMeta& m = ws->meta;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    auto pick = [&](const struct timespec& t) { return t.tv_nsec == UTIME_NOW ? now : t; };
    if (change.mode) m.mode = (m.mode & S_IFMT) | (*change.mode & 07777);
    if (change.uid) m.uid = *change.uid;
    if (change.gid) m.gid = *change.gid;
    if (change.atime) {
      const struct timespec t = pick(*change.atime);
      m.atime_sec = t.tv_sec;
      m.atime_nsec = static_cast<uint32_t>(t.tv_nsec);
    }
    if (change.mtime) {
      const struct timespec t = pick(*change.mtime);
      m.mtime_sec = t.tv_sec;
      m.mtime_nsec = static_cast<uint32_t>(t.tv_nsec);
    }
    m.ctime_sec = now.tv_sec;
    m.ctime_nsec = static_cast<uint32_t>(now.tv_nsec);
    meta = m;
  }
  // The attributes go up with the data, even if no byte changes.
  ws->needs_upload = true;
  ws->failed = false;
  return Result<struct stat>(ToStat(ino, meta, config_));
}

Result<struct stat> Filesystem::SetSize(InodeId ino, uint64_t size, uint64_t handle) {
  if (config_.read_only) return ReadOnlyError();
  if (size > kMaxUploadSize) {
    return Status::InvalidArgument("a file holds at most 5 TiB (S3's largest object)");
  }
  std::shared_ptr<WriteState> ws;
  bool attached = false;
  if (handle != 0) {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it != files_.end()) ws = it->second.write;
  }
  if (!ws) {
    DSFS_ASSIGN_OR_RETURN(ws, AttachWrite(ino, size == 0));
    attached = true;
  }
  Status st;
  NodeMeta meta;
  {
    std::lock_guard lock(ws->mu);
    if (ws->stream && size < ws->stream->streamed_end()) AbandonStreamLocked(*ws);
    st = ws->broken.ok() ? ws->staged->Truncate(size) : ws->broken;
    if (st.ok()) {
      ws->failed = false;
      {
        std::lock_guard alock(ws->attr_mu);
        ws->meta.size = size;
        Touch(&ws->meta);
      }
      bool only_us;
      {
        std::lock_guard hlock(handles_mu_);
        only_us = ws->handles == 1;
      }
      // truncate(2) of a file nobody has open for write: in the bucket now.
      if (attached && only_us) st = UploadLocked(*ws);
    }
    meta = StagedMeta(*ws);
  }
  if (attached) DetachWrite(ws);
  DSFS_RETURN_IF_ERROR(st);
  return ToStat(ino, meta, config_);
}

}  // namespace dsfs
