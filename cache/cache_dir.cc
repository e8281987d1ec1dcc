#include "cache/cache_dir.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/posix.h"

namespace dsfs {
namespace {

constexpr char kFormatPrefix[] = "dsfs-cache-format ";

std::string ParentOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + dir + ": " + ErrnoText(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError("fsync " + dir + ": " + ErrnoText(err));
  return Status::Ok();
}

// Lists an open directory (takes ownership of fd).
Result<std::vector<CacheDirEntry>> ListFd(int fd, const std::string& path) {
  Fd owned(fd);
  DSFS_ASSIGN_OR_RETURN(std::vector<DirChild> children, ReadDirChildren(fd, path));
  std::vector<CacheDirEntry> out;
  out.reserve(children.size());
  for (DirChild& c : children) out.push_back({std::move(c.name), c.is_dir()});
  return out;
}

// Removes everything in the open directory fd (does not close it).
void EmptyDirAt(int fd) {
  int dup = ::dup(fd);
  if (dup < 0) return;
  auto entries = ListFd(dup, "");
  if (!entries.ok()) return;
  for (const auto& e : *entries) {
    if (e.is_dir) {
      int sub = ::openat(fd, e.name.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (sub >= 0) {
        EmptyDirAt(sub);
        ::close(sub);
      }
      ::unlinkat(fd, e.name.c_str(), AT_REMOVEDIR);
    } else {
      ::unlinkat(fd, e.name.c_str(), 0);  // a symlink goes, its target stays
    }
  }
}

// Creates cache_dir if needed and checks it is ours and writable.
Status CheckCacheDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::IoError("cache_dir " + dir + ": " + ErrnoText(errno));
    // Parents are ordinary directories; only cache_dir itself is private.
    std::string parent = dir;
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    parent = parent.substr(
        0, parent.find_last_of('/') == std::string::npos ? 0 : parent.find_last_of('/'));
    std::vector<std::string> missing;
    for (std::string p = parent; !p.empty() && ::access(p.c_str(), F_OK) != 0;
         p = p.substr(0, p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/'))) {
      missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::IoError("cannot create " + *it + " for cache_dir " + dir + ": " +
                               ErrnoText(errno));
      }
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IoError("cannot create cache_dir " + dir + ": " + ErrnoText(errno));
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return Status::IoError("cache_dir " + dir + ": " + ErrnoText(errno));
    }
  }
  if (!S_ISDIR(st.st_mode))
    return Status::InvalidArgument("cache_dir " + dir + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Status::AccessDenied("cache_dir " + dir + " is owned by uid " +
                                std::to_string(st.st_uid) + ", but dsfs runs as uid " +
                                std::to_string(::geteuid()) +
                                "; use a cache_dir owned by this user");
  }
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
    return Status::ReadOnly("cache_dir " + dir + " is on a read-only filesystem");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::AccessDenied("cache_dir " + dir + " is not writable: " + ErrnoText(errno));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return Status::IoError("cannot chmod 0700 cache_dir " + dir + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

// Reads FORMAT. Returns true for a new cache (no FORMAT, nothing else there).
Result<bool> CheckFormat(const std::string& dir) {
  std::string path = dir + "/FORMAT";
  std::ifstream in(path);
  if (!in) {
    if (::access(path.c_str(), F_OK) == 0) {
      return Status::IoError("cannot read " + path + ": " + ErrnoText(errno));
    }
    DSFS_ASSIGN_OR_RETURN(auto entries, ListDirNoFollow(dir));
    for (const auto& e : entries) {
      if (e.name == "LOCK" || e.name == "lost+found" || e.name == "FORMAT.tmp") continue;
      return Status::InvalidArgument("cache_dir " + dir +
                                     " is not empty and has no FORMAT file, so it is not a dsfs "
                                     "cache; choose an empty or new directory");
    }
    return true;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  int version = 0;
  const char* begin = text.data() + std::strlen(kFormatPrefix);
  const char* end = text.data() + text.size();
  if (!text.starts_with(kFormatPrefix) || std::from_chars(begin, end, version).ec != std::errc()) {
    return Status::InvalidArgument("cache_dir " + dir + " has an unreadable FORMAT file ('" +
                                   text.substr(0, 40) +
                                   "'); remove it or choose another cache_dir");
  }
  if (version != kCacheDirFormatVersion) {
    return Status::InvalidArgument("cache_dir " + dir + " has format version " +
                                   std::to_string(version) + ", this dsfs understands " +
                                   std::to_string(kCacheDirFormatVersion) +
                                   "; remove it or choose another cache_dir");
  }
  return false;
}

Status MakeRealDir(const std::string& path, bool* replaced_symlink) {
  if (::mkdir(path.c_str(), 0700) == 0) return Status::Ok();
  if (errno != EEXIST) return Status::IoError("mkdir " + path + ": " + ErrnoText(errno));
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    return Status::IoError("lstat " + path + ": " + ErrnoText(errno));
  if (S_ISLNK(st.st_mode)) {
    spdlog::warn("disk cache: {} is a symlink; removing the link (never following it)", path);
    if (::unlink(path.c_str()) != 0 || ::mkdir(path.c_str(), 0700) != 0) {
      return Status::IoError("replace symlink " + path + ": " + ErrnoText(errno));
    }
    *replaced_symlink = true;
  }
  return Status::Ok();
}

bool IsHexPair(std::string_view s) {
  if (s.size() != 2) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Pid recorded in a LOCK file, or 0.
long ReadLockPid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  long pid = 0;
  std::from_chars(buf, buf + n, pid);
  return pid;
}

}  // namespace

Result<std::vector<CacheDirEntry>> ListDirNoFollow(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    if (errno == ENOTDIR || errno == ELOOP) {
      return Status::NotDirectory(path + " is not a directory (or is a symlink)");
    }
    return Status::IoError("open " + path + ": " + ErrnoText(errno));
  }
  return ListFd(fd, path);
}

void RemoveTreeNoFollow(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ::unlink(path.c_str());  // a file or a symlink: the link itself
    return;
  }
  EmptyDirAt(fd);
  ::close(fd);
  ::rmdir(path.c_str());
}

Status WriteFileDurably(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // O_EXCL below: never write through a planted link
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("create " + tmp + ": " + ErrnoText(errno));
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  int err = errno;
  ok = (::fsync(fd) == 0) && ok;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    return Status::IoError("write " + path + ": " + ErrnoText(err));
  }
  return FsyncDir(ParentOf(path));
}

Result<CacheDir> CacheDir::Open(const std::string& dir) {
  DSFS_RETURN_IF_ERROR(CheckCacheDir(dir));
  DSFS_ASSIGN_OR_RETURN(bool fresh, CheckFormat(dir));
  std::string lock_path = dir + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("create " + lock_path + ": " + ErrnoText(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    long pid = err == EWOULDBLOCK ? ReadLockPid(fd) : 0;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Unavailable("cache_dir " + dir + " is in use by another dsfs" +
                                 (pid > 0 ? " (pid " + std::to_string(pid) + ")" : "") +
                                 "; each mount needs its own cache_dir");
    }
    return Status::IoError("lock " + lock_path + ": " + ErrnoText(err));
  }
  // The pid is only for the message above: failing to record it (a full
  // disk) is no reason not to mount.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    spdlog::debug("disk cache: cannot record the pid in {}: {}", lock_path, ErrnoText(errno));
  }
  return CacheDir(dir, fd, fresh);
}

CacheDir::CacheDir(CacheDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(other.lock_fd_), fresh_(other.fresh_) {
  other.lock_fd_ = -1;
}

CacheDir::~CacheDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<uint64_t> CacheDir::FreeBytes() const {
  struct statvfs vfs;
  if (::statvfs(dir_.c_str(), &vfs) != 0) {
    return Status::IoError("statvfs " + dir_ + ": " + ErrnoText(errno));
  }
  return static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
}

Status CacheDir::PrepareLayout(bool* suspect) {
  *suspect = false;
  if (fresh_) {
    DSFS_RETURN_IF_ERROR(WriteFileDurably(
        dir_ + "/FORMAT", kFormatPrefix + std::to_string(kCacheDirFormatVersion) + "\n"));
  }
  DSFS_RETURN_IF_ERROR(MakeRealDir(tmp_dir(), suspect));
  DSFS_RETURN_IF_ERROR(MakeRealDir(blocks_dir(), suspect));
  // RocksDB would open an index/ symlink's target: remove the link (the
  // index is then new and is rebuilt from the files).
  struct stat st;
  if (::lstat(index_dir().c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    spdlog::warn("disk cache: {} is a symlink; removing the link (never following it)",
                 index_dir());
    if (::unlink(index_dir().c_str()) != 0) {
      return Status::IoError("unlink " + index_dir() + ": " + ErrnoText(errno));
    }
    *suspect = true;
  }
  // blocks/XX must not be symlinks either (a Put renames into them). 256
  // lstat()s of directories, not a scan of the block files.
  auto subs = ListDirNoFollow(blocks_dir());
  if (!subs.ok()) return Status::Ok();  // blocks/ is not a directory: reconcile fails on it
  for (const auto& e : *subs) {
    if (e.is_dir || !IsHexPair(e.name)) continue;
    std::string p = blocks_dir() + "/" + e.name;
    spdlog::warn("disk cache: {} is not a directory; removing it (never following it)", p);
    if (::unlink(p.c_str()) != 0) return Status::IoError("unlink " + p + ": " + ErrnoText(errno));
    *suspect = true;
  }
  return Status::Ok();
}

Result<bool> CacheDir::TakeCleanMarker() {
  std::string path = dir_ + "/CLEAN";
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return Status::IoError("lstat " + path + ": " + ErrnoText(errno));
  }
  if (::unlink(path.c_str()) != 0)
    return Status::IoError("unlink " + path + ": " + ErrnoText(errno));
  DSFS_RETURN_IF_ERROR(FsyncDir(dir_));
  return S_ISREG(st.st_mode);
}

Status CacheDir::MarkClean() { return WriteFileDurably(dir_ + "/CLEAN", ""); }

}  // namespace dsfs
