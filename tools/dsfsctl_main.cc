// dsfsctl: operator commands for a running dsfs mount.
//   dsfsctl stats MOUNTPOINT   the mount's counters (Prometheus text format)
#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr const char* kStatsXattr = "user.dsfs.stats";  // fs/filesystem.h

int Stats(const char* mountpoint) {
  ssize_t n = getxattr(mountpoint, kStatsXattr, nullptr, 0);
  if (n < 0) {
    std::fprintf(stderr, "dsfsctl: %s: %s (is it a dsfs mount?)\n", mountpoint,
                 std::strerror(errno));
    return 1;
  }
  // Counters may appear between the two calls: leave room.
  std::string buf(static_cast<size_t>(n) + 4096, '\0');
  n = getxattr(mountpoint, kStatsXattr, buf.data(), buf.size());
  if (n < 0) {
    std::fprintf(stderr, "dsfsctl: %s: %s\n", mountpoint, std::strerror(errno));
    return 1;
  }
  std::fwrite(buf.data(), 1, static_cast<size_t>(n), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "stats") == 0) return Stats(argv[2]);
  std::fprintf(stderr, "usage: dsfsctl stats MOUNTPOINT\n");
  return argc == 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0) ? 0
                                                                                                 : 2;
}
