// FallbackStore with two sources at once (fallback_parallel=on): reads of
// a proven share copy split between OBS and the share while OBS is healthy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/dir_store.h"
#include "backends/fallback_store.h"
#include "backends/memory_store.h"
#include "tests/unit/backends/fallback_test_util.h"

namespace dsfs {
namespace {

using testing::LogCapture;
using testing::Md5Hex;
using testing::TempDir;
using testing::WaitFor;

constexpr uint64_t kKiB = 1024;

std::string Content(uint32_t seed, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    s[i] = static_cast<char>(seed >> 24);
  }
  return s;
}

// The next two Gets of one offset, on whichever store: the first waits
// `first` (cut short by its cancel token if first_honors), the second
// `second` likewise.
struct Stall {
  uint64_t offset = 0;
  std::chrono::milliseconds first{0}, second{0};
  bool first_honors = true, second_honors = true;
  std::atomic<int> seen{2};  // 2: disarmed
  void Arm(uint64_t at) {
    offset = at;
    seen = 0;
  }
  // Returns Cancelled when the wait was cut short.
  Status Wait(const GetRequest& request) {
    if (!request.range || request.range->offset != offset) return Status::Ok();
    const int n = seen++;
    if (n >= 2) return Status::Ok();
    const auto until = std::chrono::steady_clock::now() + (n == 0 ? first : second);
    const bool honors = n == 0 ? first_honors : second_honors;
    while (std::chrono::steady_clock::now() < until) {
      if (honors && IsCancelled(request.cancel)) return Status::Cancelled("cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::Ok();
  }
};

// Another store behind a pipe of `rate` bytes/s that serves one Get after
// the other (a bandwidth cap, as OBS's per account), and that can be made
// to fail its Gets.
class PipeStore : public ObjectStore {
 public:
  explicit PipeStore(ObjectStore& inner) : inner_(inner) {}
  void set_rate(double bytes_per_second) { rate_ = bytes_per_second; }
  void set_fail(Status status) {
    std::lock_guard lock(fail_mu_);
    fail_ = std::move(status);
  }
  int gets() const { return gets_.load(); }
  void set_stall(Stall* stall) { stall_ = stall; }

  Result<ObjectInfo> Head(const std::string& key) override { return inner_.Head(key); }
  Result<ListPage> List(const ListRequest& request) override { return inner_.List(request); }
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
    ++gets_;
    {
      std::lock_guard lock(fail_mu_);
      if (!fail_.ok()) return fail_;
    }
    if (stall_ != nullptr) DSFS_RETURN_IF_ERROR(stall_->Wait(request));
    const double rate = rate_.load();
    if (rate > 0 && request.range) {
      // A pipe of `rate` bytes/s, one transfer at a time. The transfer
      // ends at a deadline on the pipe's own timeline, not after a sleep
      // of its length: a late wake-up (a loaded machine) is made up by the
      // transfers that follow, so the rate holds on average however late
      // each sleep is (with plain sleeps, a few ms of lateness per
      // transfer made two pipes of 2:1 look alike).
      std::lock_guard pipe(pipe_mu_);
      const auto now = std::chrono::steady_clock::now();
      if (now - pipe_free_ > kPipeSlack) pipe_free_ = now;  // idle: starts afresh
      pipe_free_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(request.range->length / rate));
      std::this_thread::sleep_until(pipe_free_);
    }
    return inner_.Get(request, buf, buf_len);
  }
  std::string Describe() const override { return "pipe(" + inner_.Describe() + ")"; }

 private:
  ObjectStore& inner_;
  std::atomic<double> rate_{0};
  static constexpr std::chrono::milliseconds kPipeSlack{50};
  std::mutex pipe_mu_;                          // one transfer at a time
  std::chrono::steady_clock::time_point pipe_free_;  // guarded by pipe_mu_
  std::mutex fail_mu_;
  Status fail_ = Status::Ok();  // guarded by fail_mu_
  std::atomic<int> gets_{0};
  Stall* stall_ = nullptr;
};

class FallbackParallelTest : public ::testing::Test {
 protected:
  static constexpr char kKey[] = "m/model-00001.safetensors";

  void SetUp() override {
    DirStoreOptions dopts;
    dopts.logger = log_.logger;
    auto dir = DirStore::Open(share_dir_.path(), dopts);
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    share_ = std::make_unique<PipeStore>(*dir_);
    obs_.set_stall(&stall_);
    share_->set_stall(&stall_);
  }

  void PutObs(const std::string& key, const std::string& data) {
    primary_.PutObject(key, data);
    primary_.SetEtag(key, Md5Hex(data));
  }
  void PutBoth(const std::string& key, const std::string& data) {
    PutObs(key, data);
    share_dir_.Write(key, data);
  }
  std::string Etag(const std::string& key) { return primary_.Head(key)->etag; }

  std::unique_ptr<FallbackStore> Make(bool parallel = true, FallbackOptions opts = {}) {
    opts.probe_interval = std::chrono::hours(1);
    opts.proof_rate = 0;
    opts.parallel = parallel;
    opts.parallel_stat_ttl = std::chrono::milliseconds(1);
    opts.logger = log_.logger;
    return std::make_unique<FallbackStore>(obs_, share_.get(), std::move(opts), &metrics_);
  }
  std::string Prove(FallbackStore& fb, const std::string& key) {
    auto r = fb.Prove(*primary_.Head(key));
    return r.ok() ? *r : r.status().ToString();
  }

  uint64_t Count(const std::string& name, const std::string& source = "") {
    if (source.empty()) return metrics_.GetCounter(name).value();
    return metrics_.GetCounter(name, "", {{"source", source}}).value();
  }

  // Reads [off, off+len) pinned to etag.
  Result<std::string> Read(ObjectStore& s, const std::string& key, uint64_t off, uint64_t len,
                           const std::string& etag) {
    std::string buf(len, '\0');
    GetRequest req{.key = key, .range = ByteRange{off, len}, .if_match = etag};
    auto r = s.Get(req, buf.data(), buf.size());
    if (!r.ok()) return r.status();
    EXPECT_EQ(r->etag, etag);
    return buf;
  }

  // Reads until the object's share identity is known (the first reads go
  // to OBS while the share file is stat'ed in the background).
  void Warm(FallbackStore& fb, const std::string& key) {
    ASSERT_TRUE(Read(fb, key, 0, 4 * kKiB, Etag(key)).ok());
    ASSERT_TRUE(fb.WaitShareStatsIdle(std::chrono::seconds(20)));
  }

  // `readers` threads read the object in `chunk`s, `passes` times; every
  // read's bytes are checked.
  void ReadInParallel(FallbackStore& fb, const std::string& key, const std::string& data,
                      size_t chunk, int readers, int passes) {
    const std::string etag = Etag(key);
    std::atomic<size_t> next{0};
    const size_t chunks = data.size() / chunk;
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < readers; ++t) {
      threads.emplace_back([&] {
        for (size_t i; (i = next++) < chunks * passes;) {
          const size_t off = (i % chunks) * chunk;
          auto got = Read(fb, key, off, chunk, etag);
          if (!got.ok() || *got != data.substr(off, chunk)) ++bad;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
  }

  TempDir share_dir_;
  MemoryStore primary_;
  PipeStore obs_{primary_};
  std::unique_ptr<DirStore> dir_;
  std::unique_ptr<PipeStore> share_;
  Stall stall_;
  Metrics metrics_;
  LogCapture log_;
};

// The split follows the rates: the source twice as fast gets about twice
// the bytes (bounds generous: this is a count, not a timing, but the
// pipes are real sleeps on a loaded machine).
TEST_F(FallbackParallelTest, SplitFollowsTheRates) {
  const std::string data = Content(1, 4 << 20);
  PutBoth(kKey, data);
  for (bool obs_faster : {true, false}) {
    SCOPED_TRACE(obs_faster ? "OBS twice as fast" : "share twice as fast");
    const double obs0 = Count("dsfs_parallel_bytes_total", "obs");
    const double share0 = Count("dsfs_parallel_bytes_total", "share");
    const double tier0 = Count("dsfs_share_bytes_read_total");
    auto fb = Make();
    ASSERT_EQ(Prove(*fb, kKey), "proven");
    Warm(*fb, kKey);
    obs_.set_rate(obs_faster ? 128e6 : 64e6);
    share_->set_rate(obs_faster ? 64e6 : 128e6);
    ReadInParallel(*fb, kKey, data, 256 * kKiB, 6, 8);
    const double obs = Count("dsfs_parallel_bytes_total", "obs") - obs0;
    const double share = Count("dsfs_parallel_bytes_total", "share") - share0;
    ASSERT_GT(obs + share, 0);
    const double faster = (obs_faster ? obs : share) / (obs + share);
    // Quiet, the faster source gets 0.66-0.68 of the bytes (2:1 is 0.67;
    // 20 runs). On a starved machine late wake-ups distort what the split
    // measures (0.93-0.9999 seen with both cores busy), so only the
    // majority and the use of both sources are asserted.
    EXPECT_GT(faster, 0.5) << "obs " << obs << " share " << share;
    EXPECT_GT(obs_faster ? share : obs, 0) << "the slower source was never read";
    EXPECT_EQ(Count("dsfs_share_bytes_read_total") - tier0, share);
    EXPECT_EQ(Count("dsfs_parallel_share_failures_total"), 0u);
    obs_.set_rate(0);
    share_->set_rate(0);
  }
}

TEST_F(FallbackParallelTest, AnUnprovenCopyIsNeverUsed) {
  const std::string data = Content(2, 1 << 20);
  PutObs(kKey, data);
  share_dir_.Write(kKey, Content(3, data.size()));  // same size, other bytes
  auto fb = Make();
  EXPECT_EQ(Prove(*fb, kKey), "differs");
  Warm(*fb, kKey);
  const int share_gets = share_->gets();  // the proof's reads
  ReadInParallel(*fb, kKey, data, 64 * kKiB, 4, 2);
  EXPECT_EQ(share_->gets(), share_gets);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "share"), 0u);
  EXPECT_EQ(Count("dsfs_share_bytes_read_total"), 0u);
}

TEST_F(FallbackParallelTest, NeverProvenCopyIsNeverUsed) {
  const std::string data = Content(4, 1 << 20);
  PutBoth(kKey, data);  // identical, but nobody proved it
  auto fb = Make();
  Warm(*fb, kKey);
  ReadInParallel(*fb, kKey, data, 64 * kKiB, 4, 2);
  EXPECT_EQ(share_->gets(), 0);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "share"), 0u);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "obs"), 0u);  // reads that could not go either way
  EXPECT_GT(obs_.gets(), 0);
}

// The share copy is rewritten after its proof: its reads fail the share's
// If-Match and are served from OBS in the same call, with OBS's bytes.
TEST_F(FallbackParallelTest, ACopyChangedAfterItsProofIsServedFromObs) {
  const std::string data = Content(5, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make();
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  Warm(*fb, kKey);
  // Other bytes, same size; a different mtime makes it another version.
  share_dir_.Write(kKey, Content(6, data.size()));
  const std::string path = share_dir_.Sub(kKey);
  struct timespec times[2] = {{0, UTIME_OMIT}, {1234567, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  const std::string etag = Etag(kKey);
  for (uint64_t off = 0; off < data.size(); off += 64 * kKiB) {
    auto got = Read(*fb, kKey, off, 64 * kKiB, etag);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, data.substr(off, 64 * kKiB)) << "offset " << off;
  }
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "share"), 0u);
  // One share read failed; the object's reads then stay off the share.
  EXPECT_EQ(Count("dsfs_parallel_share_failures_total"), 1u);
  EXPECT_FALSE(fb->circuit_open());
}

TEST_F(FallbackParallelTest, AShareFailureIsRetriedOnObsInTheSameCall) {
  const std::string data = Content(7, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make();
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  Warm(*fb, kKey);
  share_->set_fail(Status::Unavailable("share did not answer"));
  ReadInParallel(*fb, kKey, data, 64 * kKiB, 4, 2);
  EXPECT_GE(Count("dsfs_parallel_share_failures_total"), 1u);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "share"), 0u);
  EXPECT_FALSE(fb->circuit_open());
}

TEST_F(FallbackParallelTest, OffReadsThePrimaryOnly) {
  const std::string data = Content(8, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make(/*parallel=*/false);
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  const int share_gets = share_->gets();
  ReadInParallel(*fb, kKey, data, 64 * kKiB, 4, 2);
  EXPECT_EQ(share_->gets(), share_gets);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "obs"), 0u);
  EXPECT_EQ(Count("dsfs_parallel_bytes_total", "share"), 0u);
  EXPECT_EQ(Count("dsfs_share_bytes_read_total"), 0u);
}

// GetParts takes both sources too, each part with the right bytes.
TEST_F(FallbackParallelTest, GetPartsUsesBothSources) {
  const std::string data = Content(9, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make();
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  Warm(*fb, kKey);
  const std::string etag = Etag(kKey);
  for (int i = 0; i < 8; ++i) {
    const uint64_t off = static_cast<uint64_t>(i) * 96 * kKiB;
    std::string a(32 * kKiB, '\0'), b(64 * kKiB, '\0');
    const GetPart parts[] = {{a.data(), a.size()}, {b.data(), b.size()}};
    GetRequest req{.key = kKey, .range = ByteRange{off, 96 * kKiB}, .if_match = etag};
    auto r = fb->GetParts(req, parts);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->etag, etag);
    EXPECT_EQ(a + b, data.substr(off, 96 * kKiB)) << "read " << i;
  }
  // Sequential reads of equal rates: the split alternates at first.
  EXPECT_GT(Count("dsfs_parallel_requests_total", "share"), 0u);
  EXPECT_GT(Count("dsfs_parallel_requests_total", "obs"), 0u);
}

// A proof made on demand is used at once: no share stat is needed before
// the share takes reads.
TEST_F(FallbackParallelTest, AProofIsUsedWithoutWaitingForAStat) {
  const std::string data = Content(12, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make();
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  const std::string etag = Etag(kKey);
  for (uint64_t off = 0; off < 4 * 64 * kKiB; off += 64 * kKiB) {
    auto got = Read(*fb, kKey, off, 64 * kKiB, etag);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, data.substr(off, 64 * kKiB));
  }
  // Equal rates, sequential reads: the fair split's ties alternate at first.
  EXPECT_GT(Count("dsfs_parallel_requests_total", "share"), 0u);
}

// An OBS failure of a read sent to OBS is any OBS failure: the proven
// share serves it and the circuit opens.
TEST_F(FallbackParallelTest, AnObsFailureFollowsTheCircuit) {
  const std::string data = Content(10, 1 << 20);
  PutBoth(kKey, data);
  auto fb = Make();
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  share_->set_rate(8e6);  // OBS is the faster source: it gets reads
  Warm(*fb, kKey);
  obs_.set_fail(Status::Unavailable("connect refused"));
  ReadInParallel(*fb, kKey, data, 64 * kKiB, 2, 1);
  EXPECT_TRUE(fb->circuit_open());
}

// Not a test: MB/s of 8 readers of 4 MiB blocks through two equal pipes of
// 256 MB/s each (the share throttled to the origin's ceiling), on and off.
// --gtest_also_run_disabled_tests --gtest_filter='*Bench*'
TEST_F(FallbackParallelTest, DISABLED_TwoEqualPipesBench) {
  const std::string data = Content(13, 64 << 20);
  PutBoth(kKey, data);
  for (bool parallel : {false, true}) {
    auto fb = Make(parallel);
    ASSERT_EQ(Prove(*fb, kKey), "proven");
    Warm(*fb, kKey);
    obs_.set_rate(256e6);
    share_->set_rate(256e6);
    const auto t0 = std::chrono::steady_clock::now();
    ReadInParallel(*fb, kKey, data, 4 << 20, 8, 4);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    obs_.set_rate(0);
    share_->set_rate(0);
    std::printf("fallback_parallel=%s: %.0f MB/s\n", parallel ? "on" : "off",
                4.0 * static_cast<double>(data.size()) / s / 1e6);
  }
}

// Hedging: enough reads on both sources for their p99 (both pipes alike).
class FallbackHedgeTest : public FallbackParallelTest {
 protected:
  std::unique_ptr<FallbackStore> MakeHedging() {
    FallbackOptions opts;
    // A read is late after max(its source's p99, this). A hedge starts only
    // when the other source is expected to answer within that: with 1 ms, a
    // loaded machine's slower warm-up reads of the other source sometimes
    // put its expected time past the first's tiny p99 and no hedge started
    // (CI's ASan half, ShutdownWithAHedgeInFlight). The tests' first
    // attempts stall 1 s or more, so 100 ms still hedges every one of them.
    opts.hedge_min_delay = std::chrono::milliseconds(100);
    // An idle source takes the next read: both are sampled however the
    // first reads' timings (a sanitizer build, a loaded machine) skew the
    // rates.
    opts.split.probe_after = std::chrono::milliseconds(0);
    auto fb = Make(true, opts);
    EXPECT_EQ(Prove(*fb, kKey), "proven");
    Warm(*fb, kKey);
    obs_.set_rate(256e6);
    share_->set_rate(256e6);
    const uint64_t min_samples = FallbackOptions{}.split.min_latency_samples;
    for (int pass = 0; pass < 50 && (Count("dsfs_parallel_requests_total", "obs") <= min_samples ||
                                     Count("dsfs_parallel_requests_total", "share") <= min_samples);
         ++pass) {
      ReadInParallel(*fb, kKey, data_, 64 * kKiB, 4, 2);
    }
    obs_.set_rate(0);
    share_->set_rate(0);
    EXPECT_GT(Count("dsfs_parallel_requests_total", "obs"), min_samples);
    EXPECT_GT(Count("dsfs_parallel_requests_total", "share"), min_samples);
    return fb;
  }
  // One read of 64 KiB at offset 0 into a buffer of 'X's; checks the bytes.
  void ReadChecked(FallbackStore& fb) {
    std::string buf(64 * kKiB, 'X');
    GetRequest req{.key = kKey, .range = ByteRange{0, buf.size()}, .if_match = Etag(kKey)};
    auto r = fb.Get(req, buf.data(), buf.size());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->etag, req.if_match);
    EXPECT_TRUE(buf == data_.substr(0, buf.size())) << "bytes other than the object's";
  }
  void SetUp() override {
    FallbackParallelTest::SetUp();
    data_ = Content(11, 1 << 20);
    PutBoth(kKey, data_);
  }
  std::string data_;
};

// The first attempt stalls (10 s); the other source answers, the stalled
// attempt is cancelled, and the caller gets the hedge's bytes.
TEST_F(FallbackHedgeTest, ALateReadIsAnsweredByTheOtherSource) {
  auto fb = MakeHedging();
  const uint64_t hedges = Count("dsfs_parallel_hedges_total");
  const uint64_t won = Count("dsfs_parallel_hedges_won_total");
  stall_.first = std::chrono::seconds(10);
  stall_.Arm(0);
  ReadChecked(*fb);
  EXPECT_EQ(Count("dsfs_parallel_hedges_total"), hedges + 1);
  EXPECT_EQ(Count("dsfs_parallel_hedges_won_total"), won + 1);
  EXPECT_EQ(stall_.seen.load(), 2);  // both sources were asked
}

// The first attempt is late but answers before the hedge (which stalls
// 10 s): its bytes are the answer and the hedge is cancelled.
TEST_F(FallbackHedgeTest, TheFirstGoodAnswerWinsAndTheBytesAreNeverMixed) {
  auto fb = MakeHedging();
  const uint64_t hedges = Count("dsfs_parallel_hedges_total");
  const uint64_t won = Count("dsfs_parallel_hedges_won_total");
  stall_.first = std::chrono::seconds(1);
  stall_.first_honors = false;
  stall_.second = std::chrono::seconds(10);
  stall_.Arm(0);
  ReadChecked(*fb);
  EXPECT_EQ(Count("dsfs_parallel_hedges_total"), hedges + 1);
  EXPECT_EQ(Count("dsfs_parallel_hedges_won_total"), won);
}

// A hedge still running (its store ignores cancellation for a while) when
// the store is destroyed: the destructor waits for it and returns.
TEST_F(FallbackHedgeTest, ShutdownWithAHedgeInFlight) {
  auto fb = MakeHedging();
  stall_.first = std::chrono::seconds(1);
  stall_.first_honors = false;
  stall_.second = std::chrono::seconds(2);
  stall_.second_honors = false;
  stall_.Arm(0);
  ReadChecked(*fb);
  EXPECT_EQ(stall_.seen.load(), 2);  // the hedge started
  auto done = std::async(std::launch::async, [&] { fb.reset(); });
  EXPECT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
}

// A source with nothing measured is never hedged (no p99 yet).
TEST_F(FallbackHedgeTest, NoHedgeBeforeThereIsAP99) {
  FallbackOptions opts;
  opts.hedge_min_delay = std::chrono::milliseconds(1);
  auto fb = Make(true, opts);
  ASSERT_EQ(Prove(*fb, kKey), "proven");
  Warm(*fb, kKey);
  stall_.first = std::chrono::milliseconds(50);
  stall_.Arm(0);
  ReadChecked(*fb);
  EXPECT_EQ(Count("dsfs_parallel_hedges_total"), 0u);
}

}  // namespace
}  // namespace dsfs
