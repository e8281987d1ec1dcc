#include "cache/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>

namespace dsfs {

namespace {
constexpr uint64_t kGiB = uint64_t{1} << 30;
}  // namespace

uint64_t PrefetchMemoryForRam(uint64_t ram_bytes) {
  if (ram_bytes == 0) return kGiB;
  return std::min(kGiB, ram_bytes / 8);
}

uint64_t DefaultPrefetchMemory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return kGiB;
  return PrefetchMemoryForRam(static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size));
}

bool MemoryBudget::TryReserve(uint64_t bytes) {
  std::lock_guard lock(mu_);
  if (bytes > capacity_ - used_) {
    ++waits_;
    return false;
  }
  used_ += bytes;
  high_water_ = std::max(high_water_, used_);
  if (in_use_ != nullptr) in_use_->Set(static_cast<int64_t>(used_));
  return true;
}

void MemoryBudget::Release(uint64_t bytes) {
  std::lock_guard lock(mu_);
  assert(bytes <= used_);
  used_ -= std::min(bytes, used_);
  if (in_use_ != nullptr) in_use_->Set(static_cast<int64_t>(used_));
}

uint64_t MemoryBudget::used() const {
  std::lock_guard lock(mu_);
  return used_;
}

uint64_t MemoryBudget::high_water() const {
  std::lock_guard lock(mu_);
  return high_water_;
}

uint64_t MemoryBudget::waits() const {
  std::lock_guard lock(mu_);
  return waits_;
}

}  // namespace dsfs
