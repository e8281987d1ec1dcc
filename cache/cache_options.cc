#include "cache/cache_options.h"

#include "cache/memory_budget.h"

namespace dsfs {

ReadAheadOptions ReadAheadOptionsFrom(const Config& config) {
  const CacheConfig& c = config.cache;
  ReadAheadOptions o;
  o.block_size = c.block_size;
  o.max_inflight = c.max_inflight;
  o.window_initial = c.block_size;
  o.window_max = c.readahead_max;
  o.max_get_size = c.max_get_size;
  o.readahead_gets = c.readahead_gets;
  o.readahead_warm = c.readahead_warm;
  o.recent_blocks_mem = c.recent_blocks_mem;
  o.prefetch_mem = c.prefetch_mem ? c.prefetch_mem : DefaultPrefetchMemory();
  o.prefetch_whole = c.prefetch_whole;
  o.seq_tolerance = c.seq_tolerance;
  o.cache_write_queue = c.cache_write_queue;
  o.cache_backfill = c.cache_backfill;
  o.cache_deferred_max = c.cache_deferred_max;
  o.warm_split = c.warm_split;
  o.max_tracked_objects = c.max_tracked_objects;
  o.readahead_idle = c.readahead_idle;
  return o;
}

DiskCacheOptions DiskCacheOptionsFrom(const Config& config, uint64_t capacity_bytes) {
  const CacheConfig& c = config.cache;
  DiskCacheOptions o;
  o.dir = c.dir;
  o.capacity_bytes = capacity_bytes;
  o.block_size = c.block_size;
  o.access_flush_interval = c.access_flush_interval;
  o.access_flush_batch = c.access_flush_batch;
  o.ready_wait = c.cache_ready_wait;
  return o;
}

}  // namespace dsfs
