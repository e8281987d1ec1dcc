// TieredBlockCache: RAM over disk. Get looks in memory, then on disk, and
// copies disk hits into memory. Put stores in both; a disk failure is
// logged and counted (dsfs_cache_tier_disk_errors_total) but the Put
// succeeds, because the block is in memory and caching is best effort.
// Thread-safe if both tiers are (no lock of its own).
#pragma once

#include <memory>

#include "cache/block_cache.h"
#include "common/metrics.h"

namespace dsfs {

class TieredBlockCache : public BlockCache {
 public:
  // metrics may be null.
  TieredBlockCache(std::unique_ptr<BlockCache> memory, std::unique_ptr<BlockCache> disk,
                   Metrics* metrics = nullptr);

  // A disk error (not a miss) is counted and reported as a miss.
  Result<std::optional<BlockData>> Get(const BlockKey& key) override;
  // Fails only if the memory tier refuses the block.
  Status Put(const BlockKey& key, BlockData data) override;
  // Sum of both tiers (a block in both counts twice).
  uint64_t UsedBytes() const override;

  BlockCache& memory() { return *memory_; }
  BlockCache& disk() { return *disk_; }

 private:
  void CountDiskError(const char* op, const Status& st);

  std::unique_ptr<BlockCache> memory_;
  std::unique_ptr<BlockCache> disk_;
  std::unique_ptr<Metrics> own_metrics_;  // when none was passed
  Counter& disk_errors_;
  Counter& promotions_;
};

}  // namespace dsfs
