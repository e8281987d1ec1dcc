// MemoryBudget: one byte budget shared by every file's read-ahead.
//
// Policy: read-ahead is optional and a read is not, so only read-ahead
// pays for memory:
// - Prefetch data (blocks in flight for read-ahead and blocks buffered
//   ahead of a reader) is charged to the budget with TryReserve, which never
//   waits: when the budget is full, read-ahead is deferred and resumes when
//   bytes are released (the Prefetcher retries then).
// - Demand reads (bytes the application is waiting for) are never charged
//   and never wait for the budget: their memory is bounded separately by the
//   number of FUSE worker threads times the blocks one read spans. So the
//   budget can never block a read, and the high-water mark below is a hard
//   bound on read-ahead memory.
//
// Thread-safe; one mutex (mu_), a leaf lock: no callbacks run under it.
#pragma once

#include <cstdint>
#include <mutex>

#include "common/metrics.h"

namespace dsfs {

// Default read-ahead budget: min(1 GiB, physical RAM / 8). Model loading on
// a GPU node wants the link saturated (~64 MiB in flight is enough for
// 10 Gbit/s at 50 ms), while the rest of RAM belongs to the runtime.
// Falls back to 1 GiB when RAM cannot be read.
uint64_t DefaultPrefetchMemory();
// Same rule for a given RAM size (testable).
uint64_t PrefetchMemoryForRam(uint64_t ram_bytes);

class MemoryBudget {
 public:
  // in_use (optional) mirrors `used` for the metrics
  // (dsfs_readahead_memory_bytes), set under the same lock.
  explicit MemoryBudget(uint64_t capacity, Gauge* in_use = nullptr)
      : capacity_(capacity), in_use_(in_use) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Reserves bytes if used + bytes <= capacity; never waits.
  [[nodiscard]] bool TryReserve(uint64_t bytes);
  // Returns bytes taken by TryReserve.
  void Release(uint64_t bytes);

  uint64_t capacity() const { return capacity_; }
  uint64_t used() const;
  // Highest `used` ever observed (never above capacity).
  uint64_t high_water() const;
  // Reservations that did not fit (TryReserve failures).
  uint64_t waits() const;

 private:
  const uint64_t capacity_;
  Gauge* const in_use_;  // may be null
  mutable std::mutex mu_;
  uint64_t used_ = 0;              // guarded by mu_
  uint64_t high_water_ = 0;        // guarded by mu_
  uint64_t waits_ = 0;             // guarded by mu_
};

}  // namespace dsfs
