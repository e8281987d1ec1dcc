#include "fs/staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/posix.h"

namespace dsfs {
namespace {

Status ErrnoStatus(int err, const std::string& what) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status::NoSpace(what + ": the staging disk is full (" + ErrnoText(err) + ")");
  }
  return Status::IoError(what + ": " + ErrnoText(err));
}

}  // namespace

Result<std::unique_ptr<StagedFile>> StagedFile::Create(const std::string& dir,
                                                       DirtyBudget& budget) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // No O_TMPFILE on this filesystem: a named file, unlinked at once.
    std::string path = dir + "/dsfs-staged-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.data());
  }
  if (fd < 0) return ErrnoStatus(errno, "cannot create a staged file in '" + dir + "'");
  return std::unique_ptr<StagedFile>(new StagedFile(fd, budget));
}

StagedFile::~StagedFile() {
  budget_.Sub(dirty_bytes_);
  ::close(fd_);
}

Status StagedFile::WriteAll(uint64_t offset, const char* data, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd_, data + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      // A failed write leaves no bytes past the old end (an upload sends
      // exactly size_ bytes, so what did land inside it is overwritten
      // data the writer was told failed: still a whole file).
      if (offset + done > size_) (void)::ftruncate(fd_, static_cast<off_t>(size_));
      return ErrnoStatus(err, "writing the staged file");
    }
    if (n == 0) return Status::IoError("writing the staged file: no progress");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void StagedFile::AddDirty(uint64_t n) {
  dirty_ = true;
  // Counted up to the file's size: a file rewritten in place many times
  // holds no more unsent bytes than it has.
  const uint64_t add = std::min(n, size_ > dirty_bytes_ ? size_ - dirty_bytes_ : 0);
  dirty_bytes_ += add;
  budget_.Add(add);
}

Status StagedFile::Write(uint64_t offset, const char* data, size_t len) {
  if (len == 0) return Status::Ok();
  const uint64_t old_size = size_;
  Status st = WriteAll(offset, data, len);
  if (!st.ok()) {
    size_ = old_size;
    return st;
  }
  size_ = std::max(size_, offset + len);
  AddDirty(len);
  return Status::Ok();
}

Status StagedFile::Fill(uint64_t offset, const char* data, size_t len) {
  DSFS_RETURN_IF_ERROR(WriteAll(offset, data, len));
  size_ = std::max(size_, offset + len);
  return Status::Ok();
}

Result<size_t> StagedFile::Read(uint64_t offset, size_t len, char* buf) const {
  if (offset >= size_) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size_ - offset));
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "reading the staged file");
    }
    if (n == 0) {
      // A hole at the end (extended by truncate): zeros.
      std::fill(buf + done, buf + len, '\0');
      break;
    }
    done += static_cast<size_t>(n);
  }
  return len;
}

Status StagedFile::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(errno, "truncating the staged file");
  }
  size_ = size;
  if (dirty_bytes_ > size_) {
    budget_.Sub(dirty_bytes_ - size_);
    dirty_bytes_ = size_;
  }
  dirty_ = true;
  return Status::Ok();
}

void StagedFile::MarkClean() {
  budget_.Sub(dirty_bytes_);
  dirty_bytes_ = 0;
  dirty_ = false;
}

Status StagedFile::KeepAs(const std::string& path) const {
  // An O_TMPFILE gets a name by linking its /proc/self/fd entry.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    if (::truncate(path.c_str(), static_cast<off_t>(size_)) != 0) {
      return ErrnoStatus(errno, "cutting '" + path + "' to the staged size");
    }
    return Status::Ok();
  }
  if (errno == EEXIST) return Status::Exists("'" + path + "' exists");
  // A named staged file was unlinked at creation (no O_TMPFILE): copy it.
  Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus(errno, "cannot create '" + path + "'");
  std::vector<char> buf(1 << 20);
  for (uint64_t off = 0; off < size_;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size_ - off));
    ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, "reading the staged file");
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(out.get(), buf.data() + done, static_cast<size_t>(n - done),
                           static_cast<off_t>(off) + done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return ErrnoStatus(w < 0 ? errno : EIO, "writing '" + path + "'");
      done += w;
    }
    off += static_cast<uint64_t>(n);
  }
  if (::fsync(out.get()) != 0) return ErrnoStatus(errno, "syncing '" + path + "'");
  return Status::Ok();
}

}  // namespace dsfs
