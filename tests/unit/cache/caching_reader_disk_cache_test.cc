// CachingReader over the real DiskBlockCache (the other read-ahead tests
// use a fake cache): blocks fetched once are served from the cache afterwards.
#include <gtest/gtest.h>

#include <string>

#include "backends/memory_store.h"
#include "cache/caching_reader.h"
#include "cache/disk_block_cache.h"
#include "readahead_test_util.h"
#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::Pattern;

TEST(CachingReaderWithDiskCache, SecondPassMakesNoGet) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(50 * kBlock + 99);
  ObjectId id = AddObject(store, "m/w.safetensors", data);
  testing::TempDir dir;
  auto cache = testing::MustOpen(testing::DiskOpts(dir.path(), 1 << 20, kBlock), nullptr);
  ASSERT_NE(cache, nullptr);
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.window_initial = kBlock;
  o.window_max = 8 * kBlock;
  o.prefetch_mem = 32 * kBlock;
  o.cache_write_queue = 64;  // no Put dropped: the second pass must hit
  o.warm_split = false;      // every hit from the disk (MemoryStore is faster)
  CachingReader reader(store, cache.get(), o);
  for (int pass = 0; pass < 2; ++pass) {
    reader.Opened(id);
    std::string out(data.size(), '\0');
    for (uint64_t off = 0; off < data.size(); off += 10000) {
      Result<size_t> n = reader.Read(id, off, 10000, out.data() + off);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
    }
    EXPECT_EQ(out, data);
    reader.Released(id);  // forgets read-ahead state, keeps cached blocks
    reader.fetcher().FlushCacheWrites();
    EXPECT_EQ(store.counters().get, 51) << "pass " << pass;
  }
  EXPECT_EQ(cache->block_count(), 51u);
}

// dsfsctl warm's core: Warm puts blocks on disk (they are there when it
// returns), skips those the cache holds, and a later read makes no GET.
TEST(CachingReaderWithDiskCache, WarmFetchesMissingBlocksAndSkipsCachedOnes) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(10 * kBlock + 7);
  ObjectId id = AddObject(store, "m/w.safetensors", data);
  testing::TempDir dir;
  auto cache = testing::MustOpen(testing::DiskOpts(dir.path(), 1 << 20, kBlock), nullptr);
  ASSERT_NE(cache, nullptr);
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.prefetch_mem = 32 * kBlock;
  CachingReader reader(store, cache.get(), o);

  auto info = reader.Warm(id, 0, 0, nullptr);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->blocks, 11u);
  EXPECT_EQ(info->block_size, kBlock);
  EXPECT_EQ(info->fetched + info->skipped, 0u);

  auto first = reader.Warm(id, 2, 4, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->fetched, 4u);
  EXPECT_EQ(first->skipped, 0u);
  EXPECT_EQ(cache->block_count(), 4u);  // on disk at return, no flush needed

  auto all = reader.Warm(id, 0, 100, nullptr);  // clamped to the object
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->fetched, 7u);
  EXPECT_EQ(all->skipped, 4u);
  EXPECT_EQ(cache->block_count(), 11u);
  const uint64_t gets = store.counters().get;

  auto again = reader.Warm(id, 0, 11, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fetched, 0u);
  EXPECT_EQ(again->skipped, 11u);
  std::string out(data.size(), '\0');
  ASSERT_TRUE(reader.Read(id, 0, data.size(), out.data()).ok());
  EXPECT_EQ(out, data);
  EXPECT_EQ(store.counters().get, gets);
}

TEST(CachingReaderWithDiskCache, WarmWithoutACacheIsNotSupported) {
  MemoryStore store;
  ObjectId id = AddObject(store, "a", Pattern(100));
  ReadAheadOptions o;
  o.block_size = 4096;
  CachingReader reader(store, nullptr, o);
  EXPECT_EQ(reader.Warm(id, 0, 1, nullptr).status().code(), StatusCode::kNotSupported);
}

}  // namespace
}  // namespace dsfs
