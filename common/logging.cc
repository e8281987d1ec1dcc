#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

namespace dsfs {

Result<int> ParseLogLevel(const std::string& name) {
  using spdlog::level::level_enum;
  if (name == "crit" || name == "critical") return static_cast<int>(level_enum::critical);
  if (name == "err" || name == "error") return static_cast<int>(level_enum::err);
  if (name == "warn" || name == "warning") return static_cast<int>(level_enum::warn);
  if (name == "info") return static_cast<int>(level_enum::info);
  if (name == "debug" || name == "dbg") return static_cast<int>(level_enum::debug);
  if (name == "trace") return static_cast<int>(level_enum::trace);
  if (name == "off") return static_cast<int>(level_enum::off);
  return Status::InvalidArgument("unknown dbglevel '" + name +
                                 "' (use crit, err, warn, info, debug or trace)");
}

Status SetupLogging(const std::string& logfile, const std::string& level) {
  DSFS_ASSIGN_OR_RETURN(int lvl, ParseLogLevel(level));
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (logfile.empty()) {
      logger = spdlog::stderr_logger_mt("dsfs");
    } else if (logfile == "syslog") {
      logger = spdlog::syslog_logger_mt("dsfs", "dsfs", LOG_PID, LOG_DAEMON);
    } else {
      logger = spdlog::basic_logger_mt("dsfs", logfile);
    }
  } catch (const spdlog::spdlog_ex& e) {
    spdlog::drop("dsfs");
    return Status::InvalidArgument(std::string("cannot open log '") + logfile + "': " + e.what());
  }
  logger->set_level(static_cast<spdlog::level::level_enum>(lvl));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%t] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace dsfs
