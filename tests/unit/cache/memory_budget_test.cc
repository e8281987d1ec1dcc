#include "cache/memory_budget.h"

#include <gtest/gtest.h>

#include <thread>

namespace dsfs {
namespace {

TEST(MemoryBudget, ReservesUpToCapacityAndTracksHighWater) {
  MemoryBudget b(100);
  EXPECT_TRUE(b.TryReserve(60));
  EXPECT_TRUE(b.TryReserve(40));
  EXPECT_EQ(b.used(), 100u);
  EXPECT_FALSE(b.TryReserve(1));
  EXPECT_EQ(b.waits(), 1u);
  b.Release(70);
  EXPECT_EQ(b.used(), 30u);
  EXPECT_TRUE(b.TryReserve(70));
  b.Release(100);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_EQ(b.high_water(), 100u);
}

TEST(MemoryBudget, TheGaugeFollowsTheBytesInUse) {
  Metrics m;
  Gauge& in_use = m.GetGauge("dsfs_readahead_memory_bytes");
  MemoryBudget b(100, &in_use);
  EXPECT_TRUE(b.TryReserve(60));
  EXPECT_EQ(in_use.value(), 60);
  EXPECT_FALSE(b.TryReserve(41));  // refused: unchanged
  EXPECT_EQ(in_use.value(), 60);
  b.Release(45);
  EXPECT_EQ(in_use.value(), 15);
  b.Release(15);
  EXPECT_EQ(in_use.value(), 0);
}

TEST(MemoryBudget, ZeroCapacityRefusesEverything) {
  MemoryBudget b(0);
  EXPECT_FALSE(b.TryReserve(1));
  EXPECT_TRUE(b.TryReserve(0));
  EXPECT_EQ(b.high_water(), 0u);
}

TEST(MemoryBudget, ConcurrentReserversNeverExceedCapacity) {
  MemoryBudget b(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (b.TryReserve(300)) b.Release(300);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(b.used(), 0u);
  EXPECT_LE(b.high_water(), 1000u);
  EXPECT_GE(b.high_water(), 300u);
}

TEST(MemoryBudget, DefaultIsAnEighthOfRamCappedAtOneGiB) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  EXPECT_EQ(PrefetchMemoryForRam(64 * kGiB), kGiB);
  EXPECT_EQ(PrefetchMemoryForRam(4 * kGiB), kGiB / 2);
  EXPECT_EQ(PrefetchMemoryForRam(0), kGiB);
  uint64_t d = DefaultPrefetchMemory();
  EXPECT_GT(d, 0u);
  EXPECT_LE(d, kGiB);
}

}  // namespace
}  // namespace dsfs
