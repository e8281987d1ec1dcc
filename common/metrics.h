// A small registry of named monotonic counters and gauges, reported by
// `dsfsctl stats` in the Prometheus text format. (prometheus-cpp is not
// packaged in Debian 12; the exposition format is a few lines.)
// One Metrics object per mount, passed by constructor; no globals.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace dsfs {

class Counter {
 public:
  void Add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Metrics {
 public:
  // Returns the counter with this name, creating it; the reference stays
  // valid for the registry's lifetime. Names follow Prometheus rules
  // (dsfs_s3_requests_total).
  Counter& GetCounter(const std::string& name, const std::string& help = "");
  // Prometheus text exposition of every counter, sorted by name.
  std::string Render() const;

 private:
  struct Entry {
    std::string help;
    std::unique_ptr<Counter> counter;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> counters_;  // guarded by mu_
};

}  // namespace dsfs
