// Config (common/config.h) is the one source of every tunable and default.
// The components' option structs are filled from it by one *OptionsFrom
// function each, and their own defaults must be a default Config's:
// - DefaultsAreADefaultConfigs: the struct a component gets when nobody
//   sets anything equals the one built from Config{} (no second default).
// - EveryTunableIsMapped: each Config field reaches the struct.
// Each test names every field of the struct in a structured binding, so
// adding a field does not compile until it is mapped and checked here.
#include <gtest/gtest.h>

#include <chrono>

#include "backends/fallback_store.h"
#include "cache/cache_options.h"
#include "cache/memory_budget.h"
#include "common/config.h"
#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"

namespace dsfs {
namespace {

using std::chrono::milliseconds;

TEST(ReadAheadOptionsFrom, DefaultsAreADefaultConfigs) {
  const ReadAheadOptions from = ReadAheadOptionsFrom(Config{});
  const ReadAheadOptions def{};
  const auto& [bs, inflight, max_get, gets, win0, winmax, warm, mem, whole, tol, queue, backfill,
               deferred, split, recent, buffers, tracked, idle, clock] = from;
  EXPECT_EQ(bs, def.block_size);
  EXPECT_EQ(inflight, def.max_inflight);
  EXPECT_EQ(max_get, def.max_get_size);
  EXPECT_EQ(gets, def.readahead_gets);
  EXPECT_EQ(win0, def.window_initial);
  EXPECT_EQ(winmax, def.window_max);
  EXPECT_EQ(warm, def.readahead_warm);
  EXPECT_EQ(mem, def.prefetch_mem);
  EXPECT_EQ(whole, def.prefetch_whole);
  EXPECT_EQ(tol, def.seq_tolerance);
  EXPECT_EQ(queue, def.cache_write_queue);
  EXPECT_EQ(backfill, def.cache_backfill);
  EXPECT_EQ(deferred, def.cache_deferred_max);
  EXPECT_EQ(split, def.warm_split);
  EXPECT_EQ(recent, def.recent_blocks_mem);
  EXPECT_EQ(buffers, nullptr);
  EXPECT_EQ(def.buffers, nullptr);
  EXPECT_EQ(tracked, def.max_tracked_objects);
  EXPECT_EQ(idle, def.readahead_idle);
  EXPECT_EQ(clock, nullptr);
  EXPECT_EQ(def.clock, nullptr);
  // The values themselves are the Config's.
  EXPECT_EQ(bs, CacheConfig{}.block_size);
  EXPECT_EQ(win0, CacheConfig{}.block_size);  // first window: one block
  EXPECT_EQ(mem, DefaultPrefetchMemory());    // prefetch_mem=0: the RAM rule
}

TEST(ReadAheadOptionsFrom, EveryTunableIsMapped) {
  Config c;
  c.cache.block_size = 1 << 20;
  c.cache.max_inflight = 7;
  c.cache.readahead_max = 9 << 20;
  c.cache.prefetch_mem = 33 << 20;
  c.cache.prefetch_whole = "*.bin";
  c.cache.seq_tolerance = 3 << 20;
  c.cache.cache_write_queue = 5;
  c.cache.max_tracked_objects = 11;
  c.cache.readahead_idle = milliseconds(77);
  c.cache.max_get_size = 13 << 20;
  c.cache.readahead_gets = 3;
  c.cache.readahead_warm = 5 << 20;
  c.cache.cache_backfill = !c.cache.cache_backfill;
  c.cache.cache_deferred_max = 17;
  c.cache.warm_split = !c.cache.warm_split;
  c.cache.recent_blocks_mem = 19 << 20;
  const auto& [bs, inflight, max_get, gets, win0, winmax, warm, mem, whole, tol, queue, backfill,
               deferred, split, recent, buffers, tracked, idle, clock] = ReadAheadOptionsFrom(c);
  EXPECT_EQ(recent, 19u << 20);
  EXPECT_EQ(backfill, !CacheConfig{}.cache_backfill);
  EXPECT_EQ(deferred, 17u);
  EXPECT_EQ(split, !CacheConfig{}.warm_split);
  EXPECT_EQ(bs, 1u << 20);
  EXPECT_EQ(inflight, 7);
  EXPECT_EQ(max_get, 13u << 20);
  EXPECT_EQ(gets, 3);
  EXPECT_EQ(win0, 1u << 20);
  EXPECT_EQ(winmax, 9u << 20);
  EXPECT_EQ(warm, 5u << 20);
  EXPECT_EQ(mem, 33u << 20);
  EXPECT_EQ(whole, "*.bin");
  EXPECT_EQ(tol, 3u << 20);
  EXPECT_EQ(queue, 5u);
  EXPECT_EQ(buffers, nullptr);
  EXPECT_EQ(tracked, 11u);
  EXPECT_EQ(idle, milliseconds(77));
  EXPECT_EQ(clock, nullptr);
}

TEST(DiskCacheOptionsFrom, DefaultsAreADefaultConfigs) {
  const DiskCacheOptions from = DiskCacheOptionsFrom(Config{}, 0);
  const DiskCacheOptions def{};
  const auto& [dir, cap, bs, background, flush_every, flush_batch, ready_wait, buffers] = from;
  EXPECT_EQ(dir, def.dir);
  EXPECT_EQ(cap, def.capacity_bytes);
  EXPECT_EQ(bs, def.block_size);
  EXPECT_EQ(background, def.background);
  EXPECT_EQ(flush_every, def.access_flush_interval);
  EXPECT_EQ(flush_batch, def.access_flush_batch);
  EXPECT_EQ(ready_wait, def.ready_wait);
  EXPECT_EQ(buffers, nullptr);
  EXPECT_EQ(def.buffers, nullptr);
  EXPECT_EQ(bs, CacheConfig{}.block_size);
}

TEST(DiskCacheOptionsFrom, EveryTunableIsMapped) {
  Config c;
  c.cache.dir = "/x/cache";
  c.cache.block_size = 1 << 20;
  c.cache.access_flush_interval = milliseconds(123);
  c.cache.access_flush_batch = 17;
  c.cache.cache_ready_wait = milliseconds(456);
  const auto& [dir, cap, bs, background, flush_every, flush_batch, ready_wait, buffers] =
      DiskCacheOptionsFrom(c, 99 << 20);
  EXPECT_EQ(dir, "/x/cache");
  EXPECT_EQ(cap, 99u << 20);
  EXPECT_EQ(bs, 1u << 20);
  EXPECT_TRUE(background);  // not a tunable: off only in tests
  EXPECT_EQ(flush_every, milliseconds(123));
  EXPECT_EQ(flush_batch, 17u);
  EXPECT_EQ(ready_wait, milliseconds(456));
  EXPECT_EQ(buffers, nullptr);
}

TEST(FuseOptionsFrom, DefaultsAreADefaultConfigs) {
  const FuseOptions from = FuseOptionsFrom(Config{});
  const FuseOptions def{};
  const auto& [mnt, fsname, allow_other, read_only, debug, threads, attr_ttl, neg_ttl, ra_kb] =
      from;
  EXPECT_EQ(mnt, def.mountpoint);
  EXPECT_EQ(fsname, def.fsname);
  EXPECT_EQ(allow_other, def.allow_other);
  EXPECT_EQ(read_only, def.read_only);
  EXPECT_EQ(debug, def.debug);
  EXPECT_EQ(threads, def.max_threads);
  EXPECT_EQ(attr_ttl, def.attr_ttl);
  EXPECT_EQ(neg_ttl, def.negative_ttl);
  EXPECT_EQ(ra_kb, def.kernel_readahead_kb);
}

TEST(FuseOptionsFrom, EveryTunableIsMapped) {
  Config c;
  c.daemon.mountpoint = "/mnt/m";
  c.fs.bucket = "b";
  c.fs.allow_other = true;
  c.fs.read_only = true;  // rw is the default
  c.daemon.fuse_debug = true;
  c.daemon.max_threads = 3;
  c.fs.stat_ttl = milliseconds(11);
  c.fs.negative_ttl = milliseconds(22);
  c.daemon.kernel_readahead_kb = 64;
  const auto& [mnt, fsname, allow_other, read_only, debug, threads, attr_ttl, neg_ttl, ra_kb] =
      FuseOptionsFrom(c);
  EXPECT_EQ(mnt, "/mnt/m");
  EXPECT_EQ(fsname, "b");
  EXPECT_TRUE(allow_other);
  EXPECT_TRUE(read_only);
  EXPECT_TRUE(debug);
  EXPECT_EQ(threads, 3u);
  EXPECT_EQ(attr_ttl, milliseconds(11));
  EXPECT_EQ(neg_ttl, milliseconds(22));
  EXPECT_EQ(ra_kb, 64u);
}

TEST(MetadataCacheOptionsFrom, DefaultsAreADefaultConfigs) {
  const MetadataCacheOptions from = MetadataCacheOptionsFrom(FsConfig{});
  const MetadataCacheOptions def{};
  const auto& [stat_ttl, neg_ttl, list_ttl, max_entries, max_listing_bytes, sweep] = from;
  EXPECT_EQ(stat_ttl, def.stat_ttl);
  EXPECT_EQ(neg_ttl, def.negative_ttl);
  EXPECT_EQ(list_ttl, def.list_ttl);
  EXPECT_EQ(max_entries, def.max_entries);
  EXPECT_EQ(max_listing_bytes, def.max_listing_bytes);
  EXPECT_EQ(sweep, def.sweep_interval);
}

TEST(MetadataCacheOptionsFrom, EveryTunableIsMapped) {
  FsConfig fs;
  fs.stat_ttl = milliseconds(1);
  fs.negative_ttl = milliseconds(2);
  fs.list_ttl = milliseconds(3);
  fs.max_stat_entries = 4;
  fs.list_mem = 5;
  fs.list_sweep_interval = milliseconds(6);
  const auto& [stat_ttl, neg_ttl, list_ttl, max_entries, max_listing_bytes, sweep] =
      MetadataCacheOptionsFrom(fs);
  EXPECT_EQ(stat_ttl, milliseconds(1));
  EXPECT_EQ(neg_ttl, milliseconds(2));
  EXPECT_EQ(list_ttl, milliseconds(3));
  EXPECT_EQ(max_entries, 4u);
  EXPECT_EQ(max_listing_bytes, 5u);
  EXPECT_EQ(sweep, milliseconds(6));
}

TEST(FallbackOptionsFrom, DefaultsAreADefaultConfigs) {
  Config c;
  c.fs.prefix = "";  // the default probe prefix
  const FallbackOptions from = FallbackOptionsFrom(c);
  const FallbackOptions def{};
  const auto& [threshold, probe_interval, probe_prefix, probe, proof_rate, proof_queue, parallel,
               stat_ttl, error_backoff, share_workers, hedge_workers, hedge_min_delay, split, proofs, logger] = from;
  EXPECT_EQ(threshold, def.failure_threshold);
  EXPECT_EQ(probe_interval, def.probe_interval);
  EXPECT_EQ(probe_prefix, def.probe_prefix);
  EXPECT_FALSE(probe);
  EXPECT_EQ(proof_rate, def.proof_rate);
  EXPECT_EQ(proof_queue, def.proof_queue);
  EXPECT_EQ(parallel, def.parallel);
  EXPECT_EQ(stat_ttl, def.parallel_stat_ttl);
  EXPECT_EQ(error_backoff, def.parallel_error_backoff);
  EXPECT_EQ(hedge_workers, def.hedge_workers);
  EXPECT_EQ(hedge_min_delay, def.hedge_min_delay);
  EXPECT_EQ(share_workers, def.share_workers);
  const auto& [alpha, window, min_samples, probe_after, sample_ttl, max_in_flight, max_wait] =
      split;
  EXPECT_EQ(alpha, def.split.ewma_alpha);
  EXPECT_EQ(window, def.split.latency_window);
  EXPECT_EQ(min_samples, def.split.min_latency_samples);
  EXPECT_EQ(probe_after, def.split.probe_after);
  EXPECT_EQ(sample_ttl, def.split.sample_ttl);
  EXPECT_EQ(max_in_flight, def.split.max_in_flight);
  EXPECT_EQ(max_wait, def.split.max_wait);
  EXPECT_EQ(proofs, nullptr);
  EXPECT_EQ(logger, nullptr);
}

TEST(FallbackOptionsFrom, EveryTunableIsMapped) {
  Config c;
  c.fallback.failure_threshold = 7;
  c.fallback.probe_interval = milliseconds(1234);
  c.fallback.proof_rate = 99;
  c.fallback.proof_queue = 12;
  c.fallback.parallel = !FallbackConfig{}.parallel;
  c.fallback.parallel_stat_ttl = milliseconds(77);
  c.fallback.parallel_error_backoff = milliseconds(88);
  c.fallback.hedge_workers = 9;
  c.fallback.hedge_min_delay = milliseconds(99);
  c.fallback.share_workers = 11;
  c.fallback.split_ewma_alpha = 0.5;
  c.fallback.split_latency_window = 13;
  c.fallback.split_min_latency_samples = 14;
  c.fallback.split_probe_after = milliseconds(15);
  c.fallback.split_max_wait = milliseconds(16);
  c.fallback.split_sample_ttl = milliseconds(17);
  c.fs.prefix = "models/";
  const auto& [threshold, probe_interval, probe_prefix, probe, proof_rate, proof_queue, parallel,
               stat_ttl, error_backoff, share_workers, hedge_workers, hedge_min_delay, split, proofs, logger] = FallbackOptionsFrom(c);
  EXPECT_EQ(threshold, 7);
  EXPECT_EQ(probe_interval, milliseconds(1234));
  EXPECT_EQ(probe_prefix, "models/");
  EXPECT_FALSE(probe);
  EXPECT_EQ(proof_rate, 99u);
  EXPECT_EQ(proof_queue, 12u);
  EXPECT_EQ(parallel, !FallbackConfig{}.parallel);
  EXPECT_EQ(stat_ttl, milliseconds(77));
  EXPECT_EQ(error_backoff, milliseconds(88));
  EXPECT_EQ(hedge_workers, 9);
  EXPECT_EQ(hedge_min_delay, milliseconds(99));
  EXPECT_EQ(share_workers, 11);
  EXPECT_EQ(split.ewma_alpha, 0.5);
  EXPECT_EQ(split.latency_window, 13u);
  EXPECT_EQ(split.min_latency_samples, 14u);
  EXPECT_EQ(split.probe_after, milliseconds(15));
  EXPECT_EQ(split.max_wait, milliseconds(16));
  EXPECT_EQ(split.sample_ttl, milliseconds(17));
  EXPECT_EQ(proofs, nullptr);
  EXPECT_EQ(logger, nullptr);
}

TEST(WriteOptionsFrom, DefaultsAreADefaultConfigs) {
  const WriteOptions from = WriteOptionsFrom(Config{});
  const WriteOptions def{};
  const auto& [dir, part, parallel, max_dirty, stream, single_copy] = from;
  EXPECT_EQ(stream, def.stream_upload);
  EXPECT_EQ(single_copy, def.max_single_copy);  // S3's limit, not from Config
  EXPECT_EQ(dir, def.staging_dir);
  EXPECT_EQ(part, def.multipart_size);
  EXPECT_EQ(parallel, def.parallel_count);
  EXPECT_EQ(max_dirty, def.max_dirty);
}

TEST(WriteOptionsFrom, EveryTunableIsMappedAndStagingIsUnderTheCache) {
  Config c;
  c.write.tmpdir = "/scratch";
  c.write.multipart_size = 7 << 20;
  c.write.parallel_count = 3;
  c.write.max_dirty = 99 << 20;
  c.write.stream_upload = !c.write.stream_upload;
  const auto& [dir, part, parallel, max_dirty, stream, single_copy] = WriteOptionsFrom(c);
  EXPECT_EQ(stream, !WriteConfig{}.stream_upload);
  EXPECT_EQ(single_copy, WriteOptions{}.max_single_copy);
  EXPECT_EQ(dir, "/scratch");
  EXPECT_EQ(part, uint64_t{7} << 20);
  EXPECT_EQ(parallel, 3);
  EXPECT_EQ(max_dirty, uint64_t{99} << 20);
  c.cache.dir = "/data/cache";
  EXPECT_EQ(WriteOptionsFrom(c).staging_dir, "/data/cache/staging");
}

}  // namespace
}  // namespace dsfs
