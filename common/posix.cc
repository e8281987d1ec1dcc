#include "common/posix.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace dsfs {

std::string ErrnoText(int err) { return std::strerror(err); }

Result<std::vector<DirChild>> ReadDirChildren(int dirfd, const std::string& where) {
  Fd own(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (own.get() < 0) return Status::IoError("cannot reopen '" + where + "': " + ErrnoText(errno));
  DIR* dir = ::fdopendir(own.get());
  if (dir == nullptr) return Status::IoError("fdopendir '" + where + "': " + ErrnoText(errno));
  own.release();  // owned by dir now
  std::vector<DirChild> out;
  for (;;) {
    errno = 0;
    struct dirent* de = ::readdir(dir);
    if (de == nullptr) break;
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = de->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(::dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
      }
    }
    DirChild c;
    c.name = std::move(name);
    c.type = type == DT_DIR   ? DirChild::Type::kDir
             : type == DT_REG ? DirChild::Type::kFile
                              : DirChild::Type::kOther;
    out.push_back(std::move(c));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return Status::IoError("readdir '" + where + "': " + ErrnoText(err));
  return out;
}

Result<std::vector<DirChild>> ReadDirChildren(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::IoError("opendir " + path + ": " + ErrnoText(errno));
  }
  return ReadDirChildren(fd.get(), path);
}

}  // namespace dsfs
