// Filesystem: the core of dsfs, with no FUSE headers. The FUSE adapter
// (fuse_adapter.cc) converts requests, calls these methods and replies.
// Everything here is tested against MemoryStore without a mount.
//
// Paths are relative to the mount root; the object key of a path is
// config.prefix + path. Names resolve s3fs-style: an object "a/b" is a file
// (or symlink, by its mode header), "a/b/" or any key under "a/b/" makes a
// directory. When both a file and a directory share a name, the file wins
// (lookup and readdir agree).
//
// Lock order: WriteState::mu (one per inode being written; see
// filesystem_write.cc) -> WriteState::attr_mu -> handles_mu_. handles_mu_
// is a leaf; InodeTable and MetadataCache have their own leaf locks and
// are never called with handles_mu_ held (they may be with a
// WriteState::mu).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/fallback_store.h"
#include "backends/object_store.h"
#include "cache/object_reader.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/metrics.h"
#include "fs/inode_table.h"
#include "fs/metadata_cache.h"
#include "fs/staging.h"

namespace dsfs {

// The metadata cache of a mount: fs.* TTLs and bounds.
MetadataCacheOptions MetadataCacheOptionsFrom(const FsConfig& fs);

// The write path: where files are staged and how they are uploaded.
// Filled by WriteOptionsFrom; the defaults are a default Config's.
struct WriteOptions {
  // cache_dir/staging with a disk cache, else tmpdir=.
  std::string staging_dir = WriteConfig{}.tmpdir;
  uint64_t multipart_size = WriteConfig{}.multipart_size;
  int parallel_count = WriteConfig{}.parallel_count;
  uint64_t max_dirty = WriteConfig{}.max_dirty;
  bool stream_upload = WriteConfig{}.stream_upload;
  // Objects up to this size are copied (rename, chmod) with one CopyObject,
  // larger ones part by part. S3's limit, not a tunable; tests lower it.
  uint64_t max_single_copy = uint64_t{5} << 30;
};
WriteOptions WriteOptionsFrom(const Config& config);

struct EntryReply {
  InodeId ino = 0;
  struct stat attr {};
};

struct DirEntry {
  std::string name;
  InodeId ino = 0;
  mode_t type = 0;  // S_IFDIR, S_IFREG, S_IFLNK, or 0 (unknown: stat it)
  // The offset a readdir continues from after this entry (entries may be
  // left out: a name unlinked while open).
  uint64_t next = 0;
};

struct OpenReply {
  uint64_t handle = 0;
  // The kernel may keep cached pages: the object's ETag is the one whose
  // bytes it cached before.
  bool keep_cache = false;
};

class Filesystem {
 public:
  // store and reader must outlive the Filesystem. metrics may be null.
  Filesystem(const FsConfig& config, ObjectStore& store, ObjectReader& reader,
             const Clock& clock, Metrics* metrics, const WriteOptions& write = WriteOptions{});
  ~Filesystem();

  // Adds one kernel lookup to the returned inode.
  Result<EntryReply> Lookup(InodeId parent, const std::string& name);
  void Forget(InodeId ino, uint64_t nlookup);
  Result<struct stat> GetAttr(InodeId ino);
  // `cancel`: as for OpenDir (the target's GET stops with Cancelled).
  Result<std::string> ReadLink(InodeId ino, const CancelTokenPtr& cancel = nullptr);

  // Directory handles hold the listing of the open (one immutable Listing
  // shared by every handle and the cache; entries are made from it as
  // readdir asks), so readdir offsets are stable while the handle lives.
  // `cancel`: cancelled when the caller gives up (FUSE interrupt); a
  // listing in progress then stops with Cancelled (EINTR).
  Result<uint64_t> OpenDir(InodeId ino, const CancelTokenPtr& cancel = nullptr);
  // Entries from `offset` on ("." and ".." first); an entry's next offset is
  // its index + 1.
  Result<std::vector<DirEntry>> ReadDir(uint64_t handle, uint64_t offset, size_t max_entries);
  void ReleaseDir(uint64_t handle);

  // flags: open(2) flags. Any write access is refused on a read-only mount
  // (and opens for write in filesystem_write.cc).
  Result<OpenReply> Open(InodeId ino, int flags);
  // The bytes as slices of shared buffers (what the FUSE reply is written
  // from), or copied into buf. `cancel`: as for OpenDir (a read waiting
  // for the network fails with Cancelled, EINTR).
  Result<SliceList> ReadSlices(uint64_t handle, uint64_t offset, size_t len,
                               const CancelTokenPtr& cancel = nullptr);
  Result<size_t> Read(uint64_t handle, uint64_t offset, size_t len, char* buf,
                      const CancelTokenPtr& cancel = nullptr);
  void Release(uint64_t handle);

  Result<struct statvfs> StatFs();

  // Extended attributes. The mount root has one, kStatsXattr: the mount's
  // counters in the Prometheus text format (`dsfsctl stats`, tests).
  static constexpr const char* kStatsXattr = "user.dsfs.stats";
  // Where, under the staging directory, the data of a file whose final
  // upload failed is kept (one file each; the user recovers or deletes it).
  static constexpr const char* kKeptDir = "kept";
  // On any file or directory: proves the share copies of the objects there
  // (recursive) against OBS now and returns one line per object
  // ("proven|differs|missing|unprovable|error <path>") and a "total ..." line.
  static constexpr const char* kProveXattr = "user.dsfs.prove";
  // On a file, "user.dsfs.warm.<first>.<count>": puts blocks first ..
  // first+count-1 of the object into the disk cache (those it holds are
  // skipped) and answers once they are there: "fetched F skipped S blocks
  // N block_size B" (N, B: the whole object's). count 0 only asks N and B.
  // ENOTSUP without a disk cache, EINVAL for a malformed name, EISDIR on a
  // directory (dsfsctl warm walks directories itself).
  static constexpr const char* kWarmXattrPrefix = "user.dsfs.warm.";
  struct WarmRequest {
    uint64_t first = 0;
    uint64_t count = 0;
  };
  // The request in a kWarmXattrPrefix name; nullopt if malformed.
  static std::optional<WarmRequest> ParseWarmXattr(const std::string& name);
  using Prover = std::function<Result<std::vector<ProofLine>>(const std::string& prefix)>;
  // Where kProveXattr goes (FallbackStore::ProvePrefix); unset: ENOTSUP.
  void set_prover(Prover prover) { prover_ = std::move(prover); }
  Result<std::string> GetXattr(InodeId ino, const std::string& name);
  Result<std::string> ListXattr(InodeId ino);

  // ---- The write path (fs/filesystem_write.cc) ----
  // A file written through the mount is staged whole in a local file
  // (WriteOptions::staging_dir) and uploaded (one PUT, or a parallel
  // multipart upload) on flush, fsync and the last release when it is
  // dirty; nothing is written to the bucket before (no empty object at
  // create). After an upload the inode keeps its number and stands for the
  // new version; its stat entry and the parent's listing are updated at
  // once and the kernel's page cache of it is dropped at the next open.
  // An open for write of an existing object without O_TRUNC first copies
  // the version it opened, whole, into the staged file (through the reader,
  // pinned by ETag: a change upstream during the copy is ESTALE).
  struct CreateReply {
    EntryReply entry;
    OpenReply open;
  };
  // A new file `name` in `parent` (mode's permission bits, owner uid/gid),
  // opened with open(2) `flags`; adds one lookup.
  Result<CreateReply> Create(InodeId parent, const std::string& name, mode_t mode, int flags,
                             uid_t uid, gid_t gid);
  // Writes into the staged file (at its end for O_APPEND handles). A full
  // staging disk is NoSpace (ENOSPC). Past max_dirty, the file is uploaded
  // before the write returns (its error, if any, is the write's).
  Result<size_t> Write(uint64_t handle, uint64_t offset, const char* data, size_t len);
  // Uploads the handle's file if it is dirty: close(2)'s error.
  Status Flush(uint64_t handle);
  // The same: fsync means "in the bucket" (there is no local durability).
  Status Fsync(uint64_t handle);
  // SetAttr's size part (truncate, ftruncate; mode/uid/gid/times are the
  // namespace half's). `handle` 0: truncate(2) by path, uploaded at once
  // unless the file is open for write (then at its close); else the open
  // handle's file, uploaded at its flush.
  Result<struct stat> SetSize(InodeId ino, uint64_t size, uint64_t handle);
  // Bytes staged and not uploaded yet, over all files (max_dirty's account).
  uint64_t dirty_bytes() const { return dirty_.dirty(); }

  // The error every write and namespace change gets (there is no write
  // path yet): ReadOnly (EROFS) on a read-only mount, else NotSupported.
  Status ReadOnlyError() const;

  // ---- Namespace changes (fs/filesystem_namespace.cc) ----
  // Each writes the s3fs/obsfs format (fs/attr.h) and updates the stat
  // cache, the listing cache and the inode table before it returns (mkdir
  // then ls shows the directory at once; a renamed node keeps its id).
  // New names: empty, ".", "..", '/' or NUL -> InvalidArgument; over 255
  // bytes (or a key over S3's 1024) -> NameTooLong; taken -> Exists.

  // Who asks (the FUSE request's context): owner of what is created.
  struct Caller {
    uid_t uid = 0;
    gid_t gid = 0;
  };
  // A "name/" marker: zero bytes, Content-Type application/x-directory.
  Result<EntryReply> Mkdir(InodeId parent, const std::string& name, mode_t mode,
                           const Caller& caller);
  // NotEmpty when any key is under "name/"; deletes the marker (an
  // implicit directory has none) and a legacy "name" directory object.
  Status Rmdir(InodeId parent, const std::string& name);
  // Deletes the object. While read handles on it are open, the DELETE
  // waits for the last one to close and the name is hidden at once.
  Status Unlink(InodeId parent, const std::string& name);
  // flags: RENAME_NOREPLACE is honoured, RENAME_EXCHANGE is InvalidArgument.
  // A file: server-side copy (metadata kept), then delete of the source; a
  // destination file is replaced. A directory: every key under it is
  // copied, then the sources are deleted (not atomic; a failure stops it
  // with IoError and leaves every object at its old name or its new one).
  static constexpr unsigned kRenameNoReplace = 1;  // Linux RENAME_NOREPLACE
  static constexpr unsigned kRenameExchange = 2;   // Linux RENAME_EXCHANGE
  Status Rename(InodeId parent, const std::string& name, InodeId new_parent,
                const std::string& new_name, unsigned flags);
  // An object whose body is `target`, mode S_IFLNK|0777.
  Result<EntryReply> Symlink(InodeId parent, const std::string& name, const std::string& target,
                             const Caller& caller);
  // Hard links cannot be stored in an object store: NotPermitted (EPERM).
  Status Link(InodeId ino, InodeId new_parent, const std::string& new_name);
  // chmod / chown / utimens: a copy of the object onto itself with the new
  // metadata (REPLACE), as s3fs does; ctime becomes now. A directory
  // without a marker gets one. The size part of setattr is the write
  // path's (Truncate).
  struct AttrChange {
    std::optional<mode_t> mode;  // permission bits (07777) only
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::optional<struct timespec> atime;  // UTIME_NOW: now
    std::optional<struct timespec> mtime;
  };
  Result<struct stat> SetAttr(InodeId ino, const AttrChange& change);
  // InvalidArgument / NameTooLong for a name no entry may get.
  static Status CheckNewName(const std::string& name);

  // The object key of a path.
  std::string KeyOf(const std::string& path) const { return config_.prefix + path; }
  InodeTable& inodes() { return inodes_; }

 private:
  struct WriteState;  // the staged state of one inode (filesystem_write.cc)
  struct FileHandle {
    InodeId ino = 0;
    ObjectId object;
    // Set: the inode is being written; reads and writes go to its staged
    // file (every handle of the inode opened since shares it).
    std::shared_ptr<WriteState> write;
    bool writable = false;
    bool append = false;
  };
  struct DirHandle {
    InodeId ino = 0;
    InodeId parent = 0;
    std::string path;
    std::shared_ptr<const Listing> listing;
    // Where the last readdir stopped, so sequential readdirs do not walk
    // the map from the start: the child at offset cursor_offset.
    uint64_t cursor_offset = 0;
    std::map<std::string, Listing::Child>::const_iterator cursor;
  };

  // What `path` is: cache, then the parent's cached listing, then HEAD of
  // the key, then a one-key LIST of "path/" for directories.
  Result<NodeMeta> Resolve(const std::string& path);
  Result<NodeMeta> ResolveUncached(const std::string& path, const Listing::Child* hint);
  // The full listing of a directory (all pages), cached for list_ttl.
  // Bounded against servers that never end a listing: a repeated
  // continuation token, list_max_empty_pages empty pages in a row, more
  // than list_timeout in all, or more than list_mem of listings fail it.
  Result<std::shared_ptr<const Listing>> LoadListing(const std::string& path,
                                                     const CancelTokenPtr& cancel);
  Result<InodeInfo> GetInode(InodeId ino) const;
  Result<std::string> ProveReport(const InodeInfo& node);
  Result<std::string> WarmReport(const InodeInfo& node, const std::string& name);

  // Namespace helpers (fs/filesystem_namespace.cc).
  struct NewEntry {
    InodeInfo parent;
    std::string path;
  };
  // The parent directory and the new path, the name checked.
  Result<NewEntry> PrepareNewEntry(InodeId parent, const std::string& name);
  // Deletes `key` now, or, while a handle is open on it, when the last one
  // closes (the path is hidden meanwhile).
  Status DeleteOrDefer(const std::string& path, const std::string& key);
  // After a handle on `object` closed: the deferred DELETE, if it was the last.
  void FinishDeferred(const ObjectId& object);
  // True when `path` at version `etag` is unlinked but still open.
  bool IsHidden(const std::string& path, const std::string& etag);
  // Server-side copy of src (still at `etag`, `size` bytes) to dst, with
  // attrs when set (else the source's metadata): one CopyObject up to
  // write_.max_single_copy, a multipart copy above.
  Result<PutResult> CopyKey(const std::string& src, const std::string& etag, uint64_t size,
                            const std::string& dst, std::optional<ObjectAttrs> attrs);
  Status RenameFile(const std::string& from, const NodeMeta& from_meta, const std::string& to);
  // The object at `from` copied to `to`, then deleted (or deferred while open).
  Status RenameObject(const std::string& from, const std::string& to);
  Status RenameDir(const std::string& from, const NodeMeta& from_meta, const std::string& to,
                   bool to_exists);
  // Every object under `prefix` (all pages), bounded as LoadListing is.
  Result<std::vector<ObjectInfo>> ListAll(const std::string& prefix, int max_keys);
  // A node's change made: caches and inode table agree with the store.
  void Created(const std::string& path, const NodeMeta& meta);
  void Removed(const std::string& path);
  static constexpr size_t kMaxXattrReport = 60000;
  void Count(const char* name);

  // The write path (filesystem_write.cc).
  Result<OpenReply> OpenForWrite(InodeId ino, int flags);
  // The inode's write state, made (and the object copied in unless
  // `truncate`) if there is none; counts one more handle of it.
  Result<std::shared_ptr<WriteState>> AttachWrite(InodeId ino, bool truncate);
  // One handle of the state fewer; the last one drops it.
  void DetachWrite(const std::shared_ptr<WriteState>& ws);
  // Uploads the staged file; requires ws.mu.
  Status UploadLocked(WriteState& ws);
  // Starts or advances the streamed upload of a sequential writer, and
  // gives it up (the file then goes up whole); both require ws.mu.
  void StreamLocked(WriteState& ws);
  void AbandonStreamLocked(WriteState& ws);
  Result<SliceList> ReadStaged(WriteState& ws, uint64_t offset, size_t len);
  void ReleaseWrite(const FileHandle& fh);
  // True when fh is the state's last open handle (handles_mu_ not held).
  bool LastHandle(const WriteState& ws);
  // The last handle of a file whose final upload failed closed: its staged
  // bytes get a name under staging_dir/kKeptDir (ws.mu held).
  void KeepFailedLocked(WriteState& ws);
  // The state of a file being written at `path` / of `ino`, if any.
  std::shared_ptr<WriteState> WritingAt(const std::string& path);
  std::shared_ptr<WriteState> WritingOf(InodeId ino);
  // Its attributes as the kernel should see them (staged size, mtime).
  NodeMeta StagedMeta(WriteState& ws);
  // The namespace half's hooks: a file being written at `path` was
  // unlinked (its data is dropped with its last handle, never uploaded) /
  // renamed (its upload goes to the new name); chmod/chown/utimens of a
  // file being written change the staged attributes, uploaded with it
  // (nullopt: the inode is not being written).
  void OrphanStaged(const std::string& path);
  void MoveStaged(const std::string& from, const std::string& to);
  // Rename of a file being written here, nullopt when `from` is not: no
  // upload runs meanwhile; its object is copied (RenameObject), a new file
  // not uploaded yet only moves; the staged bytes go up under the new name.
  std::optional<Status> RenameStaged(const std::string& from, const std::string& to);
  std::optional<Result<struct stat>> SetStagedAttrs(InodeId ino, const AttrChange& change);
  // Names of files created in `dir` that are not in the bucket yet.
  std::shared_ptr<const Listing> WithStagedChildren(const std::string& dir,
                                                    std::shared_ptr<const Listing> listing);

  const FsConfig config_;
  const Clock& clock_;
  ObjectStore& store_;
  ObjectReader& reader_;
  Metrics* metrics_;
  MetadataCache meta_;
  InodeTable inodes_;
  Prover prover_;
  const WriteOptions write_;
  // Before the handles: staged files (held by handles) count in it.
  DirtyBudget dirty_;

  std::atomic<uint64_t> next_handle_{1};
  std::mutex handles_mu_;
  std::unordered_map<uint64_t, FileHandle> files_;  // guarded by handles_mu_
  std::unordered_map<uint64_t, DirHandle> dirs_;    // guarded by handles_mu_
  // Objects unlinked or renamed away while open: key -> the path they had
  // and the versions open. Deleted when the last handle on the key closes.
  struct Deferred {
    std::string path;
    std::unordered_set<std::string> etags;
  };
  std::unordered_map<std::string, Deferred> deferred_;  // guarded by handles_mu_
  std::atomic<bool> any_deferred_{false};               // deferred_ is not empty
  // Inodes with a staged file (open for write, or read while staged).
  std::unordered_map<InodeId, std::shared_ptr<WriteState>> writing_;  // guarded by handles_mu_
};

// Joins a directory path and a name: ("", "a") -> "a", ("a", "b") -> "a/b".
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace dsfs
