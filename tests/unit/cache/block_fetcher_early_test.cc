// BlockFetcher hands each block of a run to its readers as soon as the
// store has its bytes (GetRequest::on_parts_done), and fetches the rest of
// a run whose GET was cut after some blocks went out.
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "backends/memory_store.h"
#include "cache/block_fetcher.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::FakeCache;
using readahead_test::Gate;
using readahead_test::kMaxWait;
using readahead_test::Pattern;

ReadAheadOptions SmallBlocks() {
  ReadAheadOptions o;
  o.block_size = 1024;
  o.max_inflight = 2;
  o.prefetch_mem = 64 * 1024;
  return o;
}

Result<BlockData> Wait(const BlockFetcher::Future& f) {
  EXPECT_EQ(f.wait_for(kMaxWait), std::future_status::ready);
  return f.get();
}

bool Ready(const BlockFetcher::Future& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

// Hands out the first part of a GetParts, then holds the GET until the
// gate opens, then hands out the rest: a transfer still running.
class HandOutFirstThenHold : public MemoryStore {
 public:
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override {
    GetRequest plain = request;
    plain.on_parts_done = nullptr;
    Result<GetResult> r = MemoryStore::GetParts(plain, parts);
    if (r.ok() && request.on_parts_done) {
      request.on_parts_done(1);
      gate.Wait();
      request.on_parts_done(parts.size());
    }
    return r;
  }
  Gate gate;
};

TEST(BlockFetcherEarly, ABlockOfARunGoesToItsReaderBeforeTheRunEnds) {
  HandOutFirstThenHold store;
  const std::string data = Pattern(4 * 1024);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  BlockFetcher f(store, &cache, SmallBlocks());
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
  ASSERT_TRUE(store.gate.AwaitWaiters(1));
  // The GET is still running: block 0 is there, the others are not.
  Result<BlockData> first = Wait(run[0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(**first, data.substr(0, 1024));
  for (size_t i = 1; i < 4; ++i) EXPECT_FALSE(Ready(run[i])) << i;
  EXPECT_EQ(f.stats().early_blocks, 1u);
  store.gate.Open();
  for (size_t i = 0; i < 4; ++i) {
    Result<BlockData> r = Wait(run[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  f.FlushCacheWrites();
  EXPECT_EQ(store.counters().get, 1);
  EXPECT_EQ(f.stats().early_blocks, 4u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(cache.Has(BlockKey{id, i})) << i;
}

// A GET cut after 2 of 5 blocks: those 2 are served, the other 3 come from
// one more GET of just them, every byte where it belongs.
TEST(BlockFetcherEarly, AGetCutAfterSomeBlocksFetchesOnlyTheRestAgain) {
  MemoryStore store;
  const std::string data = Pattern(5 * 1024 - 100);
  ObjectId id = AddObject(store, "a", data);
  store.CutNextGetParts(2, Status::Transient("connection reset"));
  BlockFetcher f(store, nullptr, SmallBlocks());
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 5);
  for (size_t i = 0; i < 5; ++i) {
    Result<BlockData> r = Wait(run[i]);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024)) << i;
  }
  StoreCounters c = store.counters();
  EXPECT_EQ(c.get, 2);
  EXPECT_EQ(c.get_bytes, data.size() + (data.size() - 2048));
  EXPECT_EQ(f.stats().early_refetches, 1u);
  EXPECT_EQ(f.stats().early_blocks, 5u);
}

// Cut twice in a row (1 block out each time): each round hands out a block,
// so the run still completes; a cut that is a cancellation fails the rest.
TEST(BlockFetcherEarly, RepeatedCutsEndAndACancelledCutFailsTheRest) {
  MemoryStore store;
  const std::string data = Pattern(4 * 1024);
  ObjectId id = AddObject(store, "a", data);
  store.CutNextGetParts(1, Status::Unavailable("reset"));
  store.CutNextGetParts(1, Status::Unavailable("reset"));
  {
    BlockFetcher f(store, nullptr, SmallBlocks());
    std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
    for (size_t i = 0; i < 4; ++i) {
      Result<BlockData> r = Wait(run[i]);
      ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
      EXPECT_EQ(**r, data.substr(i * 1024, 1024));
    }
    EXPECT_EQ(store.counters().get, 3);
    EXPECT_EQ(f.stats().early_refetches, 2u);
  }
  store.CutNextGetParts(1, Status::Cancelled("GET 'a': cancelled by the caller"));
  BlockFetcher f(store, nullptr, SmallBlocks());
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
  ASSERT_TRUE(Wait(run[0]).ok());
  for (size_t i = 1; i < 4; ++i) {
    Result<BlockData> r = Wait(run[i]);
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  }
  EXPECT_EQ(store.counters().get, 4);
  EXPECT_EQ(f.stats().early_refetches, 0u);
}

}  // namespace
}  // namespace dsfs
