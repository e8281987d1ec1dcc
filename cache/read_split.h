// ReadSplit: whether a block the disk cache holds is fetched from the store
// instead, so that a cache disk slower than the network (an EVS disk at
// 350 MiB/s against OBS at 2 GB/s) and the network serve one warm read
// together (warm_split=).
//
// Both sources are measured as they go: each finished disk read and store
// GET gives a rate (its bytes over its duration), kept as an exponentially
// weighted mean per source. A cached block goes to the store when
//  - the disk is busy: at least kMinDiskReads reads of it in flight, so the
//    disk itself is never left idle; and
//  - one disk read delivers less than half what one GET does, and less
//    than kSlowDisk (the margin and the bound keep a fast SSD, whose reads
//    run at GB/s, on the disk whatever the noise and however fast the
//    network); and
//  - the store's rate is recent (a GET finished within kStoreFresh).
// Without a recent GET (a warm read after a remount), a disk that is busy
// and delivers under kProbeDisk per read sends one block to the store at
// most every kProbeInterval: that GET measures the store. A node offline
// answers such a probe at once (the circuit is open) and reads the disk.
// Diverting lowers the disk's concurrency, which raises what each of its
// reads delivers, so the split settles where the disk stays busy and the
// rest comes from the network: in proportion to what each delivers.
//
// Thread-safe (one leaf mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace dsfs {

class ReadSplit {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kMinDiskReads = 2;
  static constexpr double kSlowDisk = 256.0 * (1 << 20);  // bytes/s per read
  static constexpr double kProbeDisk = 64.0 * (1 << 20);  // bytes/s per read
  static constexpr std::chrono::seconds kProbeInterval{1};
  // Smaller transfers give no sample: their time is overhead, not rate.
  static constexpr uint64_t kMinSample = 256 << 10;
  static constexpr std::chrono::seconds kStoreFresh{10};
  // Weight of the newest sample in each mean.
  static constexpr double kAlpha = 0.2;

  explicit ReadSplit(bool enabled) : enabled_(enabled) {}

  bool enabled() const { return enabled_; }
  void DiskReadStarted();
  // A disk read of a cached block ended (hit or not); bytes = 0: no sample.
  void DiskReadDone(uint64_t bytes, Clock::duration took);
  void StoreGetDone(uint64_t bytes, Clock::duration took, Clock::time_point now);
  bool ShouldDivert(Clock::time_point now);

  // For tests and stats: the means in bytes per second (0: no sample yet).
  double disk_rate() const;
  double store_rate() const;

 private:
  static void Sample(double* mean, uint64_t bytes, Clock::duration took);

  const bool enabled_;
  mutable std::mutex mu_;
  int disk_in_flight_ = 0;            // guarded by mu_
  double disk_rate_ = 0;              // guarded by mu_
  double store_rate_ = 0;             // guarded by mu_
  Clock::time_point store_last_{};    // guarded by mu_
  bool store_seen_ = false;           // guarded by mu_
  Clock::time_point last_probe_{};    // guarded by mu_
};

}  // namespace dsfs
