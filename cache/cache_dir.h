// CacheDir: the directory of a disk block cache, before any block is read.
//
// Layout of cache_dir (0700, files 0600):
//   FORMAT               "dsfs-cache-format 1\n"; another number is refused
//   LOCK                 flock()ed while open: one dsfs per cache_dir; holds
//                        the owner's pid, for the "in use" message
//   CLEAN                exists only between a clean close and the next Open
//   index/               RocksDB (see cache_index.h)
//   index.broken/        the last index that was corrupt (kept for a look)
//   tmp/                 blocks being written, renamed when complete
//   blocks/XX/<id>.blk   one file per block (see disk_block_cache.h)
//
// Nothing here follows a symlink inside cache_dir: the directories are
// checked with lstat, listed through O_NOFOLLOW | O_DIRECTORY descriptors
// and removed with unlinkat, so a link planted under blocks/ or tmp/ is
// removed as a link and what it points at is never read or touched.
// (cache_dir itself may be a symlink: that is the operator's choice.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dsfs {

inline constexpr int kCacheDirFormatVersion = 1;

struct CacheDirEntry {
  std::string name;
  bool is_dir = false;  // a real directory: never true for a symlink
};

// Entries of directory `path` except . and .., without following a
// symlink at path itself. NotFound if it does not exist; NotDirectory if
// it is a symlink or not a directory; IoError if it cannot be read.
Result<std::vector<CacheDirEntry>> ListDirNoFollow(const std::string& path);

// Removes path: a file, a symlink (the link, never its target) or a whole
// directory tree (each level opened O_NOFOLLOW). Best effort.
void RemoveTreeNoFollow(const std::string& path);

// Writes a small file durably: temp file, fsync, rename, fsync of the
// directory, so it survives a power loss once this returns.
Status WriteFileDurably(const std::string& path, const std::string& content);

class CacheDir {
 public:
  // Creates dir if needed (parents 0755, dir 0700) and checks it: ours,
  // writable, not on a read-only filesystem, empty or a dsfs cache of our
  // FORMAT version. Then takes LOCK: Unavailable "cache_dir D is in use by
  // another dsfs (pid N)" if another process holds it. Writes nothing else.
  static Result<CacheDir> Open(const std::string& dir);
  ~CacheDir();
  CacheDir(CacheDir&& other) noexcept;
  CacheDir& operator=(CacheDir&& other) = delete;
  CacheDir(const CacheDir&) = delete;
  CacheDir& operator=(const CacheDir&) = delete;

  const std::string& path() const { return dir_; }
  std::string tmp_dir() const { return dir_ + "/tmp"; }
  std::string blocks_dir() const { return dir_ + "/blocks"; }
  std::string index_dir() const { return dir_ + "/index"; }
  // No FORMAT file was there: a new cache.
  bool fresh() const { return fresh_; }

  // Bytes an unprivileged writer can still allocate on dir's filesystem.
  Result<uint64_t> FreeBytes() const;
  // Writes FORMAT (fresh caches) and makes tmp/ and blocks/ directories.
  // A symlink at blocks/, tmp/, index/ or blocks/XX is never followed: it is
  // removed (and replaced by a directory; index/ is then new) and *suspect
  // is set (the caller reconciles). So is a file at blocks/XX. A
  // non-directory that is not a symlink at tmp/ or blocks/ is left for the
  // reconcile, which fails on it and turns the disk tier off.
  Status PrepareLayout(bool* suspect);
  // Removes the clean-shutdown marker, durably (so a crash before the next
  // clean close can never look clean). Returns whether it was there.
  Result<bool> TakeCleanMarker();
  // Writes the clean-shutdown marker, durably.
  Status MarkClean();

 private:
  CacheDir(std::string dir, int lock_fd, bool fresh)
      : dir_(std::move(dir)), lock_fd_(lock_fd), fresh_(fresh) {}

  std::string dir_;
  int lock_fd_ = -1;  // flock()ed LOCK
  bool fresh_ = false;
};

}  // namespace dsfs
