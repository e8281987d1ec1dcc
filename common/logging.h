// Logging setup (spdlog). One logger, configured once by the daemon from
// DaemonConfig; library code logs through spdlog's default logger.
// Secrets never reach a log: callers log keys, hosts and status codes,
// never credentials, Authorization headers or signed URLs.
#pragma once

#include <string>

#include "common/status.h"

namespace dsfs {

// Maps s3fs/obsfs dbglevel names (crit, err, warn, info, debug, dbg) and
// spdlog names (trace, debug, info, warning, error, critical, off).
Result<int> ParseLogLevel(const std::string& name);

// logfile: a path, "syslog", or "" for stderr.
Status SetupLogging(const std::string& logfile, const std::string& level);

}  // namespace dsfs
