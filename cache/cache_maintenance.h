// Offline maintenance of a disk cache directory (dsfsctl cache ...).
//
// All of it works on a cache_dir no mount is using, except Usage, which
// only reads block headers and so also works beside a running mount.
// Everything else first takes the directory's LOCK (CacheDir::Open, the one
// DiskBlockCache holds): Unavailable "in use" while a mount holds it, so
// fsck --repair, gc and clear never race a mount. A directory without a
// FORMAT file is NotDsfsCache (InvalidArgument) and is not touched: not
// created, not locked, not chmod-ed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dsfs {

// "D is not a dsfs cache directory" unless D is a directory holding FORMAT.
Status CheckIsCacheDir(const std::string& dir);

struct CacheUsage {
  uint64_t blocks = 0;   // block files with a valid header
  uint64_t bytes = 0;    // their sizes (header + data), what cache_size= caps
  uint64_t objects = 0;  // distinct object versions (key, ETag, size)
  uint64_t unreadable = 0;  // files under blocks/ whose header does not decode
  bool clean = false;    // CLEAN marker: the last mount closed cleanly
};
Result<CacheUsage> CacheUsageOf(const std::string& dir);

enum class CacheProblemKind {
  kNotRegular,     // symlink, FIFO, directory... at a block's path
  kBadName,        // not blocks/XX/<32 hex>.blk
  kBadHeader,      // magic, header checksum, lengths
  kOldVersion,     // a block format this dsfs no longer serves
  kWrongSize,      // file size differs from the header's, or from the index's
  kBadChecksum,    // data checksum mismatch
  kMisnamed,       // header names another block than the file name
  kNoEntry,        // valid block, no index entry
  kNoBlock,        // index entry, no (valid) block file
  kTempFile,       // left in tmp/ by a mount that stopped mid-write
};
const char* CacheProblemName(CacheProblemKind kind);

struct CacheProblem {
  CacheProblemKind kind;
  std::string path;    // block file (or where it should be)
  std::string detail;  // what the check said
  bool corruption() const {
    return kind != CacheProblemKind::kNoEntry && kind != CacheProblemKind::kTempFile;
  }
};

struct FsckReport {
  uint64_t blocks_checked = 0;
  uint64_t entries_checked = 0;
  std::vector<CacheProblem> problems;
  bool repaired = false;  // repair ran: problems are fixed
  bool corrupt() const;
};
// Checks every block file (type, name, header, size, checksum) and every
// index entry, and lists tmp/. repair: deletes bad files and temp files, adds valid unindexed blocks as
// least recently used, drops stale entries, fixes the used-bytes meta.
Result<FsckReport> FsckCache(const std::string& dir, bool repair);

struct GcReport {
  uint64_t evicted_blocks = 0;
  uint64_t evicted_bytes = 0;
  uint64_t remaining_bytes = 0;
};
// Evicts indexed blocks, least recently used first (the index's recency
// seq), until the blocks take at most target_bytes.
Result<GcReport> GcCache(const std::string& dir, uint64_t target_bytes);

// Removes every block, temp file and the index (and index.broken, CLEAN);
// leaves FORMAT and LOCK: a valid, empty cache_dir the next mount uses.
Status ClearCache(const std::string& dir);

}  // namespace dsfs
