#include "cache/read_split.h"

#include <algorithm>

namespace dsfs {

void ReadSplit::Sample(double* mean, uint64_t bytes, Clock::duration took) {
  const double secs =
      std::max(std::chrono::duration<double>(took).count(), 1e-6);  // a clock tick at least
  const double rate = static_cast<double>(bytes) / secs;
  *mean = *mean == 0 ? rate : (1 - kAlpha) * *mean + kAlpha * rate;
}

void ReadSplit::DiskReadStarted() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  ++disk_in_flight_;
}

void ReadSplit::DiskReadDone(uint64_t bytes, Clock::duration took) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  --disk_in_flight_;
  if (bytes >= kMinSample) Sample(&disk_rate_, bytes, took);
}

void ReadSplit::StoreGetDone(uint64_t bytes, Clock::duration took, Clock::time_point now) {
  if (!enabled_ || bytes < kMinSample) return;
  std::lock_guard lock(mu_);
  Sample(&store_rate_, bytes, took);
  store_last_ = now;
  store_seen_ = true;
}

bool ReadSplit::ShouldDivert(Clock::time_point now) {
  if (!enabled_) return false;
  std::lock_guard lock(mu_);
  if (disk_rate_ == 0 || disk_in_flight_ < kMinDiskReads) return false;
  if (store_seen_ && now - store_last_ <= kStoreFresh) {
    return disk_rate_ < kSlowDisk && disk_rate_ < store_rate_ / 2;
  }
  if (disk_rate_ < kProbeDisk && now - last_probe_ >= kProbeInterval) {
    last_probe_ = now;
    return true;
  }
  return false;
}

double ReadSplit::disk_rate() const {
  std::lock_guard lock(mu_);
  return disk_rate_;
}

double ReadSplit::store_rate() const {
  std::lock_guard lock(mu_);
  return store_rate_;
}

}  // namespace dsfs
