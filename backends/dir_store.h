// DirStore: an ObjectStore over a local directory, normally the SFS/NFS
// share that mirrors the bucket and prefix: key "a/b.bin" is the file
// ROOT/a/b.bin. Read-only (the interface has no writes yet).
//
// Identity: the ETag of a file is "sfs-<size>-<mtime_ns>-<inode>". S3/OBS
// ETags are hex digests ("d41d8cd9...") or "hex-N" for multipart uploads and
// never start with "sfs-", so a block cache keyed by (key, ETag) can never
// confuse share bytes with an OBS version. A file rewritten in place (new
// mtime or size) or replaced by rename (new inode) gets a new ETag.
//
// Safety: nothing ever resolves outside ROOT.
//  - Keys are checked before any syscall: no empty key, no leading '/', no
//    NUL, no empty, "." or ".." component, no trailing '/', at most 1024
//    bytes, components at most 255 bytes. Refused keys log a warning and
//    fail with InvalidArgument.
//  - Symbolic links are never followed, even ones that point inside ROOT:
//    paths are resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
//    when the kernel has it, else component by component with
//    openat(O_NOFOLLOW). A key that meets a symlink logs a warning and is
//    NotFound. (A bucket has no symlinks; a mirror of one needs none.)
//  - Only regular files are objects. Anything else (fifo, socket, device)
//    is never opened: it is checked with fstatat(AT_SYMLINK_NOFOLLOW) first,
//    opened O_NONBLOCK, and the opened fd is checked again (same inode,
//    regular) so a swap between the two steps is caught.
//  - List skips symlinks, non-regular files and names that cannot be keys.
//  - Head("a/b/") answers for the directory a/b as a marker object would,
//    and a listing of prefix "a/b/" starts with that marker: so an empty
//    directory of the share is a directory through the mount.
//
// List follows S3 ListObjectsV2: keys in byte order, `delimiter` groups keys
// into common prefixes (any delimiter string; "/" never descends into
// subdirectories), at most max_keys (capped at 1000) objects plus common
// prefixes per page. A subdirectory counts as a common prefix even when it
// is empty (as a "dir/" marker object would in S3). The continuation token
// is the last key or common prefix returned, and means "start after": any
// such string is a valid token, which lets FallbackStore continue a listing
// that began on the primary. Directories themselves are never objects.
//
// Get with if_match: an "sfs-" ETag must equal the file's current ETag
// (else PreconditionFailed); any other ETag can never match a share file and
// also fails with PreconditionFailed. FallbackStore is what decides whether
// an OBS ETag may be served from the share (see fallback_store.h); it
// passes the share's own ETag down. The file is stat'ed again after the
// read: if it changed during the read the Get fails with PreconditionFailed,
// never returning mixed bytes.
//
// Thread-safe: the only state is the root fd, fixed at Open.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backends/object_store.h"

namespace spdlog {
class logger;
}

namespace dsfs {

// Prefix of every DirStore ETag; no S3 ETag has it.
inline constexpr std::string_view kDirEtagPrefix = "sfs-";
// True for an ETag made by DirStore.
bool IsDirStoreEtag(std::string_view etag);

struct DirStoreOptions {
  // Use openat2(RESOLVE_BENEATH) when the kernel supports it (checked once
  // at Open). false forces the openat(O_NOFOLLOW) walk (tests cover both).
  bool use_openat2 = true;
  // Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

class DirStore : public ObjectStore {
 public:
  // root must be an existing directory (it may itself be a symlink: the
  // administrator chose it). Fails with NotFound / InvalidArgument /
  // AccessDenied / IoError.
  static Result<std::unique_ptr<DirStore>> Open(const std::string& root,
                                                DirStoreOptions options = {});
  ~DirStore() override;
  DirStore(const DirStore&) = delete;
  DirStore& operator=(const DirStore&) = delete;

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  std::string Describe() const override { return "dir:" + root_; }

  // Whether paths are resolved with openat2 (else the openat walk).
  bool uses_openat2() const { return use_openat2_; }

  // Checks a key's syntax (see above); OK or InvalidArgument.
  static Status ValidateKey(std::string_view key);
  // "sfs-<size>-<mtime_ns>-<inode>".
  static std::string MakeEtag(uint64_t size, int64_t mtime_ns, uint64_t inode);

 private:
  DirStore(std::string root, int root_fd, bool use_openat2, std::shared_ptr<spdlog::logger> logger);

  struct OpenFile;
  // Opens the directory `dir_path` ("" = root, else "a/b", no trailing
  // '/') beneath the root without following symlinks. open_flags:
  // O_PATH for lookups, O_RDONLY to read entries. Returns an fd (caller
  // closes) or NotFound / AccessDenied / IoError.
  Result<int> OpenDir(std::string_view dir_path, int open_flags) const;
  // Validates `key` and opens it as a regular file: fd + stat.
  Result<OpenFile> OpenRegular(const std::string& key) const;
  // Head of "a/b/": the directory a/b as a marker object (size 0,
  // application/x-directory), NotFound when there is no such directory.
  Result<ObjectInfo> DirectoryMarker(const std::string& key) const;
  void Warn(const std::string& message) const;

  std::string root_;
  int root_fd_ = -1;
  bool use_openat2_ = false;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace dsfs
