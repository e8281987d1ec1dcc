// Helpers for the DirStore / FallbackStore tests: a temporary directory and
// a logger that records lines.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace dsfs::testing {

// Records formatted log lines (thread-safe).
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> Lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  int Count(const std::string& needle) {
    int n = 0;
    for (const auto& l : Lines()) n += l.find(needle) != std::string::npos;
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;  // guarded by mutex_
};

struct LogCapture {
  LogCapture()
      : sink(std::make_shared<CaptureSink>()),
        logger(std::make_shared<spdlog::logger>("test", sink)) {
    logger->set_level(spdlog::level::trace);
  }
  std::shared_ptr<CaptureSink> sink;
  std::shared_ptr<spdlog::logger> logger;
};

// The lower-case hex MD5 of data (the ETag S3 gives a single-part upload).
inline std::string Md5Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[md[i] >> 4];
    hex += kDigits[md[i] & 15];
  }
  return hex;
}

// Polls `cond` until true or ~20 s (a bound for a hung test, not a timing
// assertion). Returns cond().
inline bool WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 4000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace dsfs::testing
