// dsfsctl stats MOUNTPOINT: the mount's counters, read through the root
// xattr user.dsfs.stats (Prometheus text format).
#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/ctl/commands.h"

namespace dsfs::ctl {
namespace {

constexpr const char* kStatsXattr = "user.dsfs.stats";  // fs/filesystem.h

int Stats(const std::string& mountpoint) {
  ssize_t n = getxattr(mountpoint.c_str(), kStatsXattr, nullptr, 0);
  if (n < 0) {
    std::fprintf(stderr, "dsfsctl: %s: %s (is it a dsfs mount?)\n", mountpoint.c_str(),
                 std::strerror(errno));
    return kFailed;
  }
  // Counters may appear between the two calls: leave room.
  std::string buf(static_cast<size_t>(n) + 4096, '\0');
  n = getxattr(mountpoint.c_str(), kStatsXattr, buf.data(), buf.size());
  if (n < 0) {
    std::fprintf(stderr, "dsfsctl: %s: %s\n", mountpoint.c_str(), std::strerror(errno));
    return kFailed;
  }
  std::fwrite(buf.data(), 1, static_cast<size_t>(n), stdout);
  return kOk;
}

}  // namespace

void AddStatsCommand(CLI::App& app, int* rc) {
  auto* cmd = app.add_subcommand("stats", "the counters of a running mount");
  auto mountpoint = std::make_shared<std::string>();
  cmd->add_option("MOUNTPOINT", *mountpoint, "a dsfs mountpoint")->required();
  cmd->callback([rc, mountpoint] { *rc = Stats(*mountpoint); });
}

}  // namespace dsfs::ctl
