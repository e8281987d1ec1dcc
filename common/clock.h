// Time source passed by constructor, so TTL logic is tested without sleeping.
#pragma once

#include <atomic>
#include <chrono>

namespace dsfs {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point Now() const = 0;
};

class SteadyClock : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
};

// Test clock: moves only when told.
class ManualClock : public Clock {
 public:
  time_point Now() const override { return time_point(std::chrono::nanoseconds(ns_.load())); }
  void Advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<int64_t> ns_{1'000'000'000};
};

}  // namespace dsfs
