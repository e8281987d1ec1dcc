// The local copy of a file being written through the mount: a staged file
// in the staging directory, and the dirty-byte account of all of them.
//
// Where staged files live: cache_dir/staging when there is a disk cache
// (the cache's reconcile and clean-up only look at cache_dir/tmp and
// cache_dir/blocks, never at staging/), else tmpdir=. A staged file has no
// name: it is opened O_TMPFILE (or unlinked right after it is made where
// the filesystem lacks O_TMPFILE), so a crash leaves nothing behind and
// nothing else can open it.
//
// A StagedFile is not thread-safe: its owner (the write state of one
// inode) serializes calls. DirtyBudget is.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"

namespace dsfs {

// Bytes written to staged files and not yet uploaded, over all of them,
// against max_dirty=.
class DirtyBudget {
 public:
  // The count lives in `gauge` (dsfs_write_dirty_bytes) when one is given,
  // so the metric is the account itself, not a copy of it.
  explicit DirtyBudget(uint64_t max_dirty, Gauge* gauge = nullptr)
      : max_(max_dirty), dirty_(gauge != nullptr ? *gauge : own_) {}
  void Add(uint64_t n) { dirty_.Add(static_cast<int64_t>(n)); }
  void Sub(uint64_t n) { dirty_.Sub(static_cast<int64_t>(n)); }
  uint64_t dirty() const { return static_cast<uint64_t>(std::max<int64_t>(dirty_.value(), 0)); }
  uint64_t max() const { return max_; }
  // Past max_dirty: the writer flushes its file early.
  bool over() const { return dirty() > max_; }

 private:
  const uint64_t max_;
  Gauge own_;  // when no gauge was given
  Gauge& dirty_;
};

class StagedFile {
 public:
  // A new empty staged file in `dir`; `budget` must outlive it.
  static Result<std::unique_ptr<StagedFile>> Create(const std::string& dir, DirtyBudget& budget);
  ~StagedFile();  // closes the fd; its dirty bytes leave the budget
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Writes len bytes at offset (a hole before it reads as zeros). A full
  // staging disk is NoSpace (ENOSPC) and the file's size stays as it was:
  // bytes of a failed write never reach an upload.
  Status Write(uint64_t offset, const char* data, size_t len);
  // Up to len bytes at offset (fewer at the end of the file).
  Result<size_t> Read(uint64_t offset, size_t len, char* buf) const;
  // Sets the size (cut, or extended with zeros); dirties the file.
  Status Truncate(uint64_t size);

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  // Written (or truncated) since the last MarkClean(): needs an upload.
  bool dirty() const { return dirty_; }
  // Bytes this file counts in the budget: what was written since the last
  // upload, at most its size (a rewrite of the same bytes counts again,
  // up to that cap).
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  // The staged bytes are now the bucket's version: nothing is dirty.
  void MarkClean();
  // Bytes copied in from the object being overwritten (at open): staged,
  // not dirty.
  Status Fill(uint64_t offset, const char* data, size_t len);
  // Gives the staged bytes a name, `path` (mode 0600; never replaces a
  // file): linked where the staged file is an O_TMPFILE, else copied.
  // What a failed final upload leaves for the user to recover.
  Status KeepAs(const std::string& path) const;

 private:
  StagedFile(int fd, DirtyBudget& budget) : fd_(fd), budget_(budget) {}
  Status WriteAll(uint64_t offset, const char* data, size_t len);
  void AddDirty(uint64_t n);

  const int fd_;
  DirtyBudget& budget_;
  uint64_t size_ = 0;
  bool dirty_ = false;
  uint64_t dirty_bytes_ = 0;
};

}  // namespace dsfs
