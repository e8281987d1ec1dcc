#include <gtest/gtest.h>

#include <map>

#include "cache/disk_block_cache.h"
#include "cache/memory_block_cache.h"
#include "cache/tiered_block_cache.h"
#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using namespace dsfs::testing;  // NOLINT

// A disk tier that counts calls and fails on demand.
class FakeTier : public BlockCache {
 public:
  Result<std::optional<BlockData>> Get(const BlockKey& key) override {
    ++gets;
    if (fail_get) return Status::IoError("injected read error");
    auto it = blocks.find(key.index);
    if (it == blocks.end()) return std::optional<BlockData>();
    return std::optional<BlockData>(it->second);
  }
  Status Put(const BlockKey& key, BlockData data) override {
    ++puts;
    if (fail_put) return Status::IoError("injected disk full");
    blocks[key.index] = std::move(data);
    return Status::Ok();
  }
  uint64_t UsedBytes() const override { return 7; }

  std::map<uint64_t, BlockData> blocks;
  int gets = 0;
  int puts = 0;
  bool fail_get = false;
  bool fail_put = false;
};

struct Tiers {
  Tiers() {
    auto mem = std::make_unique<MemoryBlockCache>(1 << 20);
    auto disk = std::make_unique<FakeTier>();
    memory = mem.get();
    fake = disk.get();
    tiered = std::make_unique<TieredBlockCache>(std::move(mem), std::move(disk), &metrics);
  }
  Metrics metrics;
  MemoryBlockCache* memory;
  FakeTier* fake;
  std::unique_ptr<TieredBlockCache> tiered;
};

TEST(TieredBlockCache, PutGoesToBothAndMemoryAnswersFirst) {
  Tiers t;
  ASSERT_TRUE(t.tiered->Put(Key("f", 1), Bytes(100, 1)).ok());
  EXPECT_EQ(t.fake->puts, 1);
  EXPECT_EQ(t.memory->block_count(), 1u);
  EXPECT_EQ(Lookup(*t.tiered, Key("f", 1), Bytes(100, 1)), 1);
  EXPECT_EQ(t.fake->gets, 0);  // memory hit: disk not asked
  EXPECT_EQ(t.tiered->UsedBytes(), 100u + 7u);
}

TEST(TieredBlockCache, DiskHitIsPromoted) {
  Tiers t;
  t.fake->blocks[2] = Bytes(100, 2);
  EXPECT_EQ(Lookup(*t.tiered, Key("f", 2), Bytes(100, 2)), 1);
  EXPECT_EQ(t.fake->gets, 1);
  EXPECT_EQ(t.memory->block_count(), 1u);
  EXPECT_EQ(Lookup(*t.tiered, Key("f", 2), Bytes(100, 2)), 1);
  EXPECT_EQ(t.fake->gets, 1);  // second read served from memory
  EXPECT_EQ(CounterValue(t.metrics, "dsfs_cache_tier_promotions_total"), 1u);
}

TEST(TieredBlockCache, MissInBothIsAMiss) {
  Tiers t;
  EXPECT_EQ(Lookup(*t.tiered, Key("f", 3), Bytes(1, 3)), 0);
  EXPECT_EQ(t.fake->gets, 1);
}

TEST(TieredBlockCache, DiskPutFailureIsCountedNotReturned) {
  Tiers t;
  t.fake->fail_put = true;
  EXPECT_TRUE(t.tiered->Put(Key("f", 1), Bytes(100, 1)).ok());
  EXPECT_EQ(CounterValue(t.metrics, "dsfs_cache_tier_disk_errors_total"), 1u);
  EXPECT_EQ(Lookup(*t.tiered, Key("f", 1), Bytes(100, 1)), 1);  // memory has it
}

TEST(TieredBlockCache, DiskReadErrorIsAMiss) {
  Tiers t;
  t.fake->fail_get = true;
  auto r = t.tiered->Get(Key("f", 1));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(CounterValue(t.metrics, "dsfs_cache_tier_disk_errors_total"), 1u);
}

TEST(TieredBlockCache, MemoryRefusalIsReturnedAndDiskNotWritten) {
  Tiers t;
  EXPECT_EQ(t.tiered->Put(Key("f", 1), nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.fake->puts, 0);
}

TEST(TieredBlockCache, OverRealDiskCacheSurvivesRestart) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  {
    auto disk = MustOpen(DiskOpts(dir), nullptr);
    ASSERT_TRUE(disk);
    TieredBlockCache t(std::make_unique<MemoryBlockCache>(1 << 20), std::move(disk));
    ASSERT_TRUE(t.Put(Key("f", 1), Bytes(5000, 1)).ok());
  }
  auto disk = MustOpen(DiskOpts(dir), nullptr);
  ASSERT_TRUE(disk);
  auto mem = std::make_unique<MemoryBlockCache>(1 << 20);
  MemoryBlockCache* m = mem.get();
  TieredBlockCache t(std::move(mem), std::move(disk));
  EXPECT_EQ(Lookup(t, Key("f", 1), Bytes(5000, 1)), 1);
  EXPECT_EQ(m->block_count(), 1u);
}

}  // namespace
}  // namespace dsfs
