#include "fs/attr.h"

#include <charconv>
#include <cstring>

namespace dsfs {
namespace {

constexpr mode_t kDefaultFilePerm = 0644;
constexpr mode_t kDefaultDirPerm = 0755;

template <typename T>
bool ParseDecimal(const std::map<std::string, std::string>& meta, const char* name, T* out) {
  auto it = meta.find(name);
  if (it == meta.end()) return false;
  const std::string& s = it->second;
  // mtime may carry a fraction ("1700000000.5"): the integer part counts.
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr != s.data();
}

}  // namespace

NodeMeta MetaFromHead(const ObjectInfo& info, bool marker, const FsConfig& config) {
  NodeMeta m;
  m.size = info.size;
  m.etag = info.etag;
  m.mtime_sec = info.mtime_sec;
  m.uid = config.uid;
  m.gid = config.gid;

  mode_t mode = 0;
  bool has_mode = ParseDecimal(info.meta, "mode", &mode);
  const bool dir_type = info.content_type == "application/x-directory";
  if (marker || dir_type || (has_mode && S_ISDIR(mode))) {
    m.kind = NodeKind::kDir;
    m.size = 0;
    m.mode = S_IFDIR | (has_mode ? (mode & 07777) : kDefaultDirPerm);
  } else if (has_mode && S_ISLNK(mode)) {
    m.kind = NodeKind::kSymlink;
    m.mode = S_IFLNK | 0777;
  } else {
    m.kind = NodeKind::kFile;
    m.mode = S_IFREG | (has_mode ? (mode & 07777) : kDefaultFilePerm);
  }
  uid_t uid;
  gid_t gid;
  int64_t mtime;
  if (!config.uid_set && ParseDecimal(info.meta, "uid", &uid)) m.uid = uid;
  if (!config.gid_set && ParseDecimal(info.meta, "gid", &gid)) m.gid = gid;
  if (ParseDecimal(info.meta, "mtime", &mtime)) m.mtime_sec = mtime;
  return m;
}

NodeMeta MetaFromListing(const Listing::Child& child, const FsConfig& config) {
  if (child.kind == NodeKind::kDir) return ImplicitDirMeta(config);
  NodeMeta m;
  m.kind = NodeKind::kFile;
  m.size = child.size;
  m.etag = child.etag;
  m.mtime_sec = child.mtime_sec;
  m.mode = S_IFREG | kDefaultFilePerm;
  m.uid = config.uid;
  m.gid = config.gid;
  return m;
}

NodeMeta ImplicitDirMeta(const FsConfig& config) {
  NodeMeta m;
  m.kind = NodeKind::kDir;
  m.mode = S_IFDIR | kDefaultDirPerm;
  m.mtime_sec = config.implicit_dir_mtime_sec;
  m.uid = config.uid;
  m.gid = config.gid;
  return m;
}

struct stat ToStat(uint64_t ino, const NodeMeta& meta, const FsConfig& config) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_ino = ino;
  st.st_mode = meta.mode;
  if (config.umask_set) st.st_mode &= ~(config.umask & 0777);
  st.st_nlink = meta.kind == NodeKind::kDir ? 2 : 1;
  st.st_uid = meta.uid;
  st.st_gid = meta.gid;
  st.st_size = static_cast<off_t>(meta.size);
  st.st_blksize = 1 << 20;  // cp and friends size their buffers by this
  st.st_blocks = static_cast<blkcnt_t>((meta.size + 511) / 512);
  st.st_mtim.tv_sec = meta.mtime_sec;
  st.st_ctim.tv_sec = meta.mtime_sec;
  st.st_atim.tv_sec = meta.mtime_sec;
  return st;
}

}  // namespace dsfs
