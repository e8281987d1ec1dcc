// The cache layer's option structs filled from the mount's Config: the one
// place CacheConfig is mapped onto ReadAheadOptions and DiskCacheOptions.
#pragma once

#include <cstdint>

#include "cache/block_fetcher.h"
#include "cache/disk_block_cache.h"
#include "common/config.h"

namespace dsfs {

// cache.*: block size, GET threads, window (one block, doubling up to
// readahead_max), prefetch_mem (0 = min(1 GiB, RAM/8)), prefetch_whole,
// seq_tolerance, cache_write_queue, max_tracked_objects, readahead_idle.
// `buffers` is left null (the daemon owns the pool), `clock` null (steady).
ReadAheadOptions ReadAheadOptionsFrom(const Config& config);

// cache.dir, block size and index timings; capacity_bytes is cache_size=
// already resolved (ResolveCacheSize). `buffers` is left null.
DiskCacheOptions DiskCacheOptionsFrom(const Config& config, uint64_t capacity_bytes);

}  // namespace dsfs
