#include "cache/recent_blocks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "backends/memory_store.h"
#include "cache/block_fetcher.h"
#include "common/metrics.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::FakeCache;
using readahead_test::Pattern;

BlockKey Key(const std::string& etag, uint64_t index, uint64_t size = 1 << 20) {
  return BlockKey{ObjectId{"m/a.safetensors", etag, size}, index};
}

// A load that returns `bytes` and counts its calls.
RecentBlocks::Load Loader(const std::string& bytes, std::atomic<int>* calls) {
  return [bytes, calls]() -> Result<std::optional<BlockData>> {
    ++*calls;
    return std::optional<BlockData>(Buffer::Copy(bytes));
  };
}

TEST(RecentBlocks, AWholeBlockIsReadOnceAndServedFromMemoryAfter) {
  RecentBlocks recent(4096);
  std::atomic<int> calls{0};
  bool mem = true;
  auto r = recent.GetOrLoad(Key("e1", 0), 1024, Loader(std::string(1024, 'a'), &calls), &mem);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_FALSE(mem);
  for (int i = 0; i < 3; ++i) {
    r = recent.GetOrLoad(Key("e1", 0), 1024, Loader("unused", &calls), &mem);
    ASSERT_TRUE(r.ok() && r->has_value());
    EXPECT_TRUE(mem);
    EXPECT_EQ(***r, std::string(1024, 'a'));
  }
  EXPECT_EQ(calls.load(), 1);
  ASSERT_TRUE(recent.Find(Key("e1", 0)).has_value());
  EXPECT_FALSE(recent.Find(Key("e1", 1)).has_value());
  EXPECT_EQ(recent.bytes(), 1024u);
}

// The key names one object version: another ETag or size is another block.
TEST(RecentBlocks, AnotherVersionOfTheObjectIsNeverServedTheKeptBytes) {
  RecentBlocks recent(1 << 20);
  std::atomic<int> calls{0};
  bool mem = false;
  ASSERT_TRUE(recent.GetOrLoad(Key("old", 3), 4, Loader("old!", &calls), &mem).ok());
  auto r = recent.GetOrLoad(Key("new", 3), 4, Loader("new!", &calls), &mem);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(***r, "new!");
  EXPECT_FALSE(mem);
  r = recent.GetOrLoad(Key("old", 3, 999), 4, Loader("size", &calls), &mem);
  EXPECT_EQ(***r, "size");
  EXPECT_EQ(calls.load(), 3);
}

TEST(RecentBlocks, FailedMissingAndShortLoadsAreNotKept) {
  RecentBlocks recent(1 << 20);
  bool mem = true;
  auto failing = []() -> Result<std::optional<BlockData>> { return Status::IoError("disk"); };
  auto missing = []() -> Result<std::optional<BlockData>> { return std::optional<BlockData>{}; };
  auto r = recent.GetOrLoad(Key("e", 0), 8, failing, &mem);
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_FALSE(mem);
  r = recent.GetOrLoad(Key("e", 0), 8, missing, &mem);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  std::atomic<int> calls{0};
  r = recent.GetOrLoad(Key("e", 0), 8, Loader("short", &calls), &mem);  // 5 of 8 bytes
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(***r, "short");  // the caller decides what a short block is
  EXPECT_EQ(recent.blocks(), 0u);
  r = recent.GetOrLoad(Key("e", 0), 8, Loader("8 bytes!", &calls), &mem);
  EXPECT_FALSE(mem);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(recent.blocks(), 1u);
}

TEST(RecentBlocks, TheLeastRecentlyUsedGoPastTheCapacity) {
  RecentBlocks recent(3 * 100);
  std::atomic<int> calls{0};
  bool mem = false;
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(recent.GetOrLoad(Key("e", i), 100, Loader(std::string(100, 'x'), &calls), &mem).ok());
  }
  ASSERT_TRUE(recent.Find(Key("e", 0)).has_value());  // 0 is now the newest
  ASSERT_TRUE(recent.GetOrLoad(Key("e", 3), 100, Loader(std::string(100, 'y'), &calls), &mem).ok());
  EXPECT_TRUE(recent.Find(Key("e", 0)).has_value());
  EXPECT_FALSE(recent.Find(Key("e", 1)).has_value());  // the oldest went
  EXPECT_TRUE(recent.Find(Key("e", 2)).has_value());
  EXPECT_TRUE(recent.Find(Key("e", 3)).has_value());
  EXPECT_EQ(recent.bytes(), 300u);
  // A block larger than the capacity is never kept, and evicts nothing.
  ASSERT_TRUE(recent.GetOrLoad(Key("e", 9), 400, Loader(std::string(400, 'z'), &calls), &mem).ok());
  EXPECT_EQ(recent.blocks(), 3u);
  RecentBlocks none(0);
  ASSERT_TRUE(none.GetOrLoad(Key("e", 0), 100, Loader(std::string(100, 'x'), &calls), &mem).ok());
  EXPECT_EQ(none.blocks(), 0u);
}

// FUSE threads asking for one block at once: one disk read, every caller
// gets its bytes (or its error).
TEST(RecentBlocks, ConcurrentLookupsOfOneBlockShareOneLoad) {
  for (bool fail : {false, true}) {
    RecentBlocks recent(1 << 20);
    std::atomic<int> calls{0};
    std::atomic<bool> release{false};
    auto slow = [&]() -> Result<std::optional<BlockData>> {
      ++calls;
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (fail) return Status::IoError("disk");
      return std::optional<BlockData>(Buffer::Copy("shared!!"));
    };
    std::atomic<int> got{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        bool mem = false;
        auto r = recent.GetOrLoad(Key("e", 7), 8, slow, &mem);
        if (fail ? !r.ok() : (r.ok() && r->has_value() && ***r == "shared!!")) ++got;
      });
    }
    while (calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the others queue up
    release = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(got.load(), 4) << "fail=" << fail;
    EXPECT_EQ(calls.load(), 1) << "fail=" << fail;
    EXPECT_EQ(recent.blocks(), fail ? 0u : 1u);
  }
}

ReadAheadOptions Blocks1K(uint64_t recent) {
  ReadAheadOptions o;
  o.block_size = 1024;
  o.max_inflight = 2;
  o.prefetch_mem = 64 * 1024;
  o.warm_split = false;
  o.recent_blocks_mem = recent;
  return o;
}

// The kernel reads a block in several requests: the fetcher reads and
// verifies it from the disk once (recent_blocks_mem=0: every time).
TEST(BlockFetcherRecent, NeighbouringLookupsOfACachedBlockReadTheDiskOnce) {
  for (uint64_t recent : {uint64_t{4096}, uint64_t{0}}) {
    MemoryStore store;
    std::string data = Pattern(2048);
    ObjectId id = AddObject(store, "a", data);
    FakeCache cache;
    cache.Insert(BlockKey{id, 1}, data.substr(1024));
    Metrics metrics;
    BlockFetcher f(store, &cache, Blocks1K(recent), &metrics);
    for (int i = 0; i < 4; ++i) {
      auto hit = f.LookupCache(BlockKey{id, 1});
      ASSERT_TRUE(hit.has_value());
      EXPECT_EQ(**hit, data.substr(1024));
    }
    EXPECT_EQ(cache.gets(), recent ? 1 : 4);
    EXPECT_EQ(f.stats().cache_hits, 4u);
    EXPECT_EQ(f.stats().recent_hits, recent ? 3u : 0u);
    EXPECT_EQ(metrics.GetCounter("dsfs_cache_recent_hits_total").value(), recent ? 3u : 0u);
    EXPECT_EQ(metrics.GetCounter("dsfs_cache_hits_total").value(), 4u);
    // LookupRecent reads nothing: a kept block, or nullopt.
    EXPECT_EQ(f.LookupRecent(BlockKey{id, 1}).has_value(), recent != 0);
    EXPECT_FALSE(f.LookupRecent(BlockKey{id, 0}).has_value());
    EXPECT_EQ(cache.gets(), recent ? 1 : 4);
    EXPECT_EQ(store.counters().get, 0);
  }
}

}  // namespace
}  // namespace dsfs
