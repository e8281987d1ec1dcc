#include "common/logging.h"

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>

#include <cstdint>

namespace dsfs {
namespace {

void AppendHex(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

// Length of the valid UTF-8 sequence at s[i] (2..4), or 0.
size_t Utf8Length(std::string_view s, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  uint32_t v = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
      (v >= 0xd800 && v <= 0xdfff)) {
    return 0;
  }
  *cp = v;
  return len;
}

// spdlog's basic_file_sink cannot reopen its file; this one can.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(const std::string& path) { file_.open(path, /*truncate=*/false); }
  void Reopen() {
    std::lock_guard lock(mutex_);
    file_.reopen(/*truncate=*/false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_.write(formatted);
  }
  void flush_() override { file_.flush(); }

 private:
  spdlog::details::file_helper file_;
};

}  // namespace

std::string EscapeForLog(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      if (c == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
      out.push_back('\\');
      out.push_back(c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = c >= 0x80 ? Utf8Length(text, i, &cp) : 0;
    // C1 controls and the Unicode line/paragraph separators end lines or
    // drive terminals too.
    if (len == 0 || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
      AppendHex(&out, c);
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

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
      // spdlog would create missing directories: a typo in logfile= must
      // fail the mount, not make /nonexistent/.
      const size_t slash = logfile.rfind('/');
      const std::string dir = slash == std::string::npos ? "."
                              : slash == 0               ? "/"
                                                         : logfile.substr(0, slash);
      struct stat st;
      if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Status::InvalidArgument("cannot open log '" + logfile + "': directory '" + dir +
                                       "' does not exist");
      }
      logger = std::make_shared<spdlog::logger>("dsfs",
                                                std::make_shared<ReopenableFileSink>(logfile));
      spdlog::register_logger(logger);
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

Status ReopenLog() {
  auto logger = spdlog::default_logger();
  if (!logger) return Status::Ok();
  try {
    for (const auto& sink : logger->sinks()) {
      if (auto file = std::dynamic_pointer_cast<ReopenableFileSink>(sink)) file->Reopen();
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError(std::string("cannot reopen the log: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace dsfs
