#include "cache/prefetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include "backends/memory_store.h"
#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "prefetcher_test_rig.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using prefetcher_test::kBlock;
using prefetcher_test::OpenAndRead;
using prefetcher_test::Options;
using prefetcher_test::Rig;
using prefetcher_test::RunOptions;

using readahead_test::AddObject;
using readahead_test::CancellableStore;
using readahead_test::Eventually;
using readahead_test::Gate;
using readahead_test::kMaxWait;
using readahead_test::Pattern;

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

// Sequential() answers with OnRead's rule, before the read: offset 0 for a
// first read, within seq_tolerance of where the last read ended after.
TEST(Prefetcher, SequentialTellsWhetherAReadContinuesTheLastOne) {
  Rig rig;
  ObjectId id = AddObject(rig.store, "f", Pattern(200 * kBlock));
  EXPECT_TRUE(rig.prefetcher.Sequential(id, 0));
  EXPECT_FALSE(rig.prefetcher.Sequential(id, 50 * kBlock));
  rig.prefetcher.OnRead(id, 50 * kBlock, 100);
  EXPECT_TRUE(rig.prefetcher.Sequential(id, 50 * kBlock + 100));
  EXPECT_TRUE(rig.prefetcher.Sequential(id, 50 * kBlock + 100 + kBlock));  // the tolerance
  EXPECT_FALSE(rig.prefetcher.Sequential(id, 52 * kBlock + 200));
  EXPECT_FALSE(rig.prefetcher.Sequential(id, 10 * kBlock));
  rig.prefetcher.OnRead(id, 10 * kBlock, 100);  // a seek
  EXPECT_TRUE(rig.prefetcher.Sequential(id, 10 * kBlock + 100));
  EXPECT_FALSE(rig.prefetcher.Sequential(id, 50 * kBlock + 100));
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
  // seq_tolerance is one block: the reader's block and the two before it
  // are kept for requests that arrive out of order; 1 is dropped once its
  // GET has ended (a running GET stays charged: the store counts a GET
  // when it starts).
  EXPECT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 11 * kBlock;  // 2..12
  })) << rig.budget.used() / kBlock
      << " blocks charged";
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
  OpenAndRead(rig.prefetcher, id);
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
  // The last GET may still be running (the store counts it when it
  // starts): its bytes stay charged until it ends.
  EXPECT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  })) << rig.budget.used();
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
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 0u);  // from the first read on
  rig.prefetcher.OnRead(st, 0, 10);
  rig.prefetcher.ReadEnded(st);
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
  ASSERT_TRUE(gate.AwaitWaiters(rig.options.max_inflight));
  rig.prefetcher.Released(id);
  EXPECT_EQ(rig.prefetcher.buffered_blocks(), 0u);
  // GETs still running stay charged until they complete (queued ones
  // were cancelled and returned theirs).
  EXPECT_EQ(rig.budget.used(), rig.options.max_inflight * kBlock);
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

// Sequential reads of blocks [0, n) of id, as CachingReader reports them.
void ReadSequentially(Rig& rig, const ObjectId& id, uint64_t n) {
  for (uint64_t b = 0; b < n; ++b) rig.prefetcher.OnRead(id, b * kBlock, kBlock);
}

// Closing the last handle takes back the stream's read-ahead: fetches still
// queued are never issued and their budget returns at once; GETs already
// running are aborted through their token, and stay charged until they end.
TEST(Prefetcher, CloseCancelsReadAheadAndReturnsItsBudget) {
  ReadAheadOptions o = Options();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.store.Hold(true);
  rig.prefetcher.Opened(id);
  ReadSequentially(rig, id, 4);  // window 8: blocks 1..11 issued
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 11u);
  ASSERT_TRUE(rig.store.AwaitWaiting(2));  // both GET threads are in the store
  EXPECT_EQ(rig.budget.used(), 11 * kBlock);
  rig.prefetcher.Released(id);
  FetcherStats s = rig.fetcher.stats();
  EXPECT_EQ(s.cancelled_queued, 9u);
  EXPECT_EQ(s.cancelled_running, 2u);
  EXPECT_LE(rig.budget.used(), 2 * kBlock);  // at most the two running GETs
  // The store aborts them; nothing else is asked of it.
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
  EXPECT_EQ(rig.prefetcher.closing_streams(), 0u);
  EXPECT_EQ(rig.store.aborted(), 2);
  EXPECT_EQ(rig.store.counters().get, 0);
}

// A closed stream whose GETs cannot be aborted (the store ignores the
// token) stays charged, on its own account, until they end.
TEST(Prefetcher, ClosedStreamStaysChargedUntilItsGetsEnd) {
  ReadAheadOptions o = Options();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  Gate gate;
  rig.store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kGet) gate.Wait();
  });
  rig.prefetcher.Opened(id);
  ReadSequentially(rig, id, 4);
  ASSERT_TRUE(gate.AwaitWaiters(2));
  rig.prefetcher.Released(id);
  EXPECT_EQ(rig.budget.used(), 2 * kBlock);
  EXPECT_EQ(rig.prefetcher.closing_streams(), 1u);
  gate.Open();
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
  EXPECT_EQ(rig.prefetcher.closing_streams(), 0u);
  EXPECT_EQ(rig.store.counters().get, 2);  // nothing issued after the close
}

// A far seek cancels the read-ahead of the old position the same way.
TEST(Prefetcher, FarSeekCancelsReadAhead) {
  ReadAheadOptions o = Options();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.store.Hold(true);
  rig.prefetcher.Opened(id);
  ReadSequentially(rig, id, 4);
  ASSERT_TRUE(rig.store.AwaitWaiting(2));
  rig.prefetcher.OnRead(id, 50 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), 0u);
  EXPECT_EQ(rig.fetcher.stats().cancelled_queued, 9u);
  EXPECT_EQ(rig.fetcher.stats().cancelled_running, 2u);
  EXPECT_LE(rig.prefetcher.StateOf(id).charged, 2 * kBlock);  // on the stream's account
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
  EXPECT_EQ(rig.store.aborted(), 2);
  EXPECT_EQ(rig.store.counters().get, 0);
  // Reading on from the new position is read-ahead as usual.
  rig.store.Hold(false);
  rig.prefetcher.OnRead(id, 51 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), kBlock);
  ASSERT_TRUE(Eventually([&] { return rig.store.counters().get == 1; }));
}

// A read beyond seq_tolerance but within 4x of it from a block the stream
// holds is most likely the kernel's parallel read-ahead delivering requests
// out of order: the stream's fetches are left to finish, so a reader going
// on finds them instead of fetching them twice.
TEST(Prefetcher, SeekNearTheReadAheadKeepsItsFetches) {
  ReadAheadOptions o = Options();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.store.Hold(true);
  rig.prefetcher.Opened(id);
  ReadSequentially(rig, id, 4);  // blocks 1..11 in flight
  ASSERT_TRUE(rig.store.AwaitWaiting(2));
  // Not sequential (11 blocks past the expected offset), but 4 blocks past
  // the last held block: within 4x (1 + seq_tolerance / block) = 8.
  rig.prefetcher.OnRead(id, 15 * kBlock, kBlock);
  EXPECT_EQ(Window(rig, id), 0u);
  EXPECT_EQ(rig.fetcher.stats().cancelled_queued, 0u);
  EXPECT_EQ(rig.fetcher.stats().cancelled_running, 0u);
  EXPECT_EQ(rig.prefetcher.StateOf(id).blocks, 11u);
  rig.store.Hold(false);
  for (uint64_t b = 1; b <= 11; ++b) {
    auto f = rig.prefetcher.Take(BlockKey{id, b});
    ASSERT_TRUE(f.has_value()) << b;
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
    ASSERT_TRUE(f->get().ok()) << b;
  }
  EXPECT_EQ(rig.store.counters().get, 11);
}

// Destroying the prefetcher (shutdown) cancels what every stream started
// and returns all its budget; no queued read-ahead is issued afterwards, and
// the fetcher's destructor does not wait for the GETs that were running.
TEST(Prefetcher, ShutdownCancelsReadAheadAndReturnsTheBudget) {
  ReadAheadOptions o = Options();
  o.max_inflight = 2;
  CancellableStore store;
  MemoryBudget budget(o.prefetch_mem);
  auto fetcher = std::make_unique<BlockFetcher>(store, nullptr, o);
  auto prefetcher = std::make_unique<Prefetcher>(*fetcher, budget, o);
  ObjectId a = AddObject(store, "a.safetensors", Pattern(40 * kBlock));
  ObjectId b = AddObject(store, "b", Pattern(40 * kBlock));
  store.Hold(true);
  OpenAndRead(*prefetcher, a);  // whole file: 40 blocks
  for (uint64_t i = 0; i < 4; ++i) prefetcher->OnRead(b, i * kBlock, kBlock);  // 11 blocks
  ASSERT_TRUE(store.AwaitWaiting(2));
  prefetcher.reset();
  EXPECT_EQ(budget.used(), 0u);
  FetcherStats s = fetcher->stats();
  EXPECT_EQ(s.cancelled_queued, 40u + 11u - 2u);
  EXPECT_EQ(s.cancelled_running, 2u);
  auto destroyed = std::async(std::launch::async, [&] { fetcher.reset(); });
  // Generous: the held GETs would keep it for kMaxWait (20 s).
  ASSERT_EQ(destroyed.wait_for(kMaxWait / 2), std::future_status::ready);
  EXPECT_EQ(store.aborted(), 2);
  EXPECT_EQ(store.counters().get, 0);
}

// A loader opens every shard first and reads them in another order: a
// shard opened but not read yet takes no budget (whole-file read-ahead
// starts at a shard's first read), so the shard it reads gets all of it;
// a handle opened over pages the kernel caches (a load run again) sends no
// reads and costs nothing. Reclaim from a stream that stopped reading: the
// IdleOptions tests below.
TEST(Prefetcher, AShardOpenedButNotReadTakesNoBudget) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 4 * kBlock;
  Rig rig(o);
  std::vector<ObjectId> shards;
  for (int i = 0; i < 3; ++i) {
    shards.push_back(AddObject(rig.store, "m/shard-" + std::to_string(i) + ".safetensors",
                               Pattern(8 * kBlock, i + 1)));
    rig.prefetcher.Opened(shards.back());
    EXPECT_TRUE(rig.prefetcher.StateOf(shards.back()).whole);
  }
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 0u);
  EXPECT_EQ(rig.budget.used(), 0u);
  // The loader reads shard 2 first.
  rig.prefetcher.OnRead(shards[2], 0, 10);
  EXPECT_EQ(rig.prefetcher.StateOf(shards[2]).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.StateOf(shards[0]).charged, 0u);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 0u);
  for (uint64_t b = 0; b < 4; ++b) {
    auto f = rig.prefetcher.Take(BlockKey{shards[2], b});
    ASSERT_TRUE(f.has_value()) << b;
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
    ASSERT_TRUE(f->get().ok());
    EXPECT_EQ(*f->get().value(), Pattern(8 * kBlock, 3).substr(b * kBlock, kBlock));
  }
  rig.prefetcher.ReadEnded(shards[2]);
  // Shard 2 done and closed: shard 0, read next, gets the budget; shard 1,
  // still not read, none.
  rig.prefetcher.Released(shards[2]);
  rig.prefetcher.Reclaim();
  EXPECT_EQ(rig.prefetcher.StateOf(shards[0]).charged, 0u);
  rig.prefetcher.OnRead(shards[0], 0, 10);
  EXPECT_EQ(rig.prefetcher.StateOf(shards[0]).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.StateOf(shards[1]).charged, 0u);
  EXPECT_LE(rig.budget.high_water(), 4 * kBlock);
  rig.prefetcher.ReadEnded(shards[0]);
}

// Two streams a and b over a budget of 4 blocks, idle after 1 s of clock.
ReadAheadOptions IdleOptions(ManualClock* clock) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 4 * kBlock;
  o.window_initial = 4 * kBlock;
  o.readahead_idle = std::chrono::seconds(1);
  o.clock = clock;
  return o;
}

// Two streams both reading share the budget as before (no reclaim between
// them); once one stops reading for readahead_idle, the other may take its
// unread read-ahead.
TEST(Prefetcher, BudgetOfAStreamThatStoppedReadingIsReclaimable) {
  ManualClock clock;
  Rig rig(IdleOptions(&clock));
  ObjectId a = AddObject(rig.store, "a", Pattern(32 * kBlock, 1));
  ObjectId b = AddObject(rig.store, "b", Pattern(32 * kBlock, 2));
  rig.prefetcher.OnRead(a, 0, kBlock);  // read-ahead 1..4: the whole budget
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 4 * kBlock);
  ASSERT_TRUE(Eventually([&] { return rig.prefetcher.StateOf(a).ready == 4; }));
  rig.prefetcher.ReadEnded(a);
  rig.prefetcher.OnRead(b, 0, kBlock);
  rig.prefetcher.ReadEnded(b);
  EXPECT_EQ(rig.prefetcher.StateOf(b).charged, 0u);  // a is reading: kept
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 0u);
  clock.Advance(std::chrono::milliseconds(1500));
  rig.prefetcher.OnRead(b, kBlock, kBlock);  // a has been idle for 1.5 s
  EXPECT_EQ(rig.prefetcher.StateOf(b).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 0u);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 4u);
  // a reads again: its read-ahead is fetched anew once budget frees.
  EXPECT_EQ(rig.prefetcher.StateOf(a).scheduled_until, 1u);
}

// A read that waits for its block (a slow GET) longer than readahead_idle
// keeps its stream reading: its read-ahead is not taken from it (a cold
// 4-shard mmap load lost 257 blocks of read-ahead that way). Once the read
// has ended, the stream is idle readahead_idle later.
TEST(Prefetcher, AStreamWhoseReadWaitsIsNotIdle) {
  ManualClock clock;
  Rig rig(IdleOptions(&clock));
  ObjectId a = AddObject(rig.store, "a", Pattern(32 * kBlock, 1));
  ObjectId b = AddObject(rig.store, "b", Pattern(32 * kBlock, 2));
  rig.prefetcher.OnRead(a, 0, kBlock);  // in progress: waits for its GET
  ASSERT_TRUE(Eventually([&] { return rig.prefetcher.StateOf(a).ready == 4; }));
  clock.Advance(std::chrono::milliseconds(1500));
  rig.prefetcher.OnRead(b, 0, kBlock);
  rig.prefetcher.ReadEnded(b);
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 0u);
  rig.prefetcher.ReadEnded(a);
  clock.Advance(std::chrono::milliseconds(500));
  rig.prefetcher.OnRead(b, kBlock, kBlock);  // a ended 0.5 s ago: still reading
  rig.prefetcher.ReadEnded(b);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 0u);
  clock.Advance(std::chrono::milliseconds(1000));
  rig.prefetcher.OnRead(b, 2 * kBlock, kBlock);  // now 1.5 s: idle
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 0u);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 4u);
}

// Whole-file read-ahead in runs: one GET per run, every block prefetched
// once and found by Take with its own bytes, charged block by block.
TEST(Prefetcher, ReadAheadInRunsIsOneGetPerRun) {
  Rig rig(RunOptions());
  std::string data = Pattern(16 * kBlock, 4);
  ObjectId id = AddObject(rig.store, "m/model.safetensors", data);
  OpenAndRead(rig.prefetcher, id);  // whole file: runs of 16 / 4 = 4 blocks
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 16u);
  EXPECT_EQ(rig.budget.used(), 16 * kBlock);
  // Fetched before they are taken (a reader taking a block of a run not
  // started yet would have it fetched alone).
  ASSERT_TRUE(Eventually([&] { return rig.prefetcher.StateOf(id).ready == 16; }));
  for (uint64_t b = 0; b < 16; ++b) {
    auto f = rig.prefetcher.Take(BlockKey{id, b});
    ASSERT_TRUE(f.has_value()) << b;
    ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
    ASSERT_TRUE(f->get().ok());
    EXPECT_EQ(*f->get().value(), data.substr(b * kBlock, kBlock));
  }
  EXPECT_EQ(rig.store.counters().get, 4);
  EXPECT_EQ(rig.fetcher.stats().run_gets, 4u);
  EXPECT_EQ(rig.store.counters().get_bytes, data.size());
  rig.prefetcher.Released(id);
  rig.prefetcher.Reclaim();
  EXPECT_EQ(rig.budget.used(), 0u);
}

// A whole-file prefetch under a budget of 10 blocks, in runs of 4: budget
// comes back a block at a time as the reader moves on, and a run that only
// partly fits is not sent while the stream still holds a whole run ahead of
// its reader: every GET is a whole run (the old way sent what fit, GETs of
// one block).
TEST(Prefetcher, ABudgetFreedBlockByBlockStillGetsWholeRuns) {
  ReadAheadOptions o = RunOptions();
  o.prefetch_mem = 10 * kBlock;
  Rig rig(o);
  constexpr uint64_t kBlocks = 40;
  std::string data = Pattern(kBlocks * kBlock, 5);
  ObjectId id = AddObject(rig.store, "m/model.safetensors", data);
  rig.prefetcher.Opened(id);
  auto arrived = [&] {
    Prefetcher::ObjectState st = rig.prefetcher.StateOf(id);
    return st.ready == st.blocks;
  };
  for (uint64_t b = 0; b < kBlocks; ++b) {
    // A reader slower than the GETs: it never takes a block of a run still
    // queued (that block would be fetched on its own, for the reader).
    ASSERT_TRUE(Eventually(arrived)) << b;
    auto f = rig.prefetcher.Take(BlockKey{id, b});
    ASSERT_TRUE(f.has_value() || b == 0) << "block " << b << " was never read ahead";
    if (f) {
      ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
      ASSERT_TRUE(f->get().ok());
      EXPECT_EQ(*f->get().value(), data.substr(b * kBlock, kBlock)) << b;
    }
    rig.prefetcher.OnRead(id, b * kBlock, kBlock);
    rig.prefetcher.ReadEnded(id);
    EXPECT_LE(rig.budget.used(), o.prefetch_mem);
  }
  ASSERT_TRUE(Eventually(arrived));
  const FetcherStats st = rig.fetcher.stats();
  // The prefetch starts at the first read, at block 0: 10 runs of 4.
  EXPECT_EQ(st.store_blocks, kBlocks);
  EXPECT_EQ(st.store_gets, kBlocks / 4) << "run GETs " << st.run_gets;
  rig.prefetcher.Released(id);
}

// Closing a stream whose read-ahead runs in multi-block GETs: queued runs
// are never issued and their budget returns at once; each running GET is
// aborted once all its blocks are let go, and stays charged until it ends.
TEST(Prefetcher, CloseCancelsRunsAndReturnsTheirBudget) {
  ReadAheadOptions o = RunOptions();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  rig.store.Hold(true);
  rig.prefetcher.Opened(id);
  rig.prefetcher.OnRead(id, 0, kBlock);  // window 8: blocks 1..8 in runs of 2
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 8u);
  ASSERT_TRUE(rig.store.AwaitWaiting(2));
  EXPECT_EQ(rig.budget.used(), 8 * kBlock);
  rig.prefetcher.Released(id);
  FetcherStats s = rig.fetcher.stats();
  EXPECT_EQ(s.cancelled_queued, 4u);
  EXPECT_EQ(s.cancelled_running, 2u);
  EXPECT_LE(rig.budget.used(), 4 * kBlock);  // at most the two running runs
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
  EXPECT_EQ(rig.prefetcher.closing_streams(), 0u);
  EXPECT_EQ(rig.store.aborted(), 2);
  EXPECT_EQ(rig.store.counters().get, 0);
}

// A closed stream whose multi-block GETs cannot be aborted stays charged
// for all their blocks until they end.
TEST(Prefetcher, ClosedStreamStaysChargedUntilItsRunsEnd) {
  ReadAheadOptions o = RunOptions();
  o.max_inflight = 2;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "f", Pattern(64 * kBlock));
  Gate gate;
  rig.store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kGet) gate.Wait();
  });
  rig.prefetcher.Opened(id);
  rig.prefetcher.OnRead(id, 0, kBlock);
  ASSERT_TRUE(gate.AwaitWaiters(2));
  rig.prefetcher.Released(id);
  EXPECT_EQ(rig.budget.used(), 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.closing_streams(), 1u);
  gate.Open();
  ASSERT_TRUE(Eventually([&] {
    rig.prefetcher.Reclaim();
    return rig.budget.used() == 0;
  }));
  EXPECT_EQ(rig.prefetcher.closing_streams(), 0u);
  EXPECT_EQ(rig.store.counters().get, 2);  // nothing issued after the close
  EXPECT_EQ(rig.store.counters().get_bytes, 4 * kBlock);
}

// Blocks the disk cache holds are read ahead only readahead_warm past the
// reader (a whole-file prefetch too), one fetch each; the blocks it lacks
// are fetched as far ahead as the budget allows.
// A whole-file stream (a .safetensors name) of 64 blocks over a fake cache
// that holds the first `cached` of them; readahead_warm = 4 blocks.
struct WarmWholeRig {
  explicit WarmWholeRig(uint64_t cached) {
    for (uint64_t b = 0; b < cached; ++b) {
      cache.Insert(BlockKey{id, b}, data.substr(b * kBlock, kBlock));
    }
    store.ResetCounters();
  }
  static ReadAheadOptions WarmOptions() {
    ReadAheadOptions o = RunOptions();
    o.readahead_warm = 4 * kBlock;
    return o;
  }
  ReadAheadOptions o = WarmOptions();
  readahead_test::FakeCache cache;
  CancellableStore store;
  Metrics metrics;
  MemoryBudget budget{o.prefetch_mem};
  BlockFetcher fetcher{store, &cache, o, &metrics};
  Prefetcher prefetcher{fetcher, budget, o, &metrics};
  const std::string data = Pattern(64 * kBlock);
  ObjectId id = AddObject(store, "m.safetensors", data);
};

TEST(Prefetcher, CachedBlocksAreReadAheadOnlyReadaheadWarmPastTheReader) {
  WarmWholeRig rig(32);
  Prefetcher& prefetcher = rig.prefetcher;
  CancellableStore& store = rig.store;
  const ObjectId& id = rig.id;

  prefetcher.Opened(id);
  EXPECT_EQ(prefetcher.StateOf(id).blocks, 0u);  // nothing before the first read
  prefetcher.OnRead(id, 0, kBlock);              // whole-file prefetch: only blocks 0-4
  prefetcher.ReadEnded(id);
  EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, 5u);
  EXPECT_EQ(prefetcher.StateOf(id).blocks, 5u);
  ASSERT_TRUE(Eventually([&] { return prefetcher.StateOf(id).ready == 5; }));
  EXPECT_EQ(store.counters().get, 0);

  prefetcher.OnRead(id, 2 * kBlock, kBlock);  // the window moves with the reader
  EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, 7u);

  // Blocks read (taken) far enough behind a later read are dropped: the
  // cache holds them.
  for (uint64_t b = 0; b < 4; ++b) ASSERT_TRUE(prefetcher.Take(BlockKey{id, b}).has_value());
  // Near the cached part's end: the rest (not cached) is fetched at once,
  // in runs of 4 blocks.
  prefetcher.OnRead(id, 29 * kBlock, kBlock);
  EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, 64u);
  EXPECT_EQ(prefetcher.StateOf(id).blocks, 60u);  // 0-3 dropped
  ASSERT_TRUE(Eventually([&] { return store.counters().get_bytes == 32 * kBlock; }));
  EXPECT_EQ(store.counters().get, 8);
  prefetcher.Released(id);
}

// A reader of a whole-file stream that keeps jumping reads at random: warm
// read-ahead follows its first jump, not the ones after (else every jump
// reads the next 32 MiB of the cached shard); a sequential read takes the
// position again.
TEST(Prefetcher, RandomReadsOfAWholeFileStreamDoNotDragWarmReadAhead) {
  WarmWholeRig rig(64);
  Prefetcher& prefetcher = rig.prefetcher;
  const ObjectId& id = rig.id;
  OpenAndRead(prefetcher, id);
  EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, 5u);
  prefetcher.OnRead(id, 0, 4096);
  prefetcher.OnRead(id, 40 * kBlock, 4096);  // a first jump: followed
  const uint64_t after_jump = prefetcher.StateOf(id).scheduled_until;
  EXPECT_GT(after_jump, 40u);
  for (uint64_t b : {60u, 10u, 62u, 20u}) {  // and more: random, not followed
    prefetcher.OnRead(id, b * kBlock, 4096);
    EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, after_jump) << b;
  }
  // Sequential again, then one jump: followed.
  prefetcher.OnRead(id, 20 * kBlock + 4096, 4096);
  prefetcher.OnRead(id, 59 * kBlock, 4096);
  EXPECT_EQ(prefetcher.StateOf(id).scheduled_until, 64u);
  EXPECT_EQ(rig.store.counters().get, 0);  // every block came from the cache
  prefetcher.Released(id);
}

}  // namespace
}  // namespace dsfs
