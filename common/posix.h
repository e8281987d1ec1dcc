// Small POSIX helpers shared by the layers that touch local files
// (backends/ DirStore, cache/ block files and the disk cache).
#pragma once

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dsfs {

// strerror(err) as a std::string, for error messages.
std::string ErrnoText(int err);

// Owns one file descriptor (-1: none) and closes it when destroyed.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  // Gives up ownership: the caller closes the returned fd.
  int release() { return std::exchange(fd_, -1); }
  // Closes now, ignoring errors.
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes now and returns close(2)'s result (errno set on -1): close can
  // report a deferred write error (EIO, ENOSPC on NFS).
  int Close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_ = -1;
};

// One entry of a local directory.
struct DirChild {
  enum class Type { kFile, kDir, kOther };  // kOther: symlink, fifo, socket, device
  std::string name;
  Type type = Type::kOther;
  bool is_dir() const { return type == Type::kDir; }
};

// The entries of the directory open at dirfd (not consumed; read through
// a fresh descriptor, so dirfd's position is untouched), except . and ..,
// in readdir order. Types come from d_type, else from fstatat without
// following symlinks. `where` names the directory in error messages.
Result<std::vector<DirChild>> ReadDirChildren(int dirfd, const std::string& where);
// The same for a path (symlinks followed); NotFound if it does not exist,
// IoError if it is not a directory or cannot be read.
Result<std::vector<DirChild>> ReadDirChildren(const std::string& path);

}  // namespace dsfs
