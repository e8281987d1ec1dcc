// How object metadata becomes POSIX attributes, read the way s3fs/obsfs
// write it: x-amz-meta-mode (decimal st_mode), -uid, -gid, -mtime
// (seconds), symlinks as objects whose body is the target and whose mode
// has S_IFLNK, directories as "dir/" markers (or legacy "dir" objects with
// Content-Type application/x-directory or an S_IFDIR mode).
#pragma once

#include <sys/stat.h>

#include "backends/object_store.h"
#include "common/config.h"
#include "fs/metadata_cache.h"

namespace dsfs {

// From a HEAD reply. `marker` is true when the key was "path/".
NodeMeta MetaFromHead(const ObjectInfo& info, bool marker, const FsConfig& config);
// From a listing entry (no user metadata: defaults apply).
NodeMeta MetaFromListing(const Listing::Child& child, const FsConfig& config);
// A directory known only as a prefix (implicit) or the root.
NodeMeta ImplicitDirMeta(const FsConfig& config);

// Fills st from meta (umask, nlink, blocks) for inode ino.
struct stat ToStat(uint64_t ino, const NodeMeta& meta, const FsConfig& config);

}  // namespace dsfs
