// Helpers for the DirStore / FallbackStore tests: a temporary directory and
// a logger that records lines.
#pragma once

#include <gtest/gtest.h>
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
