#include "cache/block_fetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "backends/memory_store.h"
#include "common/metrics.h"
#include "readahead_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::CancellableStore;
using readahead_test::Eventually;
using readahead_test::FakeCache;
using readahead_test::Gate;
using readahead_test::kMaxWait;
using readahead_test::Pattern;

ReadAheadOptions SmallBlocks(int inflight = 4) {
  ReadAheadOptions o;
  o.block_size = 1024;
  o.max_inflight = inflight;
  o.prefetch_mem = 64 * 1024;
  return o;
}

Result<BlockData> Wait(const BlockFetcher::Future& f) {
  EXPECT_EQ(f.wait_for(kMaxWait), std::future_status::ready);
  return f.get();
}

TEST(BlockFetcher, OneRangedGetPerBlockLastBlockShorter) {
  MemoryStore store;
  std::string data = Pattern(2500);
  ObjectId id = AddObject(store, "a/obj", data);
  BlockFetcher f(store, nullptr, SmallBlocks());
  EXPECT_EQ(f.BlockCount(id), 3u);
  EXPECT_EQ(f.BlockLength(id, 2), 452u);
  EXPECT_EQ(f.BlockLength(id, 3), 0u);
  for (uint64_t i = 0; i < 3; ++i) {
    Result<BlockData> r = Wait(f.Fetch(BlockKey{id, i}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  StoreCounters c = store.counters();
  EXPECT_EQ(c.get, 3);
  EXPECT_EQ(c.get_bytes, 2500u);
  EXPECT_EQ(f.stats().store_gets, 3u);
}

TEST(BlockFetcher, BlockPastTheEndIsInvalidArgument) {
  MemoryStore store;
  ObjectId id = AddObject(store, "a", Pattern(1024));
  BlockFetcher f(store, nullptr, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 1}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.counters().get, 0);
}

TEST(BlockFetcher, ConcurrentMissesOfOneBlockShareOneGet) {
  MemoryStore store;
  std::string data = Pattern(4096);
  ObjectId id = AddObject(store, "a", data);
  Gate gate;
  store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kGet) gate.Wait();
  });
  Metrics metrics;
  BlockFetcher f(store, nullptr, SmallBlocks(8), &metrics);
  constexpr int kWaiters = 8;
  std::vector<std::future<Result<BlockData>>> results;
  for (int i = 0; i < kWaiters; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      return Wait(f.Fetch(BlockKey{id, 1}));
    }));
  }
  // The first GET is held in the hook until every other request joined it.
  ASSERT_TRUE(gate.AwaitWaiters(1));
  ASSERT_TRUE(Eventually([&] { return f.stats().collapsed == kWaiters - 1; }));
  gate.Open();
  const Buffer* first = nullptr;
  for (auto& r : results) {
    Result<BlockData> b = r.get();
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(**b, data.substr(1024, 1024));
    if (!first) first = b->get();
    EXPECT_EQ(b->get(), first);  // the same bytes, not copies
  }
  EXPECT_EQ(store.counters().get, 1);
  EXPECT_EQ(metrics.GetCounter("dsfs_fetch_collapsed_total").value(), uint64_t{kWaiters - 1});
}

TEST(BlockFetcher, CacheHitMakesNoGet) {
  MemoryStore store;
  std::string data = Pattern(2048);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  cache.Insert(BlockKey{id, 1}, data.substr(1024));
  Metrics metrics;
  BlockFetcher f(store, &cache, SmallBlocks(), &metrics);
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 1}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, data.substr(1024));
  EXPECT_EQ(store.counters().get, 0);
  EXPECT_EQ(metrics.GetCounter("dsfs_cache_hits_total").value(), 1u);
  // LookupCache on the caller's thread agrees.
  EXPECT_TRUE(f.LookupCache(BlockKey{id, 1}).has_value());
  EXPECT_FALSE(f.LookupCache(BlockKey{id, 0}).has_value());
  EXPECT_EQ(metrics.GetCounter("dsfs_cache_misses_total").value(), 1u);
}

TEST(BlockFetcher, CachedBlockOfWrongLengthIsAMiss) {
  MemoryStore store;
  std::string data = Pattern(2048);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  cache.Insert(BlockKey{id, 0}, "short");
  BlockFetcher f(store, &cache, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, data.substr(0, 1024));
  EXPECT_EQ(store.counters().get, 1);
}

TEST(BlockFetcher, FetchedBlocksAreWrittenToTheCache) {
  MemoryStore store;
  std::string data = Pattern(3000);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  BlockFetcher f(store, &cache, SmallBlocks());
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, i})).ok());
  f.FlushCacheWrites();
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(f.stats().puts, 3u);
  // Now served from the cache.
  ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, 2})).ok());
  EXPECT_EQ(store.counters().get, 3);
}

TEST(BlockFetcher, BrokenCacheIsAMissNeverAnError) {
  MemoryStore store;
  std::string data = Pattern(2048);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  cache.FailGets(true);
  cache.FailPuts(true);
  Metrics metrics;
  BlockFetcher f(store, &cache, SmallBlocks(), &metrics);
  for (uint64_t i = 0; i < 2; ++i) {
    Result<BlockData> r = Wait(f.Fetch(BlockKey{id, i}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  f.FlushCacheWrites();
  FetcherStats s = f.stats();
  EXPECT_EQ(s.cache_errors, 2u);
  EXPECT_EQ(s.put_errors, 2u);
  EXPECT_EQ(metrics.GetCounter("dsfs_cache_errors_total").value(), 4u);
  EXPECT_EQ(store.counters().get, 2);
}

TEST(BlockFetcher, SlowCachePutNeverDelaysAFetchAndTheBackfillCachesTheRest) {
  for (bool backfill : {true, false}) {
    SCOPED_TRACE(backfill ? "backfill" : "no backfill");
    MemoryStore store;
    std::string data = Pattern(20 * 1024);
    ObjectId id = AddObject(store, "a", data);
    FakeCache cache;
    Gate put_gate;
    cache.BlockPuts(&put_gate);
    ReadAheadOptions o = SmallBlocks();
    o.cache_write_queue = 2;
    o.cache_backfill = backfill;
    {
      BlockFetcher f(store, &cache, o);
      // Every fetch completes while the cache writer is stuck in Put.
      for (uint64_t i = 0; i < 20; ++i) {
        Result<BlockData> r = Wait(f.Fetch(BlockKey{id, i}));
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(**r, data.substr(i * 1024, 1024));
        if (i == 0) {
          ASSERT_TRUE(put_gate.AwaitWaiters(1));  // the writer is stuck in Put
        }
      }
      EXPECT_EQ(store.counters().get, 20);
      // One Put in progress, two queued (or one, when the last block came
      // before the writer took the first), the rest deferred (or skipped).
      auto missed = [&] {
        FetcherStats st = f.stats();
        return backfill ? st.put_deferred : st.put_dropped;
      };
      EXPECT_TRUE(Eventually([&] { return missed() >= 17u; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const uint64_t d = missed();
      EXPECT_LE(d, 18u);
      put_gate.Open();
      if (backfill) {
        // Idle: the deferred blocks are fetched again, two per GET (the
        // queue's room), and written.
        EXPECT_TRUE(Eventually([&] { return cache.size() == 20u; }));
        f.FlushCacheWrites();
        FetcherStats st = f.stats();
        EXPECT_EQ(st.backfilled, d);
        EXPECT_EQ(st.put_dropped, 0u);
        EXPECT_EQ(st.puts, 20u);
        // Runs of at most two blocks (the queue's room).
        EXPECT_GE(store.counters().get, 20 + static_cast<int>((d + 1) / 2));
        EXPECT_LE(store.counters().get, 20 + static_cast<int>(d));
        for (uint64_t i = 0; i < 20; ++i) {
          auto got = cache.Get(BlockKey{id, i});
          ASSERT_TRUE(got.ok() && got->has_value());
          EXPECT_EQ(***got, data.substr(i * 1024, 1024));
        }
      } else {
        f.FlushCacheWrites();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // no backfill comes
        EXPECT_EQ(f.stats().puts, 20u - d);
        EXPECT_EQ(store.counters().get, 20);
      }
      EXPECT_EQ(cache.size(), backfill ? 20u : 20u - d);
    }
  }
}

TEST(BlockFetcher, ReadAheadNeverWaitsForCacheWriteRoom) {
  MemoryStore store;
  std::string data = Pattern(8 * 1024);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  Gate put_gate;
  cache.BlockPuts(&put_gate);
  ReadAheadOptions o = SmallBlocks();
  o.cache_write_queue = 2;
  o.max_inflight = 2;
  {
    BlockFetcher f(store, &cache, o);
    std::vector<BlockFetcher::Future> futures;
    for (uint64_t i = 0; i < 8; ++i) {
      futures.push_back(f.Fetch(BlockKey{id, i}, FetchPriority::kPrefetch));
    }
    // The writer is stuck and the queue full: every read-ahead completes
    // all the same.
    ASSERT_TRUE(put_gate.AwaitWaiters(1));
    for (uint64_t i = 0; i < 8; ++i) {
      Result<BlockData> r = Wait(futures[i]);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(**r, data.substr(i * 1024, 1024));
    }
    EXPECT_TRUE(Eventually([&] { return f.stats().put_deferred >= 5u; }));
    put_gate.Open();
    EXPECT_TRUE(Eventually([&] { return cache.size() == 8u; }));
    EXPECT_EQ(f.stats().put_dropped, 0u);  // every block reached the cache
  }
  EXPECT_EQ(cache.size(), 8u);
}

TEST(BlockFetcher, BackfillSkipsBlocksCachedMeanwhileAndAChangedObject) {
  MemoryStore store;
  std::string data = Pattern(6 * 1024);
  ObjectId id = AddObject(store, "a", data);
  FakeCache cache;
  Gate put_gate;
  cache.BlockPuts(&put_gate);
  ReadAheadOptions o = SmallBlocks();
  o.cache_write_queue = 1;
  {
    BlockFetcher f(store, &cache, o);
    for (uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, i})).ok());
    ASSERT_TRUE(put_gate.AwaitWaiters(1));
    EXPECT_TRUE(Eventually([&] { return f.stats().put_deferred >= 4u; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t d = f.stats().put_deferred;
    // The object changes upstream: the backfill's If-Match GETs fail and
    // nothing of another version is cached.
    store.PutObject("a", Pattern(6 * 1024, 7));
    put_gate.Open();
    EXPECT_TRUE(Eventually([&] { return f.stats().backfilled == d; }));
    f.FlushCacheWrites();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(cache.size(), 6u - d);
    EXPECT_EQ(f.stats().puts, 6u - d);
    for (uint64_t i = 0; i < 6; ++i) {  // only the old version's own bytes
      auto got = cache.Get(BlockKey{id, i});
      ASSERT_TRUE(got.ok());
      if (got->has_value()) {
        EXPECT_EQ(***got, data.substr(i * 1024, 1024));
      }
    }
  }
}

constexpr uint64_t kBig = 256 << 10;  // ReadSplit::kMinSample: the smallest block measured

// A cache disk that takes 20 ms per block read (256 KiB: 12.5 MiB/s per read).
class SlowDiskCache : public FakeCache {
 public:
  Result<std::optional<BlockData>> Get(const BlockKey& key) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return FakeCache::Get(key);
  }
};

TEST(BlockFetcher, WarmBlocksOnASlowBusyDiskComePartlyFromTheStore) {
  for (bool split : {true, false}) {
    SCOPED_TRACE(split ? "warm_split" : "no warm_split");
    MemoryStore store;
    std::string data = Pattern(41 * kBig);
    ObjectId id = AddObject(store, "a", data);
    SlowDiskCache cache;
    for (uint64_t i = 0; i < 40; ++i) cache.Insert(BlockKey{id, i}, data.substr(i * kBig, kBig));
    ReadAheadOptions o = SmallBlocks(/*inflight=*/8);
    o.block_size = kBig;
    o.warm_split = split;
    BlockFetcher f(store, &cache, o);
    // A cold block first: the store's rate is known.
    ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, 40})).ok());
    std::vector<BlockFetcher::Future> futures;
    for (uint64_t i = 0; i < 40; ++i) {
      futures.push_back(f.Fetch(BlockKey{id, i}, FetchPriority::kPrefetch));
    }
    for (uint64_t i = 0; i < 40; ++i) {
      Result<BlockData> r = Wait(futures[i]);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(**r, data.substr(i * kBig, kBig));
    }
    f.FlushCacheWrites();
    FetcherStats st = f.stats();
    if (split) {
      // The disk stays busy (at least two reads) and the rest is fetched.
      EXPECT_GT(st.diverted, 0u);
      EXPECT_LT(st.diverted, 40u);
      EXPECT_EQ(static_cast<uint64_t>(store.counters().get), 1 + st.diverted);
    } else {
      EXPECT_EQ(st.diverted, 0u);
      EXPECT_EQ(store.counters().get, 1);
    }
    EXPECT_EQ(st.puts, 1u);  // a diverted block is not written again
  }
}

TEST(BlockFetcher, ADivertedBlockWhoseGetFailsIsReadFromTheDisk) {
  MemoryStore store;
  std::string data = Pattern(21 * kBig);
  ObjectId id = AddObject(store, "a", data);
  SlowDiskCache cache;
  for (uint64_t i = 0; i < 20; ++i) cache.Insert(BlockKey{id, i}, data.substr(i * kBig, kBig));
  ReadAheadOptions o = SmallBlocks(/*inflight=*/8);
  o.block_size = kBig;
  BlockFetcher f(store, &cache, o);
  ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, 20})).ok());
  // OBS goes away: every diverted GET fails; the disk serves them all.
  store.FailNext(StoreOp::kGet, Status::Unavailable("down"), 20);
  std::vector<BlockFetcher::Future> futures;
  for (uint64_t i = 0; i < 20; ++i) {
    futures.push_back(f.Fetch(BlockKey{id, i}, FetchPriority::kPrefetch));
  }
  for (uint64_t i = 0; i < 20; ++i) {
    Result<BlockData> r = Wait(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * kBig, kBig));
  }
  EXPECT_EQ(f.stats().diverted, 0u);
  EXPECT_EQ(f.stats().cache_hits, 20u);
}

TEST(BlockFetcher, StoreErrorPropagatesWithItsCodeAndALaterFetchRetries) {
  MemoryStore store;
  std::string data = Pattern(2048);
  ObjectId id = AddObject(store, "a", data);
  BlockFetcher f(store, nullptr, SmallBlocks());
  store.FailNext(StoreOp::kGet, Status::Throttled("slow down"));
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kThrottled);
  r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, data.substr(0, 1024));
  EXPECT_EQ(store.counters().get, 2);
}

TEST(BlockFetcher, ChangedEtagIsPreconditionFailed) {
  MemoryStore store;
  ObjectId old_id = AddObject(store, "a", Pattern(2048, 1));
  store.PutObject("a", Pattern(2048, 2));  // new version, new ETag
  BlockFetcher f(store, nullptr, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{old_id, 0}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPreconditionFailed);
}

TEST(BlockFetcher, ShortBodyIsTransient) {
  // A store that claims success with fewer bytes than asked.
  class ShortStore : public MemoryStore {
   public:
    Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
      Result<GetResult> n = MemoryStore::Get(request, buf, buf_len);
      if (!n.ok()) return n;
      n->bytes -= 1;
      return n;
    }
  };
  ShortStore store;
  ObjectId id = AddObject(store, "a", Pattern(2048));
  BlockFetcher f(store, nullptr, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTransient);
}

TEST(BlockFetcher, BytesOfAnotherVersionAreRefusedAndNeverCached) {
  // A store that ignores If-Match and reports the version it really sent.
  class IgnoresIfMatch : public MemoryStore {
   public:
    Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
      GetRequest sub = request;
      sub.if_match.clear();
      return MemoryStore::Get(sub, buf, buf_len);
    }
  };
  IgnoresIfMatch store;
  ObjectId id = AddObject(store, "a", Pattern(2048));
  store.PutObject("a", Pattern(2048, 7));  // a new version of the same size
  FakeCache cache;
  BlockFetcher f(store, &cache, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPreconditionFailed) << r.status().ToString();
  f.FlushCacheWrites();
  EXPECT_FALSE(cache.Has(BlockKey{id, 0}));
}

TEST(BlockFetcher, ObjectWithoutAnEtagIsNeverCached) {
  MemoryStore store;
  ObjectId id = AddObject(store, "noetag", Pattern(2048));
  store.SetEtag("noetag", "");  // a server that sends no ETag
  id.etag = "";
  FakeCache cache;
  BlockFetcher f(store, &cache, SmallBlocks());
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  f.FlushCacheWrites();
  EXPECT_FALSE(cache.Has(BlockKey{id, 0}));
  EXPECT_EQ(cache.gets(), 0);
}

// Records the keys of GETs in the order they start. The GET of "busy" waits
// at gate, holding the fetcher's only GET thread while work queues up.
struct GetOrder {
  explicit GetOrder(MemoryStore& store) {
    store.SetHook([this](StoreOp op, const std::string& key) {
      if (op != StoreOp::kGet) return;
      if (key == "busy") gate.Wait();
      std::lock_guard lock(mu);
      keys.push_back(key);
    });
  }
  std::vector<std::string> Keys() {
    std::lock_guard lock(mu);
    return keys;
  }
  Gate gate;
  std::mutex mu;
  std::vector<std::string> keys;  // guarded by mu
};

// With one GET thread held busy, queued work runs demand first.
TEST(BlockFetcher, DemandFetchesOvertakeQueuedPrefetches) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  ObjectId p1 = AddObject(store, "p1", Pattern(1024));
  ObjectId p2 = AddObject(store, "p2", Pattern(1024));
  ObjectId d = AddObject(store, "d", Pattern(1024));
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  auto f1 = f.Fetch(BlockKey{p1, 0}, FetchPriority::kPrefetch);
  auto f2 = f.Fetch(BlockKey{p2, 0}, FetchPriority::kPrefetch);
  auto fd = f.Fetch(BlockKey{d, 0}, FetchPriority::kDemand);
  // A demand read joining the queued p2 moves it ahead of p1.
  auto f2d = f.Fetch(BlockKey{p2, 0}, FetchPriority::kDemand);
  order.gate.Open();
  for (auto* fut : {&fb, &f1, &f2, &fd, &f2d}) ASSERT_TRUE(Wait(*fut).ok());
  EXPECT_EQ(order.Keys(), (std::vector<std::string>{"busy", "d", "p2", "p1"}));
  EXPECT_EQ(store.counters().get, 4);
}

TEST(BlockFetcher, ExpediteMovesAQueuedPrefetchAhead) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  ObjectId p1 = AddObject(store, "p1", Pattern(1024));
  ObjectId p2 = AddObject(store, "p2", Pattern(1024));
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  auto f1 = f.Fetch(BlockKey{p1, 0}, FetchPriority::kPrefetch);
  auto f2 = f.Fetch(BlockKey{p2, 0}, FetchPriority::kPrefetch);
  f.Expedite(BlockKey{p2, 0});
  f.Expedite(BlockKey{busy, 0});  // already running: no effect
  order.gate.Open();
  for (auto* fut : {&fb, &f1, &f2}) ASSERT_TRUE(Wait(*fut).ok());
  EXPECT_EQ(order.Keys(), (std::vector<std::string>{"busy", "p2", "p1"}));
}

// A read-ahead fetch cancelled while queued is never issued: its future
// fails at once and no GET for it reaches the store.
TEST(BlockFetcher, CancelledQueuedPrefetchIsNeverIssued) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  ObjectId p1 = AddObject(store, "p1", Pattern(1024));
  ObjectId p2 = AddObject(store, "p2", Pattern(1024));
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  auto f1 = f.Fetch(BlockKey{p1, 0}, FetchPriority::kPrefetch);
  auto f2 = f.Fetch(BlockKey{p2, 0}, FetchPriority::kPrefetch);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{p1, 0}), CancelOutcome::kDequeued);
  ASSERT_EQ(f1.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(f1.get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{p1, 0}), CancelOutcome::kNotFound);
  order.gate.Open();
  ASSERT_TRUE(Wait(fb).ok());
  ASSERT_TRUE(Wait(f2).ok());
  EXPECT_EQ(order.Keys(), (std::vector<std::string>{"busy", "p2"}));
  EXPECT_EQ(f.stats().cancelled_queued, 1u);
  // Fetched again later, it is a new fetch.
  ASSERT_TRUE(Wait(f.Fetch(BlockKey{p1, 0})).ok());
  EXPECT_EQ(store.counters().get, 3);
}

// A demand reader that joined a read-ahead fetch (Fetch(kDemand) or
// Expedite) keeps it: cancelling the read-ahead does not take its bytes.
TEST(BlockFetcher, PrefetchADemandReaderJoinedIsNotCancelled) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  ObjectId p1 = AddObject(store, "p1", Pattern(1024, 2));
  ObjectId p2 = AddObject(store, "p2", Pattern(1024, 3));
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  auto f1 = f.Fetch(BlockKey{p1, 0}, FetchPriority::kPrefetch);
  auto f2 = f.Fetch(BlockKey{p2, 0}, FetchPriority::kPrefetch);
  auto f1d = f.Fetch(BlockKey{p1, 0}, FetchPriority::kDemand);
  f.Expedite(BlockKey{p2, 0});
  EXPECT_EQ(f.CancelPrefetch(BlockKey{p1, 0}), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{p2, 0}), CancelOutcome::kKept);
  // The running one is demand too (Fetch's default).
  EXPECT_EQ(f.CancelPrefetch(BlockKey{busy, 0}), CancelOutcome::kKept);
  order.gate.Open();
  for (auto* fut : {&f1, &f1d}) {
    Result<BlockData> r = Wait(*fut);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, Pattern(1024, 2));
  }
  Result<BlockData> r2 = Wait(f2);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(**r2, Pattern(1024, 3));
  ASSERT_TRUE(Wait(fb).ok());
  EXPECT_EQ(store.counters().get, 3);
  EXPECT_EQ(f.stats().cancelled_queued, 0u);
}

// A running read-ahead GET that is cancelled gets its token set (the store
// aborts it) and leaves the in-flight map: a later fetch of the block starts
// its own GET instead of joining one being aborted. abort_running=false
// leaves it running.
TEST(BlockFetcher, CancelledRunningPrefetchIsAbortedAndNotJoined) {
  CancellableStore store;
  std::string data = Pattern(1024);
  ObjectId id = AddObject(store, "a", data);
  store.Hold(true);
  BlockFetcher f(store, nullptr, SmallBlocks(2));
  auto fp = f.Fetch(BlockKey{id, 0}, FetchPriority::kPrefetch);
  ASSERT_TRUE(store.AwaitWaiting(1));
  EXPECT_EQ(f.CancelPrefetch(BlockKey{id, 0}, /*abort_running=*/false), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{id, 0}), CancelOutcome::kAborting);
  Result<BlockData> aborted = Wait(fp);
  ASSERT_FALSE(aborted.ok());
  EXPECT_EQ(aborted.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(store.aborted(), 1);
  store.Hold(false);
  Result<BlockData> r = Wait(f.Fetch(BlockKey{id, 0}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(**r, data);
  EXPECT_EQ(f.stats().collapsed, 0u);
  EXPECT_EQ(store.counters().get, 1);  // the aborted GET read nothing
  EXPECT_EQ(f.stats().cancelled_running, 1u);
}

// Shutdown does not wait for the GETs still running: it cancels their
// tokens, and the store aborts them (this one would otherwise hold them for
// kMaxWait).
TEST(BlockFetcher, DestructorAbortsRunningGetsInsteadOfWaitingForThem) {
  CancellableStore store;
  ObjectId id = AddObject(store, "a", Pattern(8 * 1024));
  store.Hold(true);
  auto f = std::make_unique<BlockFetcher>(store, nullptr, SmallBlocks(2));
  std::vector<BlockFetcher::Future> futures;
  for (uint64_t i = 0; i < 8; ++i) {
    futures.push_back(f->Fetch(BlockKey{id, i}, FetchPriority::kPrefetch));
  }
  ASSERT_TRUE(store.AwaitWaiting(2));
  auto destroyed = std::async(std::launch::async, [&] { f.reset(); });
  // Generous: the held GETs would keep it for kMaxWait (20 s).
  ASSERT_EQ(destroyed.wait_for(kMaxWait / 2), std::future_status::ready);
  EXPECT_EQ(store.aborted(), 2);
  EXPECT_EQ(store.counters().get, 0);
  for (auto& fut : futures) {
    ASSERT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_FALSE(fut.get().ok());
  }
}

TEST(BlockFetcher, DestructorWithGetsInFlightJoinsAndFailsQueuedFetches) {
  MemoryStore store;
  std::string data = Pattern(8 * 1024);
  ObjectId id = AddObject(store, "a", data);
  Gate gate;
  store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kGet) gate.Wait();
  });
  auto f = std::make_unique<BlockFetcher>(store, nullptr, SmallBlocks(2));
  std::vector<BlockFetcher::Future> futures;
  for (uint64_t i = 0; i < 8; ++i) futures.push_back(f->Fetch(BlockKey{id, i}));
  ASSERT_TRUE(gate.AwaitWaiters(2));  // both GET threads are inside the store
  auto destroyed = std::async(std::launch::async, [&] { f.reset(); });
  // Give the destructor a moment to start stopping (not required for
  // correctness: either way every future must resolve).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  gate.Open();
  ASSERT_EQ(destroyed.wait_for(kMaxWait), std::future_status::ready);
  int ok = 0;
  for (uint64_t i = 0; i < futures.size(); ++i) {
    ASSERT_EQ(futures[i].wait_for(kMaxWait), std::future_status::ready);
    const Result<BlockData>& r = futures[i].get();
    if (r.ok()) {
      ++ok;
      EXPECT_EQ(**r, data.substr(i * 1024, 1024));
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    }
  }
  EXPECT_GE(ok, 2);  // the two running GETs completed
}

TEST(BlockFetcher, DestructorDrainsQueuedCacheWrites) {
  MemoryStore store;
  ObjectId id = AddObject(store, "a", Pattern(4096));
  FakeCache cache;
  {
    BlockFetcher f(store, &cache, SmallBlocks());
    for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(Wait(f.Fetch(BlockKey{id, i})).ok());
  }
  EXPECT_EQ(cache.size(), 4u);
}

// A run of blocks is one ranged GET (the store counts one request of all
// the bytes), while each block keeps its own future and is cached as its
// own block.
TEST(BlockFetcher, RunOfBlocksIsOneGetAndEachBlockIsCachedOnItsOwn) {
  MemoryStore store;
  std::string data = Pattern(2500);
  ObjectId id = AddObject(store, "a/obj", data);
  FakeCache cache;
  BlockFetcher f(store, &cache, SmallBlocks());
  std::vector<BlockFetcher::Future> futures = f.FetchRun(BlockKey{id, 0}, 3);
  ASSERT_EQ(futures.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    Result<BlockData> r = Wait(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  f.FlushCacheWrites();
  StoreCounters c = store.counters();
  EXPECT_EQ(c.get, 1);
  EXPECT_EQ(c.get_bytes, 2500u);
  EXPECT_EQ(f.stats().store_gets, 1u);
  EXPECT_EQ(f.stats().run_gets, 1u);
  EXPECT_EQ(f.stats().store_blocks, 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_TRUE(cache.Has(BlockKey{id, i})) << i;
  EXPECT_EQ(cache.UsedBytes(), 2500u);
}

// A miss of a block a run is fetching joins the run's GET (duplicate misses
// still share one fetch).
TEST(BlockFetcher, MissOfABlockInARunningRunJoinsItsGet) {
  CancellableStore store;
  std::string data = Pattern(4 * 1024);
  ObjectId id = AddObject(store, "a", data);
  store.Hold(true);
  BlockFetcher f(store, nullptr, SmallBlocks(2));
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
  ASSERT_TRUE(store.AwaitWaiting(1));
  auto demand = f.Fetch(BlockKey{id, 2});
  EXPECT_EQ(f.stats().collapsed, 1u);
  // Joining the run again does not start another GET either.
  std::vector<BlockFetcher::Future> again = f.FetchRun(BlockKey{id, 1}, 3);
  store.Hold(false);
  Result<BlockData> r = Wait(demand);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(**r, data.substr(2048, 1024));
  for (auto* fs : {&run, &again}) {
    for (auto& fut : *fs) ASSERT_TRUE(Wait(fut).ok());
  }
  EXPECT_EQ(store.counters().get, 1);
  EXPECT_EQ(store.counters().get_bytes, 4096u);
}

// A demand reader joining a block of a queued run gets that block at once,
// in its own GET; the rest of the run is fetched around it, nothing twice.
TEST(BlockFetcher, DemandReaderTakesItsBlockOutOfAQueuedRun) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  std::string data = Pattern(4 * 1024, 5);
  ObjectId id = AddObject(store, "run", data);
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
  auto demand = f.Fetch(BlockKey{id, 2});
  order.gate.Open();
  ASSERT_TRUE(Wait(fb).ok());
  for (uint64_t i = 0; i < 4; ++i) {
    Result<BlockData> r = Wait(run[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  ASSERT_TRUE(Wait(demand).ok());
  // busy, block 2 (demand first), then blocks 0-1 and block 3.
  EXPECT_EQ(order.Keys(), (std::vector<std::string>{"busy", "run", "run", "run"}));
  EXPECT_EQ(store.counters().get_bytes, 1024u + 4096u);
  EXPECT_EQ(f.stats().run_gets, 1u);
}

// A queued run's block cancelled before the GET starts is left out of it.
TEST(BlockFetcher, CancelledBlockOfAQueuedRunIsNotFetched) {
  MemoryStore store;
  ObjectId busy = AddObject(store, "busy", Pattern(1024));
  std::string data = Pattern(4 * 1024, 6);
  ObjectId id = AddObject(store, "run", data);
  GetOrder order(store);
  BlockFetcher f(store, nullptr, SmallBlocks(1));
  auto fb = f.Fetch(BlockKey{busy, 0});
  ASSERT_TRUE(order.gate.AwaitWaiters(1));
  std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{id, 0}, 4);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{id, 3}, /*abort_running=*/false), CancelOutcome::kDequeued);
  EXPECT_EQ(Wait(run[3]).status().code(), StatusCode::kCancelled);
  order.gate.Open();
  for (uint64_t i = 0; i < 3; ++i) {
    Result<BlockData> r = Wait(run[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  ASSERT_TRUE(Wait(fb).ok());
  EXPECT_EQ(store.counters().get, 2);
  EXPECT_EQ(store.counters().get_bytes, 1024u + 3072u);
}

// Cancelling some blocks of a running run does not abort the GET the
// others still want (kKept, and they complete); cancelling the last one
// aborts it and every block's future fails.
TEST(BlockFetcher, RunningRunIsAbortedOnlyWhenEveryBlockIsCancelled) {
  CancellableStore store;
  std::string data = Pattern(3 * 1024);
  ObjectId a = AddObject(store, "a", data);
  ObjectId b = AddObject(store, "b", data);
  store.Hold(true);
  BlockFetcher f(store, nullptr, SmallBlocks(2));
  std::vector<BlockFetcher::Future> ra = f.FetchRun(BlockKey{a, 0}, 3);
  std::vector<BlockFetcher::Future> rb = f.FetchRun(BlockKey{b, 0}, 3);
  ASSERT_TRUE(store.AwaitWaiting(2));
  EXPECT_EQ(f.CancelPrefetch(BlockKey{a, 0}), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{a, 2}), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{b, 0}), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{b, 1}), CancelOutcome::kKept);
  EXPECT_EQ(f.CancelPrefetch(BlockKey{b, 2}), CancelOutcome::kAborting);
  for (auto& fut : rb) EXPECT_EQ(Wait(fut).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(store.aborted(), 1);
  EXPECT_EQ(f.stats().cancelled_running, 1u);
  store.Hold(false);
  for (uint64_t i = 0; i < 3; ++i) {
    Result<BlockData> r = Wait(ra[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(**r, data.substr(i * 1024, 1024));
  }
  EXPECT_EQ(store.counters().get, 1);  // a's run; b's was aborted before reading
}

// A run whose blocks are cached makes no GET; one whose first block alone
// is cached GETs the others; one with a cached block in the middle GETs
// around it, never over it (a cache with holes after a crash).
TEST(BlockFetcher, CachedBlocksOfARunAreReadFromTheCache) {
  MemoryStore store;
  std::string data = Pattern(3 * 1024, 7);
  ObjectId id = AddObject(store, "a", data);
  ObjectId other = AddObject(store, "b", data);
  ObjectId third = AddObject(store, "c", data);
  FakeCache cache;
  for (uint64_t i = 0; i < 3; ++i) cache.Insert(BlockKey{id, i}, data.substr(i * 1024, 1024));
  cache.Insert(BlockKey{other, 0}, data.substr(0, 1024));
  cache.Insert(BlockKey{third, 1}, data.substr(1024, 1024));
  BlockFetcher f(store, &cache, SmallBlocks());
  for (const ObjectId& obj : {id, other, third}) {
    std::vector<BlockFetcher::Future> run = f.FetchRun(BlockKey{obj, 0}, 3);
    for (uint64_t i = 0; i < 3; ++i) {
      Result<BlockData> r = Wait(run[i]);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(**r, data.substr(i * 1024, 1024));
    }
  }
  EXPECT_EQ(f.stats().cache_hits, 5u);
  EXPECT_EQ(store.counters().get_bytes, 2048u + 2048u);
}

}  // namespace
}  // namespace dsfs
