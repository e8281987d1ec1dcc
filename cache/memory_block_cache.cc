#include "cache/memory_block_cache.h"

namespace dsfs {

MemoryBlockCache::MemoryBlockCache(uint64_t capacity_bytes, Metrics* metrics)
    : capacity_(capacity_bytes) {
  if (metrics) {
    hits_ = &metrics->GetCounter("dsfs_cache_memory_hits_total", "Blocks served from RAM");
    misses_ =
        &metrics->GetCounter("dsfs_cache_memory_misses_total", "RAM cache lookups that missed");
    evictions_ = &metrics->GetCounter("dsfs_cache_memory_evictions_total",
                                      "Blocks evicted from the RAM cache");
  }
}

Result<std::optional<BlockData>> MemoryBlockCache::Get(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) {
    if (misses_) misses_->Add();
    return std::optional<BlockData>();
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  if (hits_) hits_->Add();
  return std::optional<BlockData>(it->second->second);
}

Status MemoryBlockCache::Put(const BlockKey& key, BlockData data) {
  if (!data) return Status::InvalidArgument("memory cache Put without data");
  uint64_t size = data->size();
  std::lock_guard lock(mu_);
  if (auto it = map_.find(key); it != map_.end()) {
    used_ -= it->second->second->size();
    lru_.erase(it->second);
    map_.erase(it);
  }
  if (size > capacity_) return Status::Ok();
  while (used_ + size > capacity_ && !lru_.empty()) {
    auto& victim = lru_.back();
    used_ -= victim.second->size();
    map_.erase(victim.first);
    lru_.pop_back();
    if (evictions_) evictions_->Add();
  }
  lru_.emplace_front(key, std::move(data));
  map_[key] = lru_.begin();
  used_ += size;
  return Status::Ok();
}

uint64_t MemoryBlockCache::UsedBytes() const {
  std::lock_guard lock(mu_);
  return used_;
}

size_t MemoryBlockCache::block_count() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace dsfs
