// How object metadata becomes POSIX attributes and back, in the on-bucket
// format s3fs/obsfs use (checked against s3fs 1.90 on the same bucket,
// tests/mount/test_s3fs_interop.py):
// - x-amz-meta-mode: the decimal st_mode, type bits included (s3fs's
//   mkdir writes a directory's permission bits alone: read both);
// - x-amz-meta-uid / -gid: decimal;
// - x-amz-meta-mtime / -ctime / -atime: "sec", or "sec.nnnnnnnnn" when the
//   nanoseconds are not zero (s3fs writes both; a shorter fraction is read
//   as the decimal fraction it is);
// - directories: a zero-byte "dir/" marker with Content-Type
//   application/x-directory; read also: a legacy "dir" object with that
//   Content-Type or an S_IFDIR mode, and implicit directories (keys under
//   "dir/" and no marker);
// - symlinks: an object whose body is the target, mode S_IFLNK|0777.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <string>

#include "backends/object_store.h"
#include "common/config.h"
#include "fs/metadata_cache.h"

namespace dsfs {

inline constexpr const char* kDirContentType = "application/x-directory";

// From a HEAD reply. `marker` is true when the key was "path/".
NodeMeta MetaFromHead(const ObjectInfo& info, bool marker, const FsConfig& config);
// From a listing entry (no user metadata: defaults apply).
NodeMeta MetaFromListing(const Listing::Child& child, const FsConfig& config);
// A directory known only as a prefix (implicit) or the root.
NodeMeta ImplicitDirMeta(const FsConfig& config);

// Fills st from meta (umask, nlink, blocks) for inode ino.
struct stat ToStat(uint64_t ino, const NodeMeta& meta, const FsConfig& config);

// "sec" or "sec.nnnnnnnnn" (s3fs's form) and back. ParseTime takes a
// fraction of 1 to 9 digits (more are cut, not rounded); false when `text`
// is not such a number.
std::string FormatTime(int64_t sec, uint32_t nsec);
bool ParseTime(const std::string& text, int64_t* sec, uint32_t* nsec);

// Writes meta's mode, uid, gid and times into `out` (user metadata, names
// without x-amz-meta-), replacing those and keeping every other entry (a
// chmod keeps what other tools stored on the object).
void EncodeAttrs(const NodeMeta& meta, std::map<std::string, std::string>* out);
// What an upload of a file stores beside its bytes (Content-Type empty:
// application/octet-stream; s3fs guesses one from /etc/mime.types, which
// no reader relies on).
ObjectAttrs AttrsForFile(const NodeMeta& meta);
// A "dir/" marker's attributes: Content-Type application/x-directory.
ObjectAttrs AttrsForDir(const NodeMeta& meta);
// A symlink object's attributes: mode forced to S_IFLNK|0777.
ObjectAttrs AttrsForSymlink(const NodeMeta& meta);

}  // namespace dsfs
