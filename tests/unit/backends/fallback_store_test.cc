#include "backends/fallback_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "backends/dir_store.h"
#include "backends/memory_store.h"
#include "tests/unit/backends/fallback_test_util.h"

namespace dsfs {
namespace {

using testing::LogCapture;
using testing::TempDir;
using testing::WaitFor;

constexpr char kOpenLine[] = "fallback: OBS unavailable (";
constexpr char kCloseLine[] = "fallback: OBS recovered";

std::string Content(const std::string& key, size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += key + ":" + std::to_string(i) + ";";
  s.resize(n);
  return s;
}

class FallbackStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DirStoreOptions dopts;
    dopts.logger = log_.logger;
    auto dir = DirStore::Open(share_.path(), dopts);
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
  }

  // The same object on OBS and on the share.
  void PutBoth(const std::string& key, const std::string& data) {
    primary_.PutObject(key, data);
    share_.Write(key, data);
  }

  std::unique_ptr<FallbackStore> Make(FallbackOptions opts = {}) {
    if (opts.probe_interval == FallbackOptions{}.probe_interval) {
      opts.probe_interval = std::chrono::hours(1);  // probes only on ProbeNow()
    }
    opts.logger = log_.logger;
    return std::make_unique<FallbackStore>(primary_, *dir_, std::move(opts), &metrics_);
  }

  uint64_t Count(const std::string& name) { return metrics_.GetCounter(name).value(); }

  Result<std::string> Read(ObjectStore& s, const std::string& key, uint64_t off, uint64_t len,
                           const std::string& if_match = "") {
    std::string buf(len, '\0');
    GetRequest req;
    req.key = key;
    req.range = ByteRange{off, len};
    req.if_match = if_match;
    auto n = s.Get(req, buf.data(), buf.size());
    if (!n.ok()) return n.status();
    buf.resize(n->bytes);
    return buf;
  }

  // Opens the circuit with one Unavailable Head and checks it happened.
  void OpenCircuit(FallbackStore& fb, const std::string& key) {
    primary_.FailNext(StoreOp::kHead, Status::Unavailable("connect refused"));
    ASSERT_TRUE(fb.Head(key).ok());
    ASSERT_TRUE(fb.circuit_open());
  }

  // Wakes the probe until the circuit closes (bounded).
  bool ProbeUntilClosed(FallbackStore& fb) {
    return WaitFor([&] {
      fb.ProbeNow();
      return !fb.circuit_open();
    });
  }

  TempDir share_;
  MemoryStore primary_;
  std::unique_ptr<DirStore> dir_;
  Metrics metrics_;
  LogCapture log_;
};

TEST_F(FallbackStoreTest, ClosedCircuitServesThePrimaryOnly) {
  primary_.PutObject("k", "from-obs");  // not on the share at all
  auto fb = Make();
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_FALSE(IsDirStoreEtag(head->etag));
  auto data = Read(*fb, "k", 0, 8);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "from-obs");
  EXPECT_FALSE(fb->circuit_open());
  EXPECT_EQ(Count("dsfs_fallback_secondary_requests_total"), 0u);
  EXPECT_EQ(log_.sink->Lines().size(), 0u);
}

TEST_F(FallbackStoreTest, OpensAfterThresholdTransientFailuresAndServesTheTrippingCall) {
  PutBoth("m/shard", Content("m/shard", 100));
  FallbackOptions opts;
  opts.failure_threshold = 3;
  auto fb = Make(opts);
  primary_.FailNext(StoreOp::kGet, Status::Transient("HTTP 503"), 3);
  // Below the threshold each failed call is served by the share, and the
  // circuit stays closed (the next call tries OBS again).
  EXPECT_EQ(*Read(*fb, "m/shard", 0, 10), Content("m/shard", 100).substr(0, 10));
  EXPECT_EQ(*Read(*fb, "m/shard", 0, 10), Content("m/shard", 100).substr(0, 10));
  EXPECT_FALSE(fb->circuit_open());
  EXPECT_EQ(log_.sink->Count(kOpenLine), 0);
  EXPECT_EQ(Count("dsfs_fallback_secondary_requests_total"), 2u);
  // The third failure opens the circuit and the same call is served by the share.
  auto data = Read(*fb, "m/shard", 10, 20);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, Content("m/shard", 100).substr(10, 20));
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(log_.sink->Count(kOpenLine), 1);
  EXPECT_EQ(log_.sink->Count("serving from dir:" + share_.path()), 1);
  EXPECT_EQ(log_.sink->Count("HTTP 503"), 1);  // the reason
  EXPECT_EQ(Count("dsfs_fallback_open_total"), 1u);
  EXPECT_EQ(Count("dsfs_fallback_close_total"), 0u);

  // While open nothing goes to the primary.
  primary_.ResetCounters();
  EXPECT_TRUE(fb->Head("m/shard").ok());
  EXPECT_TRUE(Read(*fb, "m/shard", 0, 100).ok());
  ListRequest lr;
  EXPECT_TRUE(fb->List(lr).ok());
  auto c = primary_.counters();
  EXPECT_EQ(c.head + c.get + c.list, 0);
  EXPECT_EQ(log_.sink->Count(kOpenLine), 1);
}

TEST_F(FallbackStoreTest, SuccessAndAnswersResetTheFailureCount) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  for (int round = 0; round < 3; ++round) {
    primary_.FailNext(StoreOp::kHead, Status::Throttled("SlowDown"), 2);
    EXPECT_TRUE(fb->Head("k").ok());  // served by the share
    EXPECT_TRUE(fb->Head("k").ok());
    if (round % 2 == 0) {
      EXPECT_TRUE(fb->Head("k").ok());
    } else {
      EXPECT_EQ(fb->Head("missing").status().code(), StatusCode::kNotFound);
    }
  }
  EXPECT_FALSE(fb->circuit_open());
  EXPECT_EQ(Count("dsfs_fallback_open_total"), 0u);
}

TEST_F(FallbackStoreTest, BelowTheThresholdAShareMissGivesThePrimaryError) {
  primary_.PutObject("only-obs", "x");  // the share lags behind the bucket
  auto fb = Make();
  primary_.FailNext(StoreOp::kGet, Status::Transient("HTTP 500"));
  auto r = Read(*fb, "only-obs", 0, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kTransient);  // not the share's NotFound
  EXPECT_FALSE(fb->circuit_open());
}

TEST_F(FallbackStoreTest, UnavailableOpensAtOnce) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  primary_.FailNext(StoreOp::kHead, Status::Unavailable("connect timeout"));
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_TRUE(fb->circuit_open());
  // Served by the share: its identity, not an OBS one.
  EXPECT_TRUE(IsDirStoreEtag(head->etag)) << head->etag;
  EXPECT_EQ(head->size, 10u);
  EXPECT_EQ(log_.sink->Count(kOpenLine), 1);
}

TEST_F(FallbackStoreTest, NonRetryableErrorsAreReturnedAndNeverOpen) {
  PutBoth("k", "0123456789");
  share_.Write("only-on-share", "x");
  auto fb = Make();
  for (const Status& s :
       {Status::AccessDenied("403"), Status::NotFound("404"), Status::PreconditionFailed("412"),
        Status::InvalidArgument("400"), Status::IoError("local")}) {
    for (int i = 0; i < 5; ++i) primary_.FailNext(StoreOp::kGet, s);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(Read(*fb, "k", 0, 4).status().code(), s.code()) << s.ToString();
    }
    primary_.FailNext(StoreOp::kList, s);
    EXPECT_EQ(fb->List(ListRequest{}).status().code(), s.code());
  }
  // A key the primary does not have is NotFound even if the share has it.
  EXPECT_EQ(fb->Head("only-on-share").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fb->circuit_open());
  EXPECT_EQ(Count("dsfs_fallback_secondary_requests_total"), 0u);
  EXPECT_EQ(log_.sink->Lines().size(), 0u);
}

TEST_F(FallbackStoreTest, ReadInProgressContinuesFromTheShareAtTheSameOffset) {
  const std::string data = Content("w/0001.safetensors", 4096);
  PutBoth("w/0001.safetensors", data);
  auto fb = Make();
  std::string got;
  for (uint64_t off = 0; off < data.size(); off += 512) {
    if (off == 2048) {
      primary_.FailNext(StoreOp::kGet, Status::Unavailable("connection reset"));
    }
    auto part = Read(*fb, "w/0001.safetensors", off, 512);
    ASSERT_TRUE(part.ok()) << "offset " << off << ": " << part.status().ToString();
    got += *part;
  }
  EXPECT_EQ(got, data);
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(primary_.counters().get, 5);  // 4 good + the failing one
}

TEST_F(FallbackStoreTest, ProbeClosesTheCircuitWhenThePrimaryAnswers) {
  PutBoth("k", "0123456789");
  std::atomic<int> probes{0};
  primary_.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kList) ++probes;
  });
  FallbackOptions opts;
  opts.probe_prefix = "models/";
  auto fb = Make(opts);
  OpenCircuit(*fb, "k");

  // A failing probe keeps it open.
  primary_.FailNext(StoreOp::kList, Status::Transient("still down"));
  fb->ProbeNow();
  ASSERT_TRUE(WaitFor([&] { return probes.load() >= 1; }));
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(log_.sink->Count(kCloseLine), 0);

  // The primary is back: the next probe closes it (an empty listing is fine).
  ASSERT_TRUE(ProbeUntilClosed(*fb));
  EXPECT_EQ(log_.sink->Count(kCloseLine), 1);
  EXPECT_EQ(log_.sink->Count(kOpenLine), 1);
  EXPECT_EQ(Count("dsfs_fallback_open_total"), 1u);
  EXPECT_EQ(Count("dsfs_fallback_close_total"), 1u);
  // Requests go to the primary again.
  primary_.ResetCounters();
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok());
  EXPECT_FALSE(IsDirStoreEtag(head->etag));
  EXPECT_EQ(primary_.counters().head, 1);
  EXPECT_EQ(log_.sink->Count("probe of OBS failed"), 1);  // debug level
}

TEST_F(FallbackStoreTest, NotFoundFromACustomProbeCountsAsRecovered) {
  PutBoth("k", "0123456789");
  FallbackOptions opts;
  std::atomic<int> calls{0};
  opts.probe = [&](ObjectStore& p) {
    ++calls;
    return p.Head("no-such-probe-key").status();
  };
  auto fb = Make(opts);
  OpenCircuit(*fb, "k");
  ASSERT_TRUE(ProbeUntilClosed(*fb));
  EXPECT_GE(calls.load(), 1);
  EXPECT_EQ(Count("dsfs_fallback_close_total"), 1u);
}

TEST_F(FallbackStoreTest, SmallProbeIntervalClosesWithoutBeingWoken) {
  PutBoth("k", "0123456789");
  FallbackOptions opts;
  opts.probe_interval = std::chrono::milliseconds(10);
  auto fb = Make(opts);
  OpenCircuit(*fb, "k");
  EXPECT_TRUE(WaitFor([&] { return !fb->circuit_open(); }));
  EXPECT_EQ(log_.sink->Count(kCloseLine), 1);
}

TEST_F(FallbackStoreTest, ReopensAfterRecoveryWithOneLinePerTransition) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  for (int i = 0; i < 3; ++i) {
    OpenCircuit(*fb, "k");
    ASSERT_TRUE(ProbeUntilClosed(*fb));
  }
  EXPECT_EQ(log_.sink->Count(kOpenLine), 3);
  EXPECT_EQ(log_.sink->Count(kCloseLine), 3);
  EXPECT_EQ(Count("dsfs_fallback_open_total"), 3u);
  EXPECT_EQ(Count("dsfs_fallback_close_total"), 3u);
}

TEST_F(FallbackStoreTest, SizeMismatchFailsWithIoErrorAndNoBytes) {
  primary_.PutObject("k", "0123456789");  // OBS: 10 bytes
  share_.Write("k", "0123456789AB");      // share: 12 bytes (stale copy)
  auto fb = Make();
  ASSERT_TRUE(fb->Head("k").ok());  // the primary reports 10
  primary_.FailNext(StoreOp::kGet, Status::Unavailable("down"));
  std::string buf(10, '#');
  GetRequest req;
  req.key = "k";
  req.range = ByteRange{0, 10};
  auto n = fb->Get(req, buf.data(), buf.size());
  EXPECT_EQ(n.status().code(), StatusCode::kIoError);
  EXPECT_EQ(ToErrno(n.status()), EIO);
  EXPECT_EQ(buf, std::string(10, '#'));  // no share bytes
  EXPECT_TRUE(fb->circuit_open());
  // Head from the share is refused the same way; the line is logged once.
  EXPECT_EQ(fb->Head("k").status().code(), StatusCode::kIoError);
  EXPECT_EQ(fb->Get(req, buf.data(), buf.size()).status().code(), StatusCode::kIoError);
  EXPECT_EQ(log_.sink->Count("fallback: size mismatch for k: OBS 10, share 12"), 1);
  EXPECT_EQ(Count("dsfs_fallback_size_mismatch_total"), 3u);
}

TEST_F(FallbackStoreTest, SizesLearnedFromListAndWholeGetsGuardToo) {
  primary_.PutObject("dir/listed", "0123");
  share_.Write("dir/listed", "01234");
  primary_.PutObject("whole", "abc");
  share_.Write("whole", "abcd");
  auto fb = Make();
  ListRequest lr;
  lr.prefix = "dir/";
  ASSERT_TRUE(fb->List(lr).ok());
  std::string buf(3, '\0');
  GetRequest whole;
  whole.key = "whole";
  ASSERT_TRUE(fb->Get(whole, buf.data(), buf.size()).ok());
  fb->StartOpen("test");
  EXPECT_EQ(fb->Head("dir/listed").status().code(), StatusCode::kIoError);
  EXPECT_EQ(fb->Head("whole").status().code(), StatusCode::kIoError);
}

TEST_F(FallbackStoreTest, KeyThePrimaryNeverReportedIsServedFromTheShare) {
  primary_.PutObject("k", "0123456789");
  share_.Write("k", "a different size");
  auto fb = Make();
  fb->StartOpen("mount while OBS is down");
  auto data = Read(*fb, "k", 0, 16);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "a different size");
}

TEST_F(FallbackStoreTest, PrimaryNotFoundForgetsTheSize) {
  primary_.PutObject("k", "0123456789");
  share_.Write("k", "0123");
  auto fb = Make();
  ASSERT_TRUE(fb->Head("k").ok());
  primary_.RemoveObject("k");
  EXPECT_EQ(fb->Head("k").status().code(), StatusCode::kNotFound);
  fb->StartOpen("test");
  EXPECT_TRUE(fb->Head("k").ok());
}

TEST_F(FallbackStoreTest, RememberedKeysAreBounded) {
  for (const std::string k : {"a", "b", "c"}) {
    primary_.PutObject(k, "0123456789");
    share_.Write(k, "01234");
  }
  FallbackOptions opts;
  opts.max_remembered_keys = 2;
  auto fb = Make(opts);
  for (const std::string k : {"a", "b", "c"}) ASSERT_TRUE(fb->Head(k).ok());
  fb->StartOpen("test");
  EXPECT_TRUE(fb->Head("a").ok());  // evicted: the guard cannot apply
  EXPECT_EQ(fb->Head("b").status().code(), StatusCode::kIoError);
  EXPECT_EQ(fb->Head("c").status().code(), StatusCode::kIoError);
}

TEST_F(FallbackStoreTest, ReaderPinnedToAnObsEtagKeepsReadingFromTheShare) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok());
  const std::string obs_etag = head->etag;
  ASSERT_FALSE(IsDirStoreEtag(obs_etag));
  primary_.FailNext(StoreOp::kGet, Status::Unavailable("down"));
  auto data = Read(*fb, "k", 2, 5, obs_etag);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "23456");
  // A different OBS ETag than the primary last reported: ESTALE.
  EXPECT_EQ(Read(*fb, "k", 2, 5, "0123abcd").status().code(), StatusCode::kPreconditionFailed);
}

TEST_F(FallbackStoreTest, ObsEtagThatChangedOnObsIsStaleOnTheShare) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  auto v1 = fb->Head("k");
  ASSERT_TRUE(v1.ok());
  primary_.PutObject("k", "abcdefghij");  // same size, new version
  auto v2 = fb->Head("k");
  ASSERT_TRUE(v2.ok());
  ASSERT_NE(v1->etag, v2->etag);
  fb->StartOpen("test");
  EXPECT_EQ(Read(*fb, "k", 0, 10, v1->etag).status().code(), StatusCode::kPreconditionFailed);
  EXPECT_TRUE(Read(*fb, "k", 0, 10, v2->etag).ok());
}

TEST_F(FallbackStoreTest, ReaderPinnedToAShareEtagStaysOnTheShareAfterRecovery) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  OpenCircuit(*fb, "k");
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok());
  ASSERT_TRUE(IsDirStoreEtag(head->etag));
  ASSERT_TRUE(ProbeUntilClosed(*fb));
  primary_.ResetCounters();
  auto data = Read(*fb, "k", 0, 4, head->etag);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "0123");
  EXPECT_EQ(primary_.counters().get, 0);
  // The share file changes: the pinned reader gets ESTALE, never other bytes.
  share_.Write("k", "01234567890");
  EXPECT_EQ(Read(*fb, "k", 0, 4, head->etag).status().code(), StatusCode::kPreconditionFailed);
}

TEST_F(FallbackStoreTest, SecondaryErrorsAreReturnedAsIs) {
  primary_.PutObject("obs-only", "x");
  auto fb = Make();
  fb->StartOpen("test");
  EXPECT_EQ(fb->Head("obs-only").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Read(*fb, "obs-only", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fb->Head("../etc/passwd").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FallbackStoreTest, StartOpenLogsOnceAndCounts) {
  auto fb = Make();
  EXPECT_FALSE(fb->circuit_open());
  fb->StartOpen("connect to 127.0.0.1:1 refused");
  fb->StartOpen("again");
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(log_.sink->Count(kOpenLine), 1);
  EXPECT_EQ(log_.sink->Count("connect to 127.0.0.1:1 refused"), 1);
  EXPECT_EQ(Count("dsfs_fallback_open_total"), 1u);
}

TEST(FallbackStoreStatic, PrimaryDownErrors) {
  EXPECT_TRUE(FallbackStore::IsPrimaryDownError(Status::Unavailable("")));
  EXPECT_TRUE(FallbackStore::IsPrimaryDownError(Status::Transient("")));
  EXPECT_TRUE(FallbackStore::IsPrimaryDownError(Status::Throttled("")));
  EXPECT_FALSE(FallbackStore::IsPrimaryDownError(Status::Ok()));
  EXPECT_FALSE(FallbackStore::IsPrimaryDownError(Status::NotFound("")));
  EXPECT_FALSE(FallbackStore::IsPrimaryDownError(Status::AccessDenied("")));
  EXPECT_FALSE(FallbackStore::IsPrimaryDownError(Status::PreconditionFailed("")));
  EXPECT_FALSE(FallbackStore::IsPrimaryDownError(Status::InvalidArgument("")));
}

std::vector<std::string> ListKeys(ObjectStore& s, int max_keys,
                                  const std::function<void(int page)>& between_pages) {
  std::vector<std::string> keys;
  ListRequest req;
  req.max_keys = max_keys;
  for (int page = 0; page < 100; ++page) {
    auto r = s.List(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    for (const auto& o : r->objects) keys.push_back(o.key);
    if (r->next_continuation.empty()) break;
    req.continuation = r->next_continuation;
    between_pages(page);
  }
  return keys;
}

TEST_F(FallbackStoreTest, ListingContinuesAcrossCircuitFlips) {
  const std::vector<std::string> all = {"a", "b", "c", "d", "e", "f", "g"};
  for (const auto& k : all) PutBoth(k, "v-" + k);
  auto fb = Make();
  // Starts on OBS, continues on the share after the circuit opens.
  auto keys = ListKeys(*fb, 2, [&](int page) {
    if (page == 0) primary_.FailNext(StoreOp::kList, Status::Unavailable("down"));
  });
  EXPECT_EQ(keys, all);
  EXPECT_TRUE(fb->circuit_open());
  // Starts on the share and stays there after recovery.
  keys = ListKeys(*fb, 3, [&](int page) {
    if (page == 0) {
      ASSERT_TRUE(ProbeUntilClosed(*fb));
    }
  });
  EXPECT_EQ(keys, all);
  EXPECT_FALSE(fb->circuit_open());
  // Primary pages while closed.
  primary_.ResetCounters();
  keys = ListKeys(*fb, 3, [](int) {});
  EXPECT_EQ(keys, all);
  EXPECT_EQ(primary_.counters().list, 3);

  ListRequest bad;
  bad.continuation = "garbage";
  EXPECT_EQ(fb->List(bad).status().code(), StatusCode::kInvalidArgument);
  bad.continuation = "p99:x";
  EXPECT_EQ(fb->List(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FallbackStoreTest, OwningConstructorAndDescribe) {
  auto mem = std::make_unique<MemoryStore>();
  mem->PutObject("k", "v");
  auto dir = DirStore::Open(share_.path());
  ASSERT_TRUE(dir.ok());
  FallbackStore fb(std::move(mem), std::move(dir).value(), FallbackOptions{}, nullptr);
  EXPECT_EQ(fb.Describe(), "fallback(memory, dir:" + share_.path() + ")");
  EXPECT_TRUE(fb.Head("k").ok());
}

TEST_F(FallbackStoreTest, DestructorStopsTheProbeThreadPromptly) {
  PutBoth("k", "v");
  FallbackOptions opts;
  opts.probe_interval = std::chrono::hours(24);
  auto fb = Make(opts);
  OpenCircuit(*fb, "k");
  auto done = std::async(std::launch::async, [&] { fb.reset(); });
  // A bound for a hung destructor, not a timing assertion.
  EXPECT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready);
}

TEST_F(FallbackStoreTest, ManyReadersWhileTheCircuitFlips) {
  constexpr int kObjects = 4;
  constexpr size_t kSize = 64 * 1024;
  for (int i = 0; i < kObjects; ++i) {
    std::string key = "shard-" + std::to_string(i);
    PutBoth(key, Content(key, kSize));
  }
  auto fb = Make();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::string buf(4096, '\0');
      for (uint64_t i = 0; !stop.load(); ++i) {
        std::string key = "shard-" + std::to_string((t + i) % kObjects);
        uint64_t off = (i * 4096 + static_cast<uint64_t>(t) * 512) % (kSize - 4096);
        GetRequest req;
        req.key = key;
        req.range = ByteRange{off, 4096};
        auto n = fb->Get(req, buf.data(), buf.size());
        if (!n.ok() || buf != Content(key, kSize).substr(off, 4096)) ++failures;
        ++reads;
      }
    });
  }
  constexpr int kFlips = 20;
  for (int flip = 0; flip < kFlips; ++flip) {
    primary_.FailNext(StoreOp::kGet, Status::Unavailable("flap"));
    ASSERT_TRUE(WaitFor([&] { return fb->circuit_open(); }));
    ASSERT_TRUE(ProbeUntilClosed(*fb));
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(Count("dsfs_fallback_open_total"), static_cast<uint64_t>(kFlips));
  EXPECT_EQ(Count("dsfs_fallback_close_total"), static_cast<uint64_t>(kFlips));
  EXPECT_EQ(log_.sink->Count(kOpenLine), kFlips);
  EXPECT_EQ(log_.sink->Count(kCloseLine), kFlips);
}

}  // namespace
}  // namespace dsfs
