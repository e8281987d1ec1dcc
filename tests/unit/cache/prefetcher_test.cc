#include "cache/prefetcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backends/memory_store.h"
#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "common/metrics.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::Eventually;
using readahead_test::Gate;
using readahead_test::kMaxWait;
using readahead_test::Pattern;

constexpr uint64_t kBlock = 1024;

ReadAheadOptions Options() {
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.window_initial = kBlock;
  o.window_max = 16 * kBlock;
  o.seq_tolerance = kBlock;
  o.prefetch_mem = 1024 * kBlock;
  o.prefetch_whole = "*.safetensors";
  return o;
}

// A prefetcher over a real fetcher and MemoryStore.
struct Rig {
  explicit Rig(ReadAheadOptions o = Options())
      : options(o),
        budget(o.prefetch_mem),
        fetcher(store, nullptr, o, &metrics),
        prefetcher(fetcher, budget, o, &metrics) {}
  ReadAheadOptions options;
  MemoryStore store;
  Metrics metrics;
  MemoryBudget budget;
  BlockFetcher fetcher;
  Prefetcher prefetcher;
};

uint64_t Window(Rig& rig, const ObjectId& id) { return rig.prefetcher.StateOf(id).window; }

TEST(Prefetcher, WindowGrowsGeometricallyToTheMaximumAndResetsOnAFarSeek) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(200 * kBlock));
  std::vector<uint64_t> windows;
  for (uint64_t b = 0; b < 7; ++b) {
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
    windows.push_back(Window(rig, id) / kBlock);
  }
  EXPECT_EQ(windows, (std::vector<uint64_t>{1, 2, 4, 8, 16, 16, 16}));
  // Read-ahead reaches window blocks past the last read.
  EXPECT_EQ(rig.prefetcher.StateOf(id).scheduled_until, 7u + 16u);

  // A far seek resets the window: the read fetches only what it needs.
  rig.prefetcher.OnRead(id, 150 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), 0u);
  // Reading on from there is sequential again and starts small.
  windows.clear();
  for (uint64_t b = 151; b < 156; ++b) {
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
    windows.push_back(Window(rig, id) / kBlock);
  }
  EXPECT_EQ(windows, (std::vector<uint64_t>{1, 2, 4, 8, 16}));
  // A seek backwards resets too.
  rig.prefetcher.OnRead(id, 10 * kBlock, 100);
  EXPECT_EQ(Window(rig, id), 0u);
}

TEST(Prefetcher, SmallReadsWithinOneBlockDoNotGrowTheWindow) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  for (uint64_t off = 0; off < kBlock; off += 128) rig.prefetcher.OnRead(id, off, 128);
  EXPECT_EQ(Window(rig, id), kBlock);
  rig.prefetcher.OnRead(id, kBlock, 128);
  EXPECT_EQ(Window(rig, id), 2 * kBlock);
}

TEST(Prefetcher, OutOfOrderReadsWithinToleranceStaySequential) {
  ReadAheadOptions o = Options();
  o.seq_tolerance = 2 * kBlock;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.prefetcher.OnRead(id, 0, kBlock);
  rig.prefetcher.OnRead(id, 2 * kBlock, 512);  // arrived before [1 KiB, 2 KiB)
  rig.prefetcher.OnRead(id, kBlock, kBlock);   // the late one: still sequential
  EXPECT_EQ(Window(rig, id), 2 * kBlock);
  rig.prefetcher.OnRead(id, 2 * kBlock + 512, 512);
  rig.prefetcher.OnRead(id, 3 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), 4 * kBlock);
  // Beyond the tolerance it is a seek.
  rig.prefetcher.OnRead(id, 7 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), 0u);
}

// Two handles reading one object in turns: each handle alone skips blocks,
// the object as a whole is read sequentially.
TEST(Prefetcher, SequentialIsPerObjectNotPerHandle) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.prefetcher.Opened(id);
  rig.prefetcher.Opened(id);
  EXPECT_EQ(rig.prefetcher.StateOf(id).handles, 2);
  for (uint64_t b = 0; b < 6; b += 2) {
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);        // handle A: 0, 2, 4
    rig.prefetcher.OnRead(id, (b + 1) * kBlock, kBlock);  // handle B: 1, 3, 5
  }
  EXPECT_EQ(Window(rig, id), 16 * kBlock);
  // Closing one handle keeps the state; closing the last forgets it.
  rig.prefetcher.Released(id);
  EXPECT_TRUE(rig.prefetcher.StateOf(id).tracked);
  rig.prefetcher.Released(id);
  EXPECT_FALSE(rig.prefetcher.StateOf(id).tracked);
}

// Two processes reading the same file at the same pace (both from 0).
TEST(Prefetcher, TwoReadersInLockstepStaySequential) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  for (uint64_t b = 0; b < 4; ++b) {
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
  }
  EXPECT_EQ(Window(rig, id), 8 * kBlock);
}

TEST(Prefetcher, ANewEtagIsANewObject) {
  Rig rig;
  ObjectId v1 = AddObject(rig.store, "f", Pattern(64 * kBlock, 1));
  ObjectId v2 = v1;
  v2.etag = "other";
  for (uint64_t b = 0; b < 3; ++b) rig.prefetcher.OnRead(v1, b * kBlock, kBlock);
  EXPECT_EQ(Window(rig, v1), 4 * kBlock);
  EXPECT_FALSE(rig.prefetcher.StateOf(v2).tracked);
}

TEST(Prefetcher, RandomReadsPrefetchNothing) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  for (uint64_t b : {50, 3, 20, 40, 10, 60, 30}) {
    rig.prefetcher.OnRead(id, b * kBlock + 7, 100);
    EXPECT_EQ(Window(rig, id), 0u);
  }
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 0u);
  EXPECT_EQ(rig.store.counters().get, 0);
}

TEST(Prefetcher, ReadAheadIssuesEachBlockOnceAndTakeFindsIt) {
  Rig rig;
  std::string data = Pattern(40 * kBlock);
  ObjectId id = AddObject(rig.store, "f", data);
  for (uint64_t b = 0; b < 10; ++b) rig.prefetcher.OnRead(id, b * kBlock, kBlock);
  // Blocks 1..25 were scheduled (window 16 after the 10th read), each once.
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 25u);
  auto f = rig.prefetcher.Take(BlockKey{id, 12});
  ASSERT_TRUE(f.has_value());
  ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
  ASSERT_TRUE(f->get().ok());
  EXPECT_EQ(*f->get().value(), data.substr(12 * kBlock, kBlock));
  EXPECT_FALSE(rig.prefetcher.Take(BlockKey{id, 30}).has_value());
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get == 25; }));
  EXPECT_EQ(rig.metrics.GetCounter("dsfs_prefetch_blocks_total").value(), 25u);
}

TEST(Prefetcher, BlocksASequentialReaderPassedAreDropped) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  // As CachingReader does: take the block, then record the read.
  auto read = [&](uint64_t b) {
    (void)rig.prefetcher.Take(BlockKey{id, b});
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
  };
  for (uint64_t b : {0, 1, 2, 4}) read(b);  // skips 3
  EXPECT_EQ(Window(rig, id), 8 * kBlock);
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get == 12; }));  // blocks 1..12
  rig.prefetcher.Reclaim();
  // seq_tolerance is one block: the reader's block and the two before it
  // are kept for requests that arrive out of order; 1 is dropped.
  EXPECT_EQ(rig.budget.used(), 11 * kBlock);  // 2..12
  for (uint64_t b = 5; b <= 11; ++b) read(b);
  // The window is 16 blocks. Read blocks more than 2 behind are dropped:
  // 9..27 are buffered. Block 3 was never read: a late request may still
  // want it, so it stays until it is 4x the tolerance (8 blocks) behind.
  EXPECT_EQ(Window(rig, id), 16 * kBlock);
  EXPECT_EQ(rig.prefetcher.buffered_blocks(), 20u);  // 3 and 9..27
  read(12);
  EXPECT_EQ(rig.prefetcher.buffered_blocks(), 19u);  // 10..28: 3 is dropped
  EXPECT_FALSE(rig.prefetcher.Take(BlockKey{id, 3}).has_value());
  EXPECT_FALSE(rig.prefetcher.Take(BlockKey{id, 4}).has_value());
}

TEST(Prefetcher, BudgetBoundsReadAheadAndReadsFreeIt) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 4 * kBlock;
  o.window_initial = 16 * kBlock;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.prefetcher.OnRead(id, 0, kBlock);
  // The window wants 16 blocks ahead; the budget holds 4.
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 4u);
  EXPECT_EQ(rig.budget.used(), 4 * kBlock);
  EXPECT_EQ(rig.metrics.GetCounter("dsfs_budget_wait_total").value(), 1u);
  // Reading the buffered blocks frees budget for more read-ahead.
  for (uint64_t b = 1; b <= 4; ++b) {
    auto f = rig.prefetcher.Take(BlockKey{id, b});
    ASSERT_TRUE(f.has_value()) << b;
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
  }
  rig.prefetcher.OnRead(id, kBlock, kBlock);
  // Blocks 2..4 were read and are not the reader's current block: evicted
  // for blocks 5..7. Block 1 (current) stays.
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 7u);
  EXPECT_TRUE(rig.prefetcher.Take(BlockKey{id, 1}).has_value());
  EXPECT_FALSE(rig.prefetcher.Take(BlockKey{id, 2}).has_value());
  EXPECT_TRUE(rig.prefetcher.Take(BlockKey{id, 7}).has_value());
  EXPECT_EQ(rig.budget.high_water(), 4 * kBlock);
}

TEST(Prefetcher, WholeFilePrefetchOnOpenProceedsAsBudgetFrees) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 4 * kBlock;
  Rig rig(o);
  std::string data = Pattern(10 * kBlock - 100);
  ObjectId id = AddObject(rig.store, "models/x/model-00001-of-00002.safetensors", data);
  rig.prefetcher.Opened(id);
  EXPECT_TRUE(rig.prefetcher.StateOf(id).whole);
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 4u);  // as far as the budget goes
  // The application reads the file in any order; each block it has read
  // (and left) frees budget for the next one.
  for (uint64_t b : {0, 3, 1, 2, 4, 5, 6, 8, 7, 9}) {
    auto f = rig.prefetcher.Take(BlockKey{id, b});
    ASSERT_TRUE(f.has_value()) << "block " << b << " was not prefetched";
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
    ASSERT_TRUE(f->get().ok());
    EXPECT_EQ(*f->get().value(), data.substr(b * kBlock, kBlock));
    rig.prefetcher.OnRead(id, b * kBlock, 10);
  }
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 10u);
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get == 10; }));
  EXPECT_LE(rig.budget.high_water(), 4 * kBlock);
  rig.prefetcher.Released(id);
  rig.prefetcher.Reclaim();
  EXPECT_EQ(rig.budget.used(), 0u);
  EXPECT_EQ(rig.prefetcher.buffered_blocks(), 0u);
}

TEST(Prefetcher, WholeFileOnlyForMatchingNames) {
  Rig rig;
  ObjectId bin = AddObject(rig.store, "m/model.bin", Pattern(8 * kBlock));
  ObjectId st = AddObject(rig.store, "m/model.safetensors", Pattern(8 * kBlock));
  rig.prefetcher.Opened(bin);
  EXPECT_FALSE(rig.prefetcher.StateOf(bin).whole);
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 0u);
  rig.prefetcher.Opened(st);
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 8u);
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get == 8; }));
}

TEST(Prefetcher, EmptyObjectIsHarmless) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "e.safetensors", "");
  rig.prefetcher.Opened(id);
  rig.prefetcher.OnRead(id, 0, 0);
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 0u);
  rig.prefetcher.Released(id);
  EXPECT_FALSE(rig.prefetcher.StateOf(id).tracked);
}

TEST(Prefetcher, GlobMatching) {
  EXPECT_TRUE(MatchesPrefetchGlob("*.safetensors", "a/b/model-00001-of-00009.safetensors"));
  EXPECT_TRUE(MatchesPrefetchGlob("*.safetensors", "top.safetensors"));
  EXPECT_FALSE(MatchesPrefetchGlob("*.safetensors", "a/b/model.safetensors.tmp"));
  EXPECT_FALSE(MatchesPrefetchGlob("*.safetensors", "a.safetensors/config.json"));
  EXPECT_FALSE(MatchesPrefetchGlob("", "a.safetensors"));
  EXPECT_TRUE(MatchesPrefetchGlob("models/*/*.bin", "models/x/w.bin"));
  EXPECT_FALSE(MatchesPrefetchGlob("models/*/*.bin", "other/x/w.bin"));
}

TEST(Prefetcher, ReleasedDropsBufferedBlocksAndTheirBudgetOnceFetched) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  Gate gate;
  rig.store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kGet) gate.Wait();
  });
  rig.prefetcher.Opened(id);
  for (uint64_t b = 0; b < 4; ++b) rig.prefetcher.OnRead(id, b * kBlock, kBlock);
  EXPECT_GT(rig.budget.used(), 0u);
  rig.prefetcher.Released(id);
  EXPECT_EQ(rig.prefetcher.buffered_blocks(), 0u);
  // Fetches still in flight stay charged until they complete.
  EXPECT_GT(rig.budget.used(), 0u);
  gate.Open();
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
}

TEST(Prefetcher, FailedReadAheadIsDroppedSoTheReaderRefetches) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.store.FailNext(StoreOp::kGet, Status::Transient("reset"), 100);
  rig.prefetcher.OnRead(id, 0, kBlock);  // schedules block 1
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get >= 1; }));
  auto f = rig.prefetcher.Take(BlockKey{id, 1});
  if (f.has_value()) {
    // Taken while in flight: the caller sees the error and refetches.
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
    EXPECT_FALSE(f->get().ok());
  }
  // Once failed, the entry is gone.
  ASSERT_TRUE(Eventually([&] { return !rig.prefetcher.Take(BlockKey{id, 1}).has_value(); }));
}

TEST(Prefetcher, ForgetsIdleObjectsBeyondTheTrackingLimit) {
  ReadAheadOptions o = Options();
  o.max_tracked_objects = 3;
  Rig rig(o);
  std::vector<ObjectId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(AddObject(rig.store, "f" + std::to_string(i), Pattern(4 * kBlock)));
  }
  rig.prefetcher.Opened(ids[0]);  // open: never forgotten
  for (int i = 1; i < 5; ++i) rig.prefetcher.OnRead(ids[i], 2 * kBlock, 10);
  EXPECT_TRUE(rig.prefetcher.StateOf(ids[0]).tracked);
  EXPECT_FALSE(rig.prefetcher.StateOf(ids[1]).tracked);
  EXPECT_FALSE(rig.prefetcher.StateOf(ids[2]).tracked);
  EXPECT_TRUE(rig.prefetcher.StateOf(ids[4]).tracked);
}

}  // namespace
}  // namespace dsfs
