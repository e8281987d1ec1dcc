#include "common/metrics.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace dsfs {
namespace {

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       (allow_colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Label values escape backslash, double quote and newline; HELP text
// escapes backslash and newline (the exposition format's two rules).
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// a="x",b="y" with the labels sorted by name: one text per series.
std::string LabelText(Labels labels) {
  std::sort(labels.begin(), labels.end());
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k + "=\"" + Escape(v, true) + "\"";
  }
  return out;
}

std::string Braced(const std::string& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return "{" + extra + "}";
  if (extra.empty()) return "{" + labels + "}";
  return "{" + labels + "," + extra + "}";
}

// Shortest text that reads back as the same double; +Inf/-Inf/NaN as
// Prometheus spells them.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

const char* TypeName(int type) {
  static constexpr const char* kNames[] = {"counter", "gauge", "histogram"};
  return kNames[type];
}

}  // namespace

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // Bucket i counts bounds_[i-1] < v <= bounds_[i] (Prometheus' `le`).
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.buckets.resize(bounds_.size() + 1);
  for (size_t i = 0; i < s.buckets.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::Series& Metrics::Lookup(const std::string& name, const std::string& help,
                                 const Labels& labels, Type type,
                                 std::span<const double> bounds) {
  std::lock_guard lock(mu_);
  Series* series = nullptr;
  bool bad_labels = false;
  for (const auto& l : labels) bad_labels |= !ValidName(l.first, false) || l.first == "le";
  auto fam = families_.find(name);
  if (!ValidName(name, true) || bad_labels) {
    spdlog::error("metrics: invalid metric or label name '{}' (a bug): not reported", name);
  } else if (fam != families_.end() && fam->second.type != type) {
    spdlog::error("metrics: '{}' is a {}, asked for as a {} (a bug): not reported", name,
                  TypeName(static_cast<int>(fam->second.type)), TypeName(static_cast<int>(type)));
  } else {
    if (fam == families_.end()) fam = families_.emplace(name, Family{type, help, {}}).first;
    if (fam->second.help.empty()) fam->second.help = help;
    series = &fam->second.series[LabelText(labels)];
  }
  if (series == nullptr) series = orphans_.emplace_back(std::make_unique<Series>()).get();
  switch (type) {
    case Type::kCounter:
      if (!series->counter) series->counter = std::make_unique<Counter>();
      break;
    case Type::kGauge:
      if (!series->gauge) series->gauge = std::make_unique<Gauge>();
      break;
    case Type::kHistogram:
      if (!series->histogram) series->histogram = std::make_unique<Histogram>(bounds);
      break;
  }
  return *series;
}

Counter& Metrics::GetCounter(const std::string& name, const std::string& help,
                             const Labels& labels) {
  return *Lookup(name, help, labels, Type::kCounter).counter;
}

Gauge& Metrics::GetGauge(const std::string& name, const std::string& help,
                         const Labels& labels) {
  return *Lookup(name, help, labels, Type::kGauge).gauge;
}

Histogram& Metrics::GetHistogram(const std::string& name, const std::string& help,
                                 const Labels& labels, std::span<const double> bounds) {
  return *Lookup(name, help, labels, Type::kHistogram, bounds).histogram;
}

uint64_t Metrics::CounterTotal(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto fam = families_.find(name);
  if (fam == families_.end() || fam->second.type != Type::kCounter) return 0;
  uint64_t total = 0;
  for (const auto& [labels, s] : fam->second.series) total += s.counter->value();
  return total;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    if (!fam.help.empty()) out += "# HELP " + name + " " + Escape(fam.help, false) + "\n";
    out += "# TYPE " + name + " " + TypeName(static_cast<int>(fam.type)) + "\n";
    for (const auto& [labels, s] : fam.series) {
      switch (fam.type) {
        case Type::kCounter:
          out += name + Braced(labels) + " " + std::to_string(s.counter->value()) + "\n";
          break;
        case Type::kGauge:
          out += name + Braced(labels) + " " + std::to_string(s.gauge->value()) + "\n";
          break;
        case Type::kHistogram: {
          const Histogram::Snapshot h = s.histogram->Read();
          uint64_t cumulative = 0;
          for (size_t i = 0; i < h.buckets.size(); ++i) {
            cumulative += h.buckets[i];
            const std::string le = i < h.bounds.size() ? FormatDouble(h.bounds[i]) : "+Inf";
            out += name + "_bucket" + Braced(labels, "le=\"" + le + "\"") + " " +
                   std::to_string(cumulative) + "\n";
          }
          out += name + "_sum" + Braced(labels) + " " + FormatDouble(h.sum) + "\n";
          out += name + "_count" + Braced(labels) + " " + std::to_string(h.count) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace dsfs
