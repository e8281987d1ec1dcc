// How the prefetcher shares its budget among several readers: fair shares
// while several streams are read, read blocks kept just behind a reader,
// and the reader's position under out-of-order requests.
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "cache/prefetcher.h"
#include "prefetcher_test_rig.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using prefetcher_test::kBlock;
using prefetcher_test::OpenAndRead;
using prefetcher_test::Options;
using prefetcher_test::Rig;
using readahead_test::AddObject;
using readahead_test::Eventually;
using readahead_test::kMaxWait;
using readahead_test::Pattern;

// Shard a, opened first, took the whole budget; once b is read too, b takes
// fetches a never issued until both hold half (a's GET in flight stays).
TEST(PrefetcherShare, AReadStreamUnderItsFairShareTakesQueuedFetchesFromOneOverIt) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 8 * kBlock;
  o.max_inflight = 1;
  Rig rig(o);
  rig.store.Hold(true);  // a's first GET runs, the rest stays queued
  ObjectId a = AddObject(rig.store, "m/a.safetensors", Pattern(16 * kBlock, 1));
  ObjectId b = AddObject(rig.store, "m/b.safetensors", Pattern(16 * kBlock, 2));
  rig.prefetcher.Opened(a);
  rig.prefetcher.OnRead(a, 0, 10);
  ASSERT_TRUE(rig.store.AwaitWaiting(1));
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 8 * kBlock);
  rig.prefetcher.Opened(b);
  EXPECT_EQ(rig.prefetcher.StateOf(b).charged, 0u);  // not read yet: a keeps the budget
  rig.prefetcher.OnRead(b, 0, 10);
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.StateOf(b).charged, 4 * kBlock);
  EXPECT_EQ(rig.prefetcher.reclaimed_blocks(), 4u);
  // Nobody goes past half while both are read.
  rig.prefetcher.OnRead(a, 10, 10);
  EXPECT_EQ(rig.prefetcher.StateOf(a).charged, 4 * kBlock);
  rig.store.Hold(false);
  for (const ObjectId& id : {a, b}) {
    for (uint64_t i = 0; i < 4; ++i) {
      auto f = rig.prefetcher.Take(BlockKey{id, i});
      ASSERT_TRUE(f.has_value()) << i;
      ASSERT_EQ(f->wait_for(kMaxWait), std::future_status::ready);
      ASSERT_TRUE(f->get().ok());
    }
  }
  rig.prefetcher.ReadEnded(a);
  rig.prefetcher.ReadEnded(a);
  rig.prefetcher.ReadEnded(b);
}

// Blocks just behind the reader (seq_tolerance) are not evicted for more
// read-ahead: the kernel still sends the rest of their requests. Those
// further behind are.
TEST(PrefetcherShare, ReadBlocksJustBehindTheReaderStay) {
  ReadAheadOptions o = Options();
  o.prefetch_mem = 16 * kBlock;
  o.seq_tolerance = 2 * kBlock;  // 2 blocks kept behind (16 / 8 = 2 at most)
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "m/x.safetensors", Pattern(40 * kBlock));
  OpenAndRead(rig.prefetcher, id);
  ASSERT_TRUE(Eventually([&] { return rig.prefetcher.StateOf(id).ready == 16; }));
  for (uint64_t i = 0; i <= 5; ++i) {
    auto f = rig.prefetcher.Take(BlockKey{id, i});
    ASSERT_TRUE(f.has_value()) << i;
    rig.prefetcher.OnRead(id, i * kBlock, kBlock);
    rig.prefetcher.ReadEnded(id);
  }
  // Blocks 0..2 made room for 16..18; 3 and 4 (behind 5 by at most 2) stay.
  EXPECT_EQ(rig.prefetcher.prefetched_blocks(), 19u);
  for (uint64_t i : {3, 4, 5, 18}) EXPECT_TRUE(rig.prefetcher.Take(BlockKey{id, i})) << i;
  for (uint64_t i : {0, 1, 2}) EXPECT_FALSE(rig.prefetcher.Take(BlockKey{id, i})) << i;
}

// A late request of a sequential reader (the kernel's read-ahead served by
// several threads) does not move a whole-file stream's position back.
TEST(PrefetcherShare, ALateRequestDoesNotMoveTheReaderBack) {
  ReadAheadOptions o = Options();
  o.seq_tolerance = 2 * kBlock;
  Rig rig(o);
  ObjectId id = AddObject(rig.store, "m/y.safetensors", Pattern(40 * kBlock));
  rig.prefetcher.Opened(id);
  rig.prefetcher.OnRead(id, 0, kBlock);
  rig.prefetcher.OnRead(id, 2 * kBlock, kBlock);
  rig.prefetcher.OnRead(id, kBlock, kBlock);  // late, within seq_tolerance
  EXPECT_EQ(rig.prefetcher.StateOf(id).next_offset, 3 * kBlock);
  rig.prefetcher.OnRead(id, 3 * kBlock, kBlock);  // still sequential
  EXPECT_EQ(rig.prefetcher.StateOf(id).next_offset, 4 * kBlock);
  for (int i = 0; i < 4; ++i) rig.prefetcher.ReadEnded(id);
}

}  // namespace
}  // namespace dsfs
