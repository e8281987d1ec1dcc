// The mount's metrics registry: counters, gauges and latency histograms,
// optionally split by labels (dsfs_s3_requests_total{op="GET"}), rendered in
// the Prometheus text exposition format (version 0.0.4) for `dsfsctl stats`
// (root xattr user.dsfs.stats) and the metrics_port= endpoint.
// prometheus-cpp is not packaged in Debian 12; the format is a few lines.
// One Metrics object per mount, passed by constructor; no globals.
//
// Each metric is owned by the component whose state it describes: that
// component registers it once (Get* returns a reference that stays valid
// for the registry's lifetime) and updates it lock-free; Render() only reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"

namespace dsfs {

// Label name/value pairs of one series; order does not matter (a series is
// identified by its labels sorted by name).
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A value that goes up and down (bytes in use, a state number).
class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void Sub(int64_t n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf
// is implicit), plus their sum: Prometheus' histogram type.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void Observe(double v);  // NaN is ignored

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> buckets;  // per bucket (not cumulative); last is +Inf
    double sum = 0;
    uint64_t count = 0;  // the sum of buckets: consistent with them by construction
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Return the series with this name and labels, creating it (and its
  // family, with this help text, on first use). Names and label names
  // follow Prometheus rules. Asking for a name already registered with
  // another type, or an invalid name, is a bug: it is logged and answered
  // with a series that is never rendered (so the caller still works).
  Counter& GetCounter(const std::string& name, const std::string& help = "",
                      const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help = "",
                  const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help = "",
                          const Labels& labels = {},
                          std::span<const double> bounds = kLatencyBucketsSeconds);

  // The sum of a counter family's series (all label values); 0 when absent.
  uint64_t CounterTotal(const std::string& name) const;

  // Prometheus text exposition: families sorted by name, HELP and TYPE once
  // each, series sorted by labels.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Series> series;  // by rendered label text
  };
  // The series for (name, labels) of this type, or an orphan on misuse.
  Series& Lookup(const std::string& name, const std::string& help, const Labels& labels,
                 Type type, std::span<const double> bounds = {});

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
  std::vector<std::unique_ptr<Series>> orphans_;  // guarded by mu_; never rendered
};

}  // namespace dsfs
