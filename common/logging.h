// Logging setup (spdlog). One logger, configured once by the daemon from
// DaemonConfig; library code logs through spdlog's default logger.
// Secrets never reach a log: callers log keys, hosts and status codes,
// never credentials, Authorization headers or signed URLs.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace dsfs {

// Maps s3fs/obsfs dbglevel names (crit, err, warn, info, debug, dbg) and
// spdlog names (trace, debug, info, warning, error, critical, off).
Result<int> ParseLogLevel(const std::string& name);

// Text that came from outside (object keys, server messages, share
// names) made safe for one log line: a bucket writer must not be able to
// forge lines ("...\nfallback: OBS recovered") or hide text with terminal
// escapes. Backslash -> \\, \n \r \t -> \n \r \t, other control bytes
// (C0, DEL, C1, U+2028/U+2029) and bytes that are not valid UTF-8 -> \xNN.
// Printable ASCII and valid UTF-8 are kept as they are.
std::string EscapeForLog(std::string_view text);

// logfile: a path, "syslog", or "" for stderr.
Status SetupLogging(const std::string& logfile, const std::string& level);

// Reopens the default logger's log file by its path, so that after
// logrotate moved the file away the next lines go to a new file of that
// name (SIGHUP). A no-op for stderr and syslog.
Status ReopenLog();

}  // namespace dsfs
