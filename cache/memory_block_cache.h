// MemoryBlockCache: blocks in RAM, bounded by bytes, least recently used
// evicted first. Blocks are shared (BlockData), so a reader holding one
// keeps it alive after eviction without counting against the cap.
// Thread-safe: one mutex, mu_.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "cache/block_cache.h"
#include "cache/block_file.h"
#include "common/metrics.h"

namespace dsfs {

class MemoryBlockCache : public BlockCache {
 public:
  // metrics may be null.
  explicit MemoryBlockCache(uint64_t capacity_bytes, Metrics* metrics = nullptr);

  Result<std::optional<BlockData>> Get(const BlockKey& key) override;
  // A block larger than the whole capacity is not stored (Ok: caching is
  // best effort). InvalidArgument for null data.
  Status Put(const BlockKey& key, BlockData data) override;
  uint64_t UsedBytes() const override;

  size_t block_count() const;
  uint64_t capacity_bytes() const { return capacity_; }

 private:
  using Lru = std::list<std::pair<BlockKey, BlockData>>;  // most recent first

  const uint64_t capacity_;
  Counter* hits_ = nullptr;  // null without metrics
  Counter* misses_ = nullptr;
  Counter* evictions_ = nullptr;
  mutable std::mutex mu_;
  Lru lru_;                                                        // guarded by mu_
  std::unordered_map<BlockKey, Lru::iterator, BlockKeyHash> map_;  // guarded by mu_
  uint64_t used_ = 0;                                              // guarded by mu_
};

}  // namespace dsfs
