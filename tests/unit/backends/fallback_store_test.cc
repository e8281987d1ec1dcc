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
using testing::Md5Hex;
using testing::TempDir;
using testing::WaitFor;

constexpr char kOpenLine[] = "fallback: OBS unavailable (";
constexpr char kCloseLine[] = "fallback: OBS recovered";

std::string HexToBinary(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The ETag S3 gives a multipart upload of data in parts of part_size.
std::string MultipartEtag(std::string_view data, size_t part_size) {
  std::string digests;
  size_t parts = 0;
  for (size_t off = 0; off < data.size(); off += part_size, ++parts) {
    digests += HexToBinary(Md5Hex(data.substr(off, part_size)));
  }
  return Md5Hex(digests) + "-" + std::to_string(parts);
}

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
    PutObs(key, data);
    share_.Write(key, data);
  }
  // An OBS object with the ETag S3 gives a single-part upload (its MD5).
  void PutObs(const std::string& key, const std::string& data) {
    primary_.PutObject(key, data);
    primary_.SetEtag(key, Md5Hex(data));
  }
  // Proves the share copy of key against what the primary reports now.
  std::string ProveNow(FallbackStore& fb, const std::string& key) {
    auto head = primary_.Head(key);
    if (!head.ok()) return head.status().ToString();
    auto r = fb.Prove(*head);
    return r.ok() ? *r : r.status().ToString();
  }

  std::unique_ptr<FallbackStore> Make(FallbackOptions opts = {}) {
    if (opts.probe_interval == FallbackOptions{}.probe_interval) {
      opts.probe_interval = std::chrono::hours(1);  // probes only on ProbeNow()
    }
    // Background proofs only where a test asks for them (a rate of its own).
    if (opts.proof_rate == FallbackOptions{}.proof_rate) opts.proof_rate = 0;
    // OBS only while healthy: reads of proven copies from both sources are
    // fallback_parallel_test.cc's.
    opts.parallel = false;
    opts.logger = log_.logger;
    return std::make_unique<FallbackStore>(primary_, dir_.get(), std::move(opts), &metrics_);
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

TEST_F(FallbackStoreTest, ReasonFromTheServerCannotForgeALogLine) {
  PutBoth("k", "data");
  auto fb = Make();
  primary_.FailNext(StoreOp::kHead,
                    Status::Unavailable("GET 'x\nfallback: OBS recovered': connect refused"));
  ASSERT_TRUE(fb->Head("k").ok());
  ASSERT_TRUE(fb->circuit_open());
  for (const auto& line : log_.sink->Lines()) {
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
  EXPECT_GE(log_.sink->Count("x\\nfallback: OBS recovered"), 1);
}

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

TEST_F(FallbackStoreTest, ReadInProgressContinuesFromAProvenShareCopyAtTheSameOffset) {
  const std::string data = Content("w/0001.safetensors", 4096);
  PutBoth("w/0001.safetensors", data);
  auto fb = Make();
  ASSERT_EQ(ProveNow(*fb, "w/0001.safetensors"), "proven");
  const std::string etag = primary_.Head("w/0001.safetensors")->etag;
  primary_.ResetCounters();
  std::string got;
  for (uint64_t off = 0; off < data.size(); off += 512) {
    if (off == 2048) {
      primary_.FailNext(StoreOp::kGet, Status::Unavailable("connection reset"));
    }
    GetRequest req{.key = "w/0001.safetensors", .range = ByteRange{off, 512}, .if_match = etag};
    std::string buf(512, '\0');
    auto part = fb->Get(req, buf.data(), buf.size());
    ASSERT_TRUE(part.ok()) << "offset " << off << ": " << part.status().ToString();
    // The share's bytes are the OBS version's: reported as that version.
    EXPECT_EQ(part->etag, etag);
    EXPECT_EQ(part->source, off < 2048 ? DataSource::kObjectStore : DataSource::kShare);
    got += buf;
  }
  EXPECT_EQ(got, data);
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(primary_.counters().get, 5);  // 4 good + the failing one
  EXPECT_EQ(Count("dsfs_share_proven_total"), 1u);
  EXPECT_EQ(Count("dsfs_share_bytes_read_total"), 2048u);  // the share tier: the second half
}

// GetParts (one GET of several cache blocks) goes to OBS in place, and
// continues from a proven share copy like Get when OBS fails.
TEST_F(FallbackStoreTest, GetPartsReadsObsAndFailsOverToTheShareLikeGet) {
  const std::string data = Content("w/0002.safetensors", 4096);
  PutBoth("w/0002.safetensors", data);
  auto fb = Make();
  ASSERT_EQ(ProveNow(*fb, "w/0002.safetensors"), "proven");
  const std::string etag = primary_.Head("w/0002.safetensors")->etag;
  for (bool obs_fails : {false, true}) {
    if (obs_fails) primary_.FailNext(StoreOp::kGet, Status::Unavailable("connection reset"));
    std::string a(1000, '\0'), b(1048, '\0');
    const GetPart parts[] = {{a.data(), a.size()}, {b.data(), b.size()}};
    GetRequest req{.key = "w/0002.safetensors", .range = ByteRange{1024, 2048}, .if_match = etag};
    auto r = fb->GetParts(req, parts);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->bytes, 2048u);
    EXPECT_EQ(r->etag, etag);
    EXPECT_EQ(r->source, obs_fails ? DataSource::kShare : DataSource::kObjectStore);
    EXPECT_EQ(a + b, data.substr(1024, 2048)) << "obs fails: " << obs_fails;
  }
  EXPECT_TRUE(fb->circuit_open());
}

// Parts OBS handed out early stay the caller's: a GET cut after them fails
// (the caller fetches the rest again) instead of being read again from the
// share into parts a reader may already hold.
TEST_F(FallbackStoreTest, GetPartsCutAfterPartsWentOutIsNotReadAgainFromTheShare) {
  const std::string data = Content("w/0003.safetensors", 4096);
  PutBoth("w/0003.safetensors", data);
  auto fb = Make();
  ASSERT_EQ(ProveNow(*fb, "w/0003.safetensors"), "proven");
  const std::string etag = primary_.Head("w/0003.safetensors")->etag;
  primary_.CutNextGetParts(1, Status::Unavailable("connection reset"));
  std::string a(1000, '\0'), b(1048, '\0');
  const GetPart parts[] = {{a.data(), a.size()}, {b.data(), b.size()}};
  std::vector<size_t> calls;
  GetRequest req{.key = "w/0003.safetensors", .range = ByteRange{1024, 2048}, .if_match = etag};
  req.on_parts_done = [&](size_t n) { calls.push_back(n); };
  auto r = fb->GetParts(req, parts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(calls, std::vector<size_t>{1});
  EXPECT_EQ(a, data.substr(1024, 1000));
  EXPECT_EQ(Count("dsfs_share_bytes_read_total"), 0u);
  // Without early hand-out the same cut is read from the share.
  primary_.FailNext(StoreOp::kGet, Status::Unavailable("connection reset"));
  req.on_parts_done = nullptr;
  auto again = fb->GetParts(req, parts);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(a + b, data.substr(1024, 2048));
}

TEST_F(FallbackStoreTest, ProbeCutByShutdownDoesNotCloseTheCircuit) {
  PutBoth("k", "0123456789");
  std::atomic<int> probes{0};
  primary_.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kList) ++probes;
  });
  auto fb = Make();
  OpenCircuit(*fb, "k");
  // What S3Store answers once Stop() was called.
  primary_.FailNext(StoreOp::kList, Status::Cancelled("LIST '': dsfs is shutting down"));
  fb->ProbeNow();
  ASSERT_TRUE(WaitFor([&] { return probes.load() >= 1; }));
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(log_.sink->Count(kCloseLine), 0);
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
  EXPECT_EQ(metrics_.GetGauge("dsfs_fallback_state").value(), 0);  // OBS
  OpenCircuit(*fb, "k");
  EXPECT_EQ(metrics_.GetGauge("dsfs_fallback_state").value(), 1);  // the share

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
  EXPECT_EQ(metrics_.GetGauge("dsfs_fallback_state").value(), 0);
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

TEST_F(FallbackStoreTest, UnprovenCopyIsNeverServedAsTheObsVersion) {
  PutObs("k", "0123456789");      // OBS: v1
  share_.Write("k", "abcdefghij");  // share: same size, other bytes (a stale checkpoint)
  auto fb = Make();
  const std::string etag = fb->Head("k")->etag;
  // Not proven yet: an OBS-pinned read that falls to the share gets EIO, no bytes.
  primary_.FailNext(StoreOp::kGet, Status::Unavailable("down"));
  std::string buf(10, '#');
  GetRequest req{.key = "k", .range = ByteRange{0, 10}, .if_match = etag};
  auto n = fb->Get(req, buf.data(), buf.size());
  EXPECT_EQ(n.status().code(), StatusCode::kIoError) << n.status().ToString();
  EXPECT_EQ(ToErrno(n.status()), EIO);
  EXPECT_EQ(buf, std::string(10, '#'));
  EXPECT_TRUE(fb->circuit_open());
  // Proven to differ: still refused; logged once per key and version.
  ASSERT_TRUE(ProbeUntilClosed(*fb));
  EXPECT_EQ(ProveNow(*fb, "k"), "differs");
  fb->OpenCircuit("test");
  EXPECT_EQ(fb->Get(req, buf.data(), buf.size()).status().code(), StatusCode::kIoError);
  EXPECT_EQ(buf, std::string(10, '#'));
  EXPECT_EQ(log_.sink->Count("fallback: 'k' on the share is not proven to be OBS version " + etag),
            1);
  EXPECT_EQ(Count("dsfs_share_unproven_reads_total"), 2u);
  EXPECT_EQ(Count("dsfs_share_differs_total"), 1u);
  // The share file is only ever its own version.
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(IsDirStoreEtag(head->etag)) << head->etag;
  auto own = Read(*fb, "k", 0, 10, head->etag);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(*own, "abcdefghij");
}

TEST_F(FallbackStoreTest, ProofOfSingleAndMultipartEtags) {
  const std::string big = Content("multi", 12 * kMiB + 17);
  primary_.PutObject("multi", big);
  primary_.SetEtag("multi", MultipartEtag(big, 5 * kMiB));  // 3 parts of 5 MiB
  share_.Write("multi", big);
  PutBoth("single", Content("single", 1000));
  primary_.PutObject("odd-etag", "xyz");  // MemoryStore's own ETag: no digest
  share_.Write("odd-etag", "xyz");
  PutObs("missing", "nope");
  primary_.PutObject("multi-stale", big);
  primary_.SetEtag("multi-stale", MultipartEtag(big, 5 * kMiB));
  std::string stale = big;
  stale[7 * kMiB] ^= 1;
  share_.Write("multi-stale", stale);
  auto fb = Make();
  EXPECT_EQ(ProveNow(*fb, "multi"), "proven");
  EXPECT_EQ(ProveNow(*fb, "single"), "proven");
  EXPECT_EQ(ProveNow(*fb, "odd-etag"), "unprovable");
  EXPECT_EQ(ProveNow(*fb, "missing"), "missing");
  EXPECT_EQ(ProveNow(*fb, "multi-stale"), "differs");
  // Proven copies are the OBS version while OBS is down, for new opens too.
  fb->OpenCircuit("test");
  auto head = fb->Head("multi");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, MultipartEtag(big, 5 * kMiB));
  auto part = Read(*fb, "multi", 11 * kMiB, 100, head->etag);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  EXPECT_EQ(*part, big.substr(11 * kMiB, 100));
  EXPECT_TRUE(IsDirStoreEtag(fb->Head("multi-stale")->etag));
  EXPECT_TRUE(IsDirStoreEtag(fb->Head("odd-etag")->etag));
}

TEST_F(FallbackStoreTest, RewrittenShareFileIsUnprovenAgain) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  ASSERT_EQ(ProveNow(*fb, "k"), "proven");
  const std::string etag = primary_.Head("k")->etag;
  share_.Write("k", "9876543210");  // same size, new mtime: another share version
  fb->OpenCircuit("test");
  EXPECT_TRUE(IsDirStoreEtag(fb->Head("k")->etag));
  EXPECT_EQ(Read(*fb, "k", 0, 10, etag).status().code(), StatusCode::kIoError);
}

TEST_F(FallbackStoreTest, BackgroundProverProvesWhatThePrimaryReportedWhileHealthy) {
  PutBoth("a", Content("a", 3 * kMiB));
  PutObs("b", Content("b", 1000));
  share_.Write("b", Content("x", 1000));
  FallbackOptions opts;
  opts.proof_rate = 1ull << 30;
  MemoryProofBook book;
  opts.proofs = &book;
  auto fb = Make(opts);
  ASSERT_TRUE(fb->Head("a").ok());
  ASSERT_TRUE(fb->Head("b").ok());
  ASSERT_TRUE(fb->WaitProofsIdle(std::chrono::seconds(20)));
  EXPECT_EQ(Count("dsfs_share_proven_total"), 1u);
  EXPECT_EQ(Count("dsfs_share_differs_total"), 1u);
  // Kept in the book given: the next store (a remount) finds them.
  auto fb2 = Make(opts);
  fb2->OpenCircuit("test");
  EXPECT_EQ(fb2->Head("a")->etag, primary_.Head("a")->etag);
  EXPECT_TRUE(IsDirStoreEtag(fb2->Head("b")->etag));
}

TEST_F(FallbackStoreTest, ProvePrefixReportsEveryObject) {
  PutBoth("m/a", "aaaa");
  PutObs("m/b", "bbbb");
  share_.Write("m/b", "BBBB");
  PutObs("m/sub/c", "cc");
  PutBoth("other", "zz");
  auto fb = Make();
  auto report = fb->ProvePrefix("m/");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->size(), 3u);
  EXPECT_EQ((*report)[0].key, "m/a");
  EXPECT_EQ((*report)[0].result, "proven");
  EXPECT_EQ((*report)[1].result, "differs");
  EXPECT_EQ((*report)[2].key, "m/sub/c");
  EXPECT_EQ((*report)[2].result, "missing");
}

TEST_F(FallbackStoreTest, WithoutASecondaryTheOpenCircuitFailsFast) {
  PutObs("k", "0123456789");
  FallbackOptions opts;
  opts.logger = log_.logger;
  opts.probe_interval = std::chrono::hours(1);
  FallbackStore fb(primary_, nullptr, opts, &metrics_);
  EXPECT_EQ(fb.Describe(), "circuit(" + primary_.Describe() + ")");
  primary_.FailNext(StoreOp::kHead, Status::Unavailable("connect refused"));
  EXPECT_EQ(fb.Head("k").status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(fb.circuit_open());
  primary_.ResetCounters();
  EXPECT_EQ(fb.Head("k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Read(fb, "k", 0, 4).status().code(), StatusCode::kUnavailable);
  ListRequest lr;
  EXPECT_EQ(fb.List(lr).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(primary_.counters().head + primary_.counters().get, 0);  // fast: OBS not asked
  EXPECT_EQ(log_.sink->Count("offline: OBS unavailable ("), 1);
  ASSERT_TRUE(ProbeUntilClosed(fb));
  EXPECT_EQ(log_.sink->Count("offline: OBS recovered"), 1);
  EXPECT_TRUE(fb.Head("k").ok());
}

TEST_F(FallbackStoreTest, KeyThePrimaryNeverReportedIsServedFromTheShare) {
  primary_.PutObject("k", "0123456789");
  share_.Write("k", "a different size");
  auto fb = Make();
  fb->OpenCircuit("mount while OBS is down");
  auto data = Read(*fb, "k", 0, 16);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "a different size");
}

TEST(MemoryProofBook, IsBounded) {
  MemoryProofBook book(2);
  for (const std::string k : {"a", "b", "c"}) {
    book.Record(k, "sfs-1", ProofRecord{"e", ProofVerdict::kProven});
  }
  EXPECT_FALSE(book.Find("a", "sfs-1").has_value());
  EXPECT_TRUE(book.Find("b", "sfs-1").has_value());
  EXPECT_TRUE(book.Find("c", "sfs-1").has_value());
  EXPECT_FALSE(book.Find("c", "sfs-2").has_value());
}

TEST_F(FallbackStoreTest, ReaderPinnedToAnObsEtagKeepsReadingFromAProvenShare) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  auto head = fb->Head("k");
  ASSERT_TRUE(head.ok());
  const std::string obs_etag = head->etag;
  ASSERT_FALSE(IsDirStoreEtag(obs_etag));
  ASSERT_EQ(ProveNow(*fb, "k"), "proven");
  primary_.FailNext(StoreOp::kGet, Status::Unavailable("down"));
  auto data = Read(*fb, "k", 2, 5, obs_etag);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "23456");
  // Another OBS version than the one proven: never served from the share.
  EXPECT_EQ(Read(*fb, "k", 2, 5, "0123abcd").status().code(), StatusCode::kIoError);
}

TEST_F(FallbackStoreTest, ShareProvenForV1NeverServesItsBytesAsV2) {
  PutBoth("k", "0123456789");
  auto fb = Make();
  auto v1 = fb->Head("k");
  ASSERT_TRUE(v1.ok());
  ASSERT_EQ(ProveNow(*fb, "k"), "proven");
  PutObs("k", "abcdefghij");  // same size, new version; the share still has v1
  auto v2 = fb->Head("k");
  ASSERT_TRUE(v2.ok());
  ASSERT_NE(v1->etag, v2->etag);
  fb->OpenCircuit("test");
  // v1's reader still gets v1's bytes (the share holds exactly them) ...
  auto old = Read(*fb, "k", 0, 10, v1->etag);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(*old, "0123456789");
  // ... and v2's reader never gets them.
  std::string buf(10, '#');
  GetRequest req{.key = "k", .range = ByteRange{0, 10}, .if_match = v2->etag};
  EXPECT_EQ(fb->Get(req, buf.data(), buf.size()).status().code(), StatusCode::kIoError);
  EXPECT_EQ(buf, std::string(10, '#'));
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
  fb->OpenCircuit("test");
  EXPECT_EQ(fb->Head("obs-only").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Read(*fb, "obs-only", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fb->Head("../etc/passwd").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FallbackStoreTest, OpenCircuitLogsOnceAndCounts) {
  auto fb = Make();
  EXPECT_FALSE(fb->circuit_open());
  fb->OpenCircuit("connect to 127.0.0.1:1 refused");
  fb->OpenCircuit("again");
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
  // Even shards: the share holds the same bytes (proven). Odd shards: the
  // share holds other bytes of the same size, which must never be served
  // as the OBS version: a reader gets OBS's bytes or EIO, never the share's.
  std::vector<std::string> etags;
  for (int i = 0; i < kObjects; ++i) {
    std::string key = "shard-" + std::to_string(i);
    PutObs(key, Content(key, kSize));
    share_.Write(key, i % 2 == 0 ? Content(key, kSize) : Content("stale", kSize));
    etags.push_back(primary_.Head(key)->etag);
  }
  auto fb = Make();
  for (int i = 0; i < kObjects; ++i) {
    ASSERT_EQ(ProveNow(*fb, "shard-" + std::to_string(i)), i % 2 == 0 ? "proven" : "differs");
  }
  std::atomic<long> refused{0};
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::string buf(4096, '\0');
      for (uint64_t i = 0; !stop.load(); ++i) {
        const int obj = static_cast<int>((t + i) % kObjects);
        std::string key = "shard-" + std::to_string(obj);
        uint64_t off = (i * 4096 + static_cast<uint64_t>(t) * 512) % (kSize - 4096);
        GetRequest req;
        req.key = key;
        req.range = ByteRange{off, 4096};
        req.if_match = etags[obj];
        auto n = fb->Get(req, buf.data(), buf.size());
        if (n.ok()) {
          if (buf != Content(key, kSize).substr(off, 4096)) ++failures;  // wrong bytes
        } else if (obj % 2 == 1 && n.status().code() == StatusCode::kIoError) {
          ++refused;  // the unproven copy, while the circuit was open
        } else {
          ++failures;
        }
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
