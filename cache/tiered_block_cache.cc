#include "cache/tiered_block_cache.h"

#include <spdlog/spdlog.h>

namespace dsfs {
namespace {

Metrics* Pick(Metrics* given, std::unique_ptr<Metrics>& own) {
  if (given) return given;
  own = std::make_unique<Metrics>();
  return own.get();
}

}  // namespace

TieredBlockCache::TieredBlockCache(std::unique_ptr<BlockCache> memory,
                                   std::unique_ptr<BlockCache> disk, Metrics* metrics)
    : memory_(std::move(memory)),
      disk_(std::move(disk)),
      disk_errors_(Pick(metrics, own_metrics_)
                       ->GetCounter("dsfs_cache_tier_disk_errors_total",
                                    "Disk tier Get/Put failures absorbed by the tiered cache")),
      promotions_((metrics ? metrics : own_metrics_.get())
                      ->GetCounter("dsfs_cache_tier_promotions_total",
                                   "Disk cache hits copied into the memory cache")) {}

void TieredBlockCache::CountDiskError(const char* op, const Status& st) {
  disk_errors_.Add();
  uint64_t n = disk_errors_.value();
  if (n == 1 || n % 100 == 0) {
    spdlog::warn("disk cache {} failed ({} disk cache errors so far): {}", op, n, st.ToString());
  }
}

Result<std::optional<BlockData>> TieredBlockCache::Get(const BlockKey& key) {
  auto mem = memory_->Get(key);
  if (mem.ok() && mem->has_value()) return mem;
  auto disk = disk_->Get(key);
  if (!disk.ok()) {
    CountDiskError("read", disk.status());
    return std::optional<BlockData>();
  }
  if (disk->has_value()) {
    Status st = memory_->Put(key, **disk);
    if (st.ok()) promotions_.Add();
  }
  return disk;
}

Status TieredBlockCache::Put(const BlockKey& key, BlockData data) {
  DSFS_RETURN_IF_ERROR(memory_->Put(key, data));
  Status st = disk_->Put(key, std::move(data));
  if (!st.ok()) CountDiskError("write", st);
  return Status::Ok();
}

uint64_t TieredBlockCache::UsedBytes() const { return memory_->UsedBytes() + disk_->UsedBytes(); }

}  // namespace dsfs
