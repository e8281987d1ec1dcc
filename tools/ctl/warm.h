// dsfsctl warm and verify: the pieces unit tests call
// (tests/unit/tools/ctl_warm_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsfs::ctl {

// The daemon's answer to getxattr(user.dsfs.warm.FIRST.COUNT)
// (fs/filesystem.h kWarmXattrPrefix).
struct WarmReply {
  uint64_t fetched = 0;
  uint64_t skipped = 0;
  uint64_t blocks = 0;
  uint64_t block_size = 0;
};
std::optional<WarmReply> ParseWarmReply(const std::string& text);

// The mount point holding `path`: its topmost ancestor on the same device.
std::string MountRootOf(const std::string& path);

// Whether `path` lies in a live dsfs mount: kOk, or the exit code
// (commands.h) with *message set.
int CheckDsfsPath(const std::string& path, std::string* message);

// One line of the prove report (user.dsfs.prove): "RESULT PATH".
struct ProofResult {
  std::string result;  // proven, differs, missing, unprovable, error
  std::string path;
};
// The lines of a report (the "total ..." summary and "... N more" left out).
std::vector<ProofResult> ParseProveReport(const std::string& text);

}  // namespace dsfs::ctl
