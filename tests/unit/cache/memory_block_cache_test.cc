#include "cache/memory_block_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using testing::Bytes;
using testing::Key;

bool Has(MemoryBlockCache& c, const BlockKey& k) {
  auto r = c.Get(k);
  return r.ok() && r->has_value();
}

TEST(MemoryBlockCache, HitAndMiss) {
  Metrics m;
  MemoryBlockCache c(1000, &m);
  auto miss = c.Get(Key("a", 0));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  BlockData d = Bytes(100, 1);
  ASSERT_TRUE(c.Put(Key("a", 0), d).ok());
  auto hit = c.Get(Key("a", 0));
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ(hit->value().get(), d.get());  // shared, not copied
  EXPECT_FALSE(Has(c, Key("a", 0, "\"other-etag\"")));
  EXPECT_EQ(m.GetCounter("dsfs_cache_memory_hits_total").value(), 1u);
  EXPECT_EQ(m.GetCounter("dsfs_cache_memory_misses_total").value(), 2u);
}

TEST(MemoryBlockCache, BoundedByBytesEvictsLeastRecentlyUsed) {
  MemoryBlockCache c(300);
  ASSERT_TRUE(c.Put(Key("a", 0), Bytes(100, 0)).ok());
  ASSERT_TRUE(c.Put(Key("a", 1), Bytes(100, 1)).ok());
  ASSERT_TRUE(c.Put(Key("a", 2), Bytes(100, 2)).ok());
  EXPECT_EQ(c.UsedBytes(), 300u);
  EXPECT_TRUE(Has(c, Key("a", 0)));  // 0 is now the most recent; 1 the least
  ASSERT_TRUE(c.Put(Key("a", 3), Bytes(150, 3)).ok());
  EXPECT_LE(c.UsedBytes(), 300u);
  EXPECT_FALSE(Has(c, Key("a", 1)));
  EXPECT_FALSE(Has(c, Key("a", 2)));
  EXPECT_TRUE(Has(c, Key("a", 0)));
  EXPECT_TRUE(Has(c, Key("a", 3)));
  EXPECT_EQ(c.UsedBytes(), 250u);
}

TEST(MemoryBlockCache, ReplaceUpdatesSize) {
  MemoryBlockCache c(1000);
  ASSERT_TRUE(c.Put(Key("a", 0), Bytes(100, 0)).ok());
  ASSERT_TRUE(c.Put(Key("a", 0), Bytes(40, 1)).ok());
  EXPECT_EQ(c.UsedBytes(), 40u);
  EXPECT_EQ(c.block_count(), 1u);
  EXPECT_EQ(c.Get(Key("a", 0))->value()->size(), 40u);
}

TEST(MemoryBlockCache, TooLargeBlockIsNotStoredAndNullIsRefused) {
  MemoryBlockCache c(100);
  ASSERT_TRUE(c.Put(Key("a", 0), Bytes(50, 0)).ok());
  EXPECT_TRUE(c.Put(Key("big", 0), Bytes(101, 0)).ok());
  EXPECT_FALSE(Has(c, Key("big", 0)));
  EXPECT_TRUE(Has(c, Key("a", 0)));  // nothing evicted for it
  EXPECT_EQ(c.Put(Key("a", 1), nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(MemoryBlockCache, ConcurrentGetAndPut) {
  MemoryBlockCache c(64 * 100);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        uint64_t idx = static_cast<uint64_t>((i * 7 + t) % 200);
        if (i % 3 == 0) {
          if (!c.Put(Key("f", idx), Bytes(100, idx)).ok()) ++bad;
        } else {
          auto r = c.Get(Key("f", idx));
          if (!r.ok() || (r->has_value() && ***r != *Bytes(100, idx))) ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(c.UsedBytes(), 6400u);
}

}  // namespace
}  // namespace dsfs
