// dsfsctl verify PATH...: proves the share copies of the files under each
// PATH against OBS now (getxattr user.dsfs.prove, fs/filesystem.h; the
// daemon's FallbackStore::ProvePrefix does the work) and reports each file
// as proven, differs or missing. Exits 1 if any is not proven.
#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tools/ctl/commands.h"
#include "tools/ctl/stats.h"
#include "tools/ctl/warm.h"

namespace dsfs::ctl {
namespace {

constexpr const char* kProveXattr = "user.dsfs.prove";  // fs/filesystem.h

int Verify(const std::vector<std::string>& paths) {
  int rc = kOk;
  for (const std::string& p : paths) {
    std::string message;
    if (int code = CheckDsfsPath(p, &message); code != kOk) {
      std::fprintf(stderr, "dsfsctl: %s\n", message.c_str());
      return code;
    }
    std::string buf(1 << 16, '\0');  // a getxattr value is at most 64 KiB
    ssize_t n = getxattr(p.c_str(), kProveXattr, buf.data(), buf.size());
    if (n < 0) {
      const int err = errno;
      if (err == EOPNOTSUPP) {
        std::fprintf(stderr, "dsfsctl: %s: the mount has no share to verify (mount with fallback=)\n",
                     p.c_str());
        return kFailed;
      }
      StatsError e = DescribeStatsError(p, err);
      std::fprintf(stderr, "dsfsctl: %s\n", e.message.c_str());
      return e.code;
    }
    buf.resize(static_cast<size_t>(n));
    for (const ProofResult& r : ParseProveReport(buf)) {
      std::printf("%-10s %s\n", r.result.c_str(), r.path.c_str());
      if (r.result != "proven") rc = kFailed;
    }
    if (buf.find("\n... ") != std::string::npos || buf.rfind("... ", 0) == 0) {
      std::fprintf(stderr, "dsfsctl: %s: report cut at 64 KiB; verify subdirectories\n", p.c_str());
    }
    const size_t total = buf.rfind("total ");
    if (total != std::string::npos) std::printf("%s: %s", p.c_str(), buf.c_str() + total);
  }
  return rc;
}

}  // namespace

void AddVerifyCommand(CLI::App& app, int* rc) {
  auto* cmd = app.add_subcommand("verify", "prove the share copies of files against OBS");
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd->add_option("PATH", *paths, "files or directories in a dsfs mount with fallback=")
      ->required();
  cmd->footer(
      "Each file: proven (the share copy has OBS's bytes), differs, missing (no share copy).\n"
      "Exit codes: 0 all proven, 1 some not proven or no share, 3 not dsfs, 4 dead mount.");
  cmd->callback([rc, paths] { *rc = Verify(*paths); });
}

}  // namespace dsfs::ctl
