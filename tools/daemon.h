// The dsfs daemon's start-up and life: validate input, load credentials,
// daemonize (the parent exits 0 only once the mount is ready, or 1 with the
// child's one-line error, so mount(8) reports failures), probe the bucket,
// mount, serve, unmount.
#pragma once

#include "tools/options.h"

namespace dsfs {

// Returns the process exit code.
int RunDaemon(const CommandLine& cl);

// Checks that input which needs no network is usable: mountpoint exists
// and is a directory.
Status CheckLocalInput(const Config& config);

// realpath() of the mountpoint (the daemon changes directory to /).
Result<std::string> AbsoluteMountpoint(const std::string& path);

// The message for a failed start-up probe of the bucket.
// Refuses a mountpoint that is already a mount point (two dsfs stacked on
// one directory) and a cache_dir equal to or inside the mountpoint (the
// cache would go through dsfs itself). mountpoint must be absolute and
// resolved; mountinfo is the text of /proc/self/mountinfo.
Status CheckMountTargets(const Config& config, const std::string& mountinfo);

Status DescribeProbeFailure(const Status& status, const Config& config);

}  // namespace dsfs
