#include "backends/dir_store.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "common/posix.h"

namespace dsfs {
namespace {

constexpr size_t kMaxKeyLength = 1024;  // S3's limit
constexpr size_t kMaxComponentLength = 255;
constexpr int kMaxListKeys = 1000;  // S3 caps max-keys at 1000
// openat2 with RESOLVE_BENEATH returns EAGAIN when a rename races the
// lookup; a few retries, then give up with a Transient error.
constexpr int kOpenat2Attempts = 8;

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

ObjectInfo InfoFromStat(const std::string& key, const struct stat& st) {
  ObjectInfo info;
  info.key = key;
  info.size = static_cast<uint64_t>(st.st_size);
  info.etag = DirStore::MakeEtag(info.size, MtimeNs(st), static_cast<uint64_t>(st.st_ino));
  info.mtime_sec = static_cast<int64_t>(st.st_mtim.tv_sec);
  info.source = DataSource::kShare;
  return info;
}

long Openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.resolve = resolve;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

constexpr uint64_t kResolveFlags = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// One entry of a share directory that may be part of a key.
struct ShareEntry {
  std::string name;
  bool is_dir = false;
  // The entry's position in key order: a directory sorts as "name/".
  std::string sort_name;
};

// Reads the entries of an O_RDONLY directory fd (not consumed), keeping
// regular files and directories, sorted in key byte order.
Result<std::vector<ShareEntry>> ReadEntries(int dirfd, const std::string& where) {
  DSFS_ASSIGN_OR_RETURN(std::vector<DirChild> children, ReadDirChildren(dirfd, where));
  std::vector<ShareEntry> entries;
  for (DirChild& c : children) {
    // Symlinks, fifos, sockets, devices: never objects.
    if (c.type == DirChild::Type::kOther) continue;
    ShareEntry e;
    e.is_dir = c.is_dir();
    e.sort_name = e.is_dir ? c.name + "/" : c.name;
    e.name = std::move(c.name);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const ShareEntry& a, const ShareEntry& b) { return a.sort_name < b.sort_name; });
  return entries;
}

// The state of one List call: items arrive in key order.
class ListBuilder {
 public:
  ListBuilder(const ListRequest& request, int max_keys) : req_(request), max_keys_(max_keys) {}

  const ListRequest& request() const { return req_; }
  bool done() const { return done_; }
  ListPage TakePage() { return std::move(page_); }

  // The common prefix `key` belongs to (if the delimiter occurs after the
  // prefix), or nullopt for a plain key.
  std::optional<std::string> CommonPrefixOf(const std::string& key) const {
    if (req_.delimiter.empty()) return std::nullopt;
    size_t pos = key.find(req_.delimiter, req_.prefix.size());
    if (pos == std::string::npos) return std::nullopt;
    return key.substr(0, pos + req_.delimiter.size());
  }

  // Whether `item` (a key or common prefix) is new for this page. Sets
  // done() (and the continuation token) when the page is already full.
  bool Admit(const std::string& item) {
    if (done_) return false;
    if (count_ > 0 && item == last_item_) return false;  // same common prefix again
    if (!req_.continuation.empty() && item <= req_.continuation) return false;
    if (count_ == max_keys_) {
      page_.next_continuation = last_item_;
      done_ = true;
      return false;
    }
    return true;
  }

  void AddPrefix(std::string prefix) {
    last_item_ = prefix;
    ++count_;
    page_.common_prefixes.push_back(std::move(prefix));
  }
  void AddObject(ObjectInfo info) {
    last_item_ = info.key;
    ++count_;
    page_.objects.push_back(std::move(info));
  }

 private:
  const ListRequest& req_;
  const int max_keys_;
  ListPage page_;
  int count_ = 0;
  std::string last_item_;
  bool done_ = false;
};

// Walks the directory `dirfd` whose key prefix is `dir_key` ("" or ending in
// '/'), adding every relevant key in order.
Status Walk(int dirfd, const std::string& dir_key, ListBuilder& b) {
  const std::string& prefix = b.request().prefix;
  const std::string& token = b.request().continuation;
  DSFS_ASSIGN_OR_RETURN(std::vector<ShareEntry> entries,
                        ReadEntries(dirfd, dir_key.empty() ? "." : dir_key));
  for (const ShareEntry& e : entries) {
    if (b.done()) break;
    std::string full = dir_key + e.sort_name;
    if (full.size() > kMaxKeyLength) continue;  // cannot be (or hold) a key
    if (e.is_dir) {
      bool under = full.starts_with(prefix);
      if (!under && !prefix.starts_with(full)) continue;
      // Every key under `full` sorts before the token: skip the subtree.
      if (!token.empty() && token > full && !token.starts_with(full)) continue;
      if (under) {
        if (auto cp = b.CommonPrefixOf(full)) {
          if (b.Admit(*cp)) b.AddPrefix(std::move(*cp));
          continue;
        }
      }
      Fd sub(::openat(dirfd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) continue;  // vanished or swapped for a symlink: skip
      DSFS_RETURN_IF_ERROR(Walk(sub.get(), full, b));
      continue;
    }
    if (!full.starts_with(prefix)) continue;
    if (auto cp = b.CommonPrefixOf(full)) {
      if (b.Admit(*cp)) b.AddPrefix(std::move(*cp));
      continue;
    }
    if (!b.Admit(full)) continue;
    struct stat st;
    if (::fstatat(dirfd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) continue;
    b.AddObject(InfoFromStat(full, st));
  }
  return Status::Ok();
}

}  // namespace

bool IsDirStoreEtag(std::string_view etag) { return etag.starts_with(kDirEtagPrefix); }

struct DirStore::OpenFile {
  Fd fd;
  struct stat st;
};

std::string DirStore::MakeEtag(uint64_t size, int64_t mtime_ns, uint64_t inode) {
  return std::string(kDirEtagPrefix) + std::to_string(size) + "-" + std::to_string(mtime_ns) + "-" +
         std::to_string(inode);
}

Status DirStore::ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > kMaxKeyLength) return Status::InvalidArgument("key longer than 1024 bytes");
  if (key.front() == '/') return Status::InvalidArgument("absolute key");
  if (key.find('\0') != std::string_view::npos) return Status::InvalidArgument("NUL in key");
  size_t start = 0;
  for (;;) {
    size_t end = key.find('/', start);
    std::string_view comp =
        key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (comp.empty()) return Status::InvalidArgument("empty path component");
    if (comp == "." || comp == "..") return Status::InvalidArgument("'.' or '..' component");
    if (comp.size() > kMaxComponentLength) {
      return Status::InvalidArgument("path component longer than 255 bytes");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return Status::Ok();
}

Result<std::unique_ptr<DirStore>> DirStore::Open(const std::string& root, DirStoreOptions options) {
  if (root.empty()) return Status::InvalidArgument("fallback directory is empty");
  Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    int err = errno;
    std::string what = "fallback directory '" + root + "': " + ErrnoText(err);
    if (err == ENOENT) return Status::NotFound(what);
    if (err == EACCES || err == EPERM) return Status::AccessDenied(what);
    if (err == ENOTDIR) return Status::InvalidArgument(what);
    return Status::IoError(what);
  }
  bool use_openat2 = false;
  if (options.use_openat2) {
    // Old kernels (< 5.6) say ENOSYS; seccomp filters may say EPERM.
    long probe = Openat2(fd.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC, kResolveFlags);
    if (probe >= 0) {
      ::close(static_cast<int>(probe));
      use_openat2 = true;
    }
  }
  return std::unique_ptr<DirStore>(
      new DirStore(root, fd.release(), use_openat2, std::move(options.logger)));
}

DirStore::DirStore(std::string root, int root_fd, bool use_openat2,
                   std::shared_ptr<spdlog::logger> logger)
    : root_(std::move(root)),
      root_fd_(root_fd),
      use_openat2_(use_openat2),
      logger_(std::move(logger)) {}

DirStore::~DirStore() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

void DirStore::Warn(const std::string& message) const {
  if (logger_) {
    logger_->warn("dir store {}: {}", EscapeForLog(root_), EscapeForLog(message));
  } else {
    spdlog::warn("dir store {}: {}", EscapeForLog(root_), EscapeForLog(message));
  }
}

Result<int> DirStore::OpenDir(std::string_view dir_path, int open_flags) const {
  const std::string path(dir_path);
  auto fail = [&](int err) -> Status {
    std::string what = "directory '" + path + "' under " + root_ + ": " + ErrnoText(err);
    if (err == ENOENT || err == ENOTDIR) return Status::NotFound(what);
    if (err == ELOOP || err == EXDEV) {
      Warn("refusing path '" + path + "': symbolic link or escape (never followed)");
      return Status::NotFound(what);
    }
    if (err == EACCES || err == EPERM) return Status::AccessDenied(what);
    if (err == EAGAIN) return Status::Transient(what);
    return Status::IoError(what);
  };
  const int flags = open_flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  if (path.empty()) {
    int fd = ::openat(root_fd_, ".", flags);
    if (fd < 0) return fail(errno);
    return fd;
  }
  if (use_openat2_) {
    // No O_NOFOLLOW here: with RESOLVE_NO_SYMLINKS a trailing symlink then
    // fails with ELOOP (with O_NOFOLLOW it would say ENOTDIR).
    const int how_flags = open_flags | O_DIRECTORY | O_CLOEXEC;
    for (int attempt = 0;; ++attempt) {
      long fd = Openat2(root_fd_, path.c_str(), static_cast<uint64_t>(how_flags), kResolveFlags);
      if (fd >= 0) return static_cast<int>(fd);
      if (errno != EAGAIN || attempt + 1 == kOpenat2Attempts) return fail(errno);
    }
  }
  // Component by component, never following a symlink.
  Fd cur;
  size_t start = 0;
  for (;;) {
    size_t end = path.find('/', start);
    bool last = end == std::string::npos;
    std::string comp = path.substr(start, last ? std::string::npos : end - start);
    int dirfd = cur.get() >= 0 ? cur.get() : root_fd_;
    int comp_flags = (last ? open_flags : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int next = ::openat(dirfd, comp.c_str(), comp_flags);
    if (next < 0) {
      int err = errno;
      struct stat st;
      if ((err == ENOTDIR || err == ELOOP) &&
          ::fstatat(dirfd, comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      return fail(err);
    }
    cur = Fd(next);
    if (last) break;
    start = end + 1;
  }
  return cur.release();
}

Result<DirStore::OpenFile> DirStore::OpenRegular(const std::string& key) const {
  if (Status s = ValidateKey(key); !s.ok()) {
    Warn("refusing key '" + key + "': " + s.message());
    return s.WithContext("key '" + key + "'");
  }
  size_t slash = key.rfind('/');
  std::string_view parent =
      slash == std::string::npos ? std::string_view() : std::string_view(key).substr(0, slash);
  std::string leaf = slash == std::string::npos ? key : key.substr(slash + 1);
  DSFS_ASSIGN_OR_RETURN(int parent_fd, OpenDir(parent, O_PATH));
  Fd parent_owner(parent_fd);
  const std::string not_found = "no such key '" + key + "' under " + root_;

  struct stat before;
  if (::fstatat(parent_fd, leaf.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status::NotFound(not_found);
    if (err == EACCES) return Status::AccessDenied(key + ": " + ErrnoText(err));
    return Status::IoError("stat '" + key + "': " + ErrnoText(err));
  }
  if (S_ISDIR(before.st_mode)) return Status::NotFound(not_found + " (a directory)");
  if (!S_ISREG(before.st_mode)) {
    Warn("refusing key '" + key + "': " +
         (S_ISLNK(before.st_mode) ? "symbolic link (never followed)" : "not a regular file"));
    return Status::NotFound(not_found + " (not a regular file)");
  }
  // O_NONBLOCK: if a fifo was swapped in since the stat, opening it must
  // not block (it is refused below).
  int fd =
      ::openat(parent_fd, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(not_found);
    if (err == ELOOP) {
      Warn("refusing key '" + key + "': symbolic link (never followed)");
      return Status::NotFound(not_found);
    }
    if (err == EACCES || err == EPERM) return Status::AccessDenied(key + ": " + ErrnoText(err));
    return Status::IoError("open '" + key + "': " + ErrnoText(err));
  }
  OpenFile file;
  file.fd = Fd(fd);
  if (::fstat(fd, &file.st) != 0)
    return Status::IoError("fstat '" + key + "': " + ErrnoText(errno));
  if (!S_ISREG(file.st.st_mode) || file.st.st_ino != before.st_ino ||
      file.st.st_dev != before.st_dev) {
    Warn("refusing key '" + key + "': replaced while opening");
    return Status::NotFound(not_found + " (replaced while opening)");
  }
  return file;
}

Result<ObjectInfo> DirStore::DirectoryMarker(const std::string& key) const {
  // "a/b/" is the marker of directory "a/b", as an S3 "dir/" object would be.
  const std::string dir_path = key.substr(0, key.size() - 1);
  if (!dir_path.empty()) {
    if (Status s = ValidateKey(dir_path); !s.ok()) {
      Warn("refusing key '" + EscapeForLog(key) + "': " + s.message());
      return s;
    }
  }
  DSFS_ASSIGN_OR_RETURN(int raw, OpenDir(dir_path, O_PATH));
  Fd dir(raw);
  struct stat st;
  if (::fstat(dir.get(), &st) != 0) {
    return Status::IoError("stat '" + key + "' in " + root_ + ": " + ErrnoText(errno));
  }
  ObjectInfo info = InfoFromStat(key, st);
  info.size = 0;
  info.etag = MakeEtag(0, MtimeNs(st), static_cast<uint64_t>(st.st_ino));
  info.content_type = "application/x-directory";
  return info;
}

Result<ObjectInfo> DirStore::Head(const std::string& key) {
  if (!key.empty() && key.back() == '/') return DirectoryMarker(key);
  DSFS_ASSIGN_OR_RETURN(OpenFile file, OpenRegular(key));
  return InfoFromStat(key, file.st);
}

Result<ListPage> DirStore::List(const ListRequest& request) {
  int max_keys = std::min(request.max_keys, kMaxListKeys);
  if (max_keys <= 0) return ListPage{.source = DataSource::kShare};
  // The directory holding the prefix: "a/b/c" lists "a/b/" for names
  // starting with "c".
  size_t slash = request.prefix.rfind('/');
  std::string dir_key = slash == std::string::npos ? "" : request.prefix.substr(0, slash + 1);
  std::string dir_path = dir_key.empty() ? "" : dir_key.substr(0, dir_key.size() - 1);
  if (!dir_path.empty() && !ValidateKey(dir_path).ok()) {
    return ListPage{.source = DataSource::kShare};  // no key of this store can start with it
  }
  auto dirfd = OpenDir(dir_path, O_RDONLY);
  if (!dirfd.ok()) {
    if (dirfd.status().code() == StatusCode::kNotFound) return ListPage{.source = DataSource::kShare};
    return dirfd.status();
  }
  Fd dir(*dirfd);
  ListBuilder builder(request, max_keys);
  // A listing of "a/b/" starts with the directory's own marker, as S3 lists
  // a "dir/" object: so an empty directory is found (as a directory).
  if (!request.prefix.empty() && request.prefix == dir_key && builder.Admit(dir_key)) {
    auto marker = DirectoryMarker(dir_key);
    if (marker.ok()) builder.AddObject(std::move(*marker));
  }
  DSFS_RETURN_IF_ERROR(Walk(dir.get(), dir_key, builder));
  ListPage page = builder.TakePage();
  page.source = DataSource::kShare;
  return page;
}

Result<GetResult> DirStore::Get(const GetRequest& request, char* buf, size_t buf_len) {
  DSFS_ASSIGN_OR_RETURN(OpenFile file, OpenRegular(request.key));
  const ObjectInfo info = InfoFromStat(request.key, file.st);
  if (!request.if_match.empty() && request.if_match != info.etag) {
    return Status::PreconditionFailed("'" + request.key + "' in " + root_ + " is not version " +
                                      request.if_match);
  }
  uint64_t off = 0;
  uint64_t len = info.size;
  if (request.range) {
    off = request.range->offset;
    len = request.range->length;
    if (len == 0 || off > info.size || len > info.size - off) {
      return Status::InvalidArgument("range beyond end of '" + request.key + "' in " + root_);
    }
  }
  if (len > buf_len) return Status::InvalidArgument("buffer too small for GET");
  uint64_t done = 0;
  int read_errno = 0;
  while (done < len) {
    ssize_t n = ::pread(file.fd.get(), buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      read_errno = errno;
      break;
    }
    if (n == 0) break;  // the file shrank
    done += static_cast<uint64_t>(n);
  }
  // A file rewritten during the read is a new version: never return
  // bytes of two versions.
  struct stat after;
  if (::fstat(file.fd.get(), &after) != 0) {
    return Status::IoError("fstat '" + request.key + "': " + ErrnoText(errno));
  }
  if (InfoFromStat(request.key, after).etag != info.etag) {
    return Status::PreconditionFailed("'" + request.key + "' in " + root_ +
                                      " changed while being read");
  }
  if (read_errno != 0) {
    return Status::IoError("read '" + request.key + "' in " + root_ + ": " + ErrnoText(read_errno));
  }
  if (done != len) {
    return Status::IoError("short read of '" + request.key + "' in " + root_);
  }
  return GetResult{static_cast<size_t>(len), info.etag, DataSource::kShare};
}

}  // namespace dsfs
