#include "fs/attr.h"

#include <charconv>
#include <cstdio>
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
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr == s.data()) return false;
  *out = v;
  return true;
}

bool ParseTimeMeta(const std::map<std::string, std::string>& meta, const char* name,
                   int64_t* sec, uint32_t* nsec) {
  auto it = meta.find(name);
  return it != meta.end() && ParseTime(it->second, sec, nsec);
}

}  // namespace

std::string FormatTime(int64_t sec, uint32_t nsec) {
  if (nsec == 0) return std::to_string(sec);
  char buf[16];
  std::snprintf(buf, sizeof(buf), ".%09u", static_cast<unsigned>(nsec % 1000000000u));
  return std::to_string(sec) + buf;
}

bool ParseTime(const std::string& text, int64_t* sec, uint32_t* nsec) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  int64_t s = 0;
  auto [ptr, ec] = std::from_chars(begin, end, s);
  if (ec != std::errc() || ptr == begin) return false;
  uint32_t ns = 0;
  if (ptr != end) {
    if (*ptr != '.') return false;
    ++ptr;
    if (ptr == end) return false;
    int digits = 0;
    for (; ptr != end; ++ptr) {
      if (*ptr < '0' || *ptr > '9') return false;
      if (digits < 9) {
        ns = ns * 10 + static_cast<uint32_t>(*ptr - '0');
        ++digits;
      }
    }
    for (; digits < 9; ++digits) ns *= 10;
  }
  *sec = s;
  *nsec = ns;
  return true;
}

NodeMeta MetaFromHead(const ObjectInfo& info, bool marker, const FsConfig& config) {
  NodeMeta m;
  m.size = info.size;
  m.etag = info.etag;
  m.mtime_sec = info.mtime_sec;
  m.uid = config.uid;
  m.gid = config.gid;

  mode_t mode = 0;
  bool has_mode = ParseDecimal(info.meta, "mode", &mode);
  const bool dir_type = info.content_type == kDirContentType;
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
  if (!config.uid_set && ParseDecimal(info.meta, "uid", &uid)) m.uid = uid;
  if (!config.gid_set && ParseDecimal(info.meta, "gid", &gid)) m.gid = gid;
  ParseTimeMeta(info.meta, "mtime", &m.mtime_sec, &m.mtime_nsec);
  ParseTimeMeta(info.meta, "atime", &m.atime_sec, &m.atime_nsec);
  ParseTimeMeta(info.meta, "ctime", &m.ctime_sec, &m.ctime_nsec);
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
  st.st_mtim.tv_nsec = meta.mtime_nsec;
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  if (meta.atime_sec || meta.atime_nsec) {
    st.st_atim.tv_sec = meta.atime_sec;
    st.st_atim.tv_nsec = meta.atime_nsec;
  }
  if (meta.ctime_sec || meta.ctime_nsec) {
    st.st_ctim.tv_sec = meta.ctime_sec;
    st.st_ctim.tv_nsec = meta.ctime_nsec;
  }
  return st;
}

void EncodeAttrs(const NodeMeta& meta, std::map<std::string, std::string>* out) {
  (*out)["mode"] = std::to_string(meta.mode);
  (*out)["uid"] = std::to_string(meta.uid);
  (*out)["gid"] = std::to_string(meta.gid);
  (*out)["mtime"] = FormatTime(meta.mtime_sec, meta.mtime_nsec);
  const bool has_atime = meta.atime_sec || meta.atime_nsec;
  const bool has_ctime = meta.ctime_sec || meta.ctime_nsec;
  (*out)["atime"] = has_atime ? FormatTime(meta.atime_sec, meta.atime_nsec)
                              : (*out)["mtime"];
  (*out)["ctime"] = has_ctime ? FormatTime(meta.ctime_sec, meta.ctime_nsec)
                              : (*out)["mtime"];
}

ObjectAttrs AttrsForFile(const NodeMeta& meta) {
  ObjectAttrs a;
  NodeMeta m = meta;
  m.mode = S_IFREG | (meta.mode & 07777);
  EncodeAttrs(m, &a.meta);
  return a;
}

ObjectAttrs AttrsForDir(const NodeMeta& meta) {
  ObjectAttrs a;
  NodeMeta m = meta;
  m.mode = S_IFDIR | (meta.mode & 07777);
  EncodeAttrs(m, &a.meta);
  a.content_type = kDirContentType;
  return a;
}

ObjectAttrs AttrsForSymlink(const NodeMeta& meta) {
  ObjectAttrs a;
  NodeMeta m = meta;
  m.mode = S_IFLNK | 0777;
  EncodeAttrs(m, &a.meta);
  return a;
}

}  // namespace dsfs
