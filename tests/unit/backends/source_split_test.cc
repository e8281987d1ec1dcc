#include "backends/source_split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <queue>
#include <thread>
#include <vector>

namespace dsfs {
namespace {

using Clock = SourceSplit::Clock;
using std::chrono::milliseconds;

constexpr uint64_t kMiB = 1 << 20;

TEST(SourceSplit, FairSplitBeforeAnythingIsMeasured) {
  SourceSplit split;
  const Clock::time_point t0{};
  int counts[2] = {0, 0};
  for (int i = 0; i < 10; ++i) ++counts[split.Choose(kMiB, t0)];
  EXPECT_EQ(counts[0], 5);
  EXPECT_EQ(counts[1], 5);
  // Bytes in flight on one source send the next read to the other.
  split.Start(0, 4 * kMiB, t0);
  EXPECT_EQ(split.Choose(kMiB, t0), 1);
}

// Each source is `lanes[s]` servers of `rates[s]` bytes/s each (one lane:
// a pipe serving its reads one after the other; many: a rate per
// connection, as OBS gives); `readers` reads are kept in flight (a fake
// clock: no sleeping). Returns the bytes each source served and, in
// `*seconds`, how long the reads took.
std::vector<uint64_t> SimulateLanes(std::array<double, 2> rates, std::array<int, 2> lanes,
                                    int readers, int reads, double* seconds = nullptr) {
  SourceSplit split;
  struct Done {
    Clock::time_point at;
    SourceSplit::Ticket ticket;
    bool operator>(const Done& o) const { return at > o.at; }
  };
  std::priority_queue<Done, std::vector<Done>, std::greater<>> done;
  std::vector<Clock::time_point> free_at[2] = {
      std::vector<Clock::time_point>(static_cast<size_t>(lanes[0])),
      std::vector<Clock::time_point>(static_cast<size_t>(lanes[1]))};
  Clock::time_point now{};
  std::vector<uint64_t> bytes(2, 0);
  auto start = [&] {
    const int s = split.Choose(kMiB, now);
    auto lane = std::min_element(free_at[s].begin(), free_at[s].end());
    const auto begin = std::max(now, *lane);
    *lane = begin + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(kMiB / rates[s]));
    done.push(Done{*lane, split.Start(s, kMiB, now)});
    bytes[s] += kMiB;
  };
  for (int i = 0; i < readers; ++i) start();
  for (int i = readers; i < reads; ++i) {
    Done d = done.top();
    done.pop();
    now = d.at;
    split.Finish(d.ticket, true, now);
    start();
  }
  while (!done.empty()) {
    now = done.top().at;
    done.pop();
  }
  if (seconds != nullptr)
    *seconds = std::chrono::duration<double>(now - Clock::time_point{}).count();
  return bytes;
}

std::vector<uint64_t> Simulate(double rate0, double rate1, int readers, int reads) {
  return SimulateLanes({rate0, rate1}, {1, 1}, readers, reads);
}

TEST(SourceSplit, BytesFollowTheRates) {
  // OBS twice as fast as the share: about twice the bytes.
  auto b = Simulate(200.0 * kMiB, 100.0 * kMiB, 8, 3000);
  const double ratio = static_cast<double>(b[0]) / static_cast<double>(b[1]);
  EXPECT_GT(ratio, 1.6) << b[0] << " " << b[1];
  EXPECT_LT(ratio, 2.5) << b[0] << " " << b[1];
  // And the other way round.
  b = Simulate(100.0 * kMiB, 300.0 * kMiB, 8, 3000);
  const double inverse = static_cast<double>(b[1]) / static_cast<double>(b[0]);
  EXPECT_GT(inverse, 2.4) << b[0] << " " << b[1];
  EXPECT_LT(inverse, 3.6) << b[0] << " " << b[1];
}

TEST(SourceSplit, FailureHalvesTheRate) {
  SourceSplit split;
  const Clock::time_point t0{};
  split.Finish(split.Start(1, kMiB, t0), true, t0 + milliseconds(10));
  const double before = split.rate(1);
  EXPECT_GT(before, 0);
  split.Finish(split.Start(1, kMiB, t0), false, t0 + milliseconds(20));
  EXPECT_DOUBLE_EQ(split.rate(1), before / 2);
  EXPECT_EQ(split.bytes_in_flight(1), 0u);
  EXPECT_EQ(split.in_flight(1), 0);
}

TEST(SourceSplit, AnIdleSourceIsMeasuredAgain) {
  SourceSplitOptions o;
  o.probe_after = milliseconds(500);
  SourceSplit split(o);
  Clock::time_point t{};
  // The share measured slow once; OBS fast.
  split.Finish(split.Start(1, kMiB, t), true, t + milliseconds(100));
  split.Finish(split.Start(0, kMiB, t), true, t + milliseconds(1));
  t += milliseconds(100);
  EXPECT_EQ(split.Choose(kMiB, t), 0);
  // OBS keeps reading; the share has been idle for 500 ms.
  split.Finish(split.Start(0, kMiB, t + milliseconds(550)), true, t + milliseconds(560));
  EXPECT_EQ(split.Choose(kMiB, t + milliseconds(600)), 1);
}

TEST(SourceSplit, LateAfterIsTheP99OfTheWindowScaledToTheSize) {
  SourceSplitOptions o;
  o.latency_window = 100;
  o.min_latency_samples = 10;
  SourceSplit split(o);
  const Clock::time_point t0{};
  for (int i = 0; i < 9; ++i) split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));
  EXPECT_FALSE(split.LateAfter(0, kMiB));
  for (int i = 0; i < 90; ++i) split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(500));  // one outlier in 100
  auto late = split.LateAfter(0, 2 * kMiB);
  ASSERT_TRUE(late);
  // p99 of 100 samples is the largest but one: 10 ms per MiB, for 2 MiB.
  EXPECT_NEAR(std::chrono::duration<double>(*late).count(), 0.020, 1e-6);
  EXPECT_FALSE(split.LateAfter(1, kMiB));  // the other source has no samples
}

TEST(SourceSplit, ExpectedTimeCountsTheBytesInFlight) {
  SourceSplit split;
  const Clock::time_point t0{};
  EXPECT_FALSE(split.ExpectedTime(0, kMiB));
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));  // 100 MiB/s alone
  split.Start(0, kMiB, t0);
  // Two at once was never measured: each is taken to get the rate one got.
  auto t = split.ExpectedTime(0, kMiB);
  ASSERT_TRUE(t);
  EXPECT_NEAR(std::chrono::duration<double>(*t).count(), 0.010, 1e-3);
  // Measured: two at once took twice as long (one pipe), so a second read
  // waits for the bytes in flight.
  const SourceSplit::Ticket a = split.Start(0, kMiB, t0);  // two in flight
  split.Finish(a, true, t0 + milliseconds(20));            // 1 MiB in 20 ms, shared by 2
  t = split.ExpectedTime(0, kMiB);
  ASSERT_TRUE(t);
  EXPECT_NEAR(std::chrono::duration<double>(*t).count(), 0.020, 1e-3);
}

TEST(SourceSplit, RateBetweenMeasuredCountsIsInterpolatedAndCappedAtTheLimit) {
  SourceSplitOptions o;
  o.max_in_flight = {0, 4};
  SourceSplit split(o);
  const Clock::time_point t0{};
  EXPECT_EQ(split.RateAt(0, 1), 0);  // unmeasured
  // 1 in flight: 1 MiB in 10 ms (100 MiB/s); 3 at once: 1 MiB each in
  // 10 ms (300 MiB/s in all).
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));
  std::vector<SourceSplit::Ticket> three;
  for (int i = 0; i < 3; ++i) three.push_back(split.Start(0, kMiB, t0));
  split.Finish(three[2], true, t0 + milliseconds(10));  // 3 in flight at its start and end
  EXPECT_NEAR(split.RateAt(0, 1), 100.0 * kMiB, 1);
  EXPECT_NEAR(split.RateAt(0, 2), 200.0 * kMiB, 1);  // between 1 and 3
  EXPECT_NEAR(split.RateAt(0, 3), 300.0 * kMiB, 1);
  EXPECT_NEAR(split.RateAt(0, 6), 600.0 * kMiB, 1);  // above: 100 MiB/s per read
  EXPECT_DOUBLE_EQ(split.rate(0), 300.0 * kMiB);
  // Past its limit a source's reads only queue: its rate stays the limit's.
  split.Finish(split.Start(1, kMiB, t0), true, t0 + milliseconds(10));
  EXPECT_NEAR(split.RateAt(1, 4), 400.0 * kMiB, 1);
  EXPECT_NEAR(split.RateAt(1, 9), 400.0 * kMiB, 1);
}

// A burst measured once (ten reads at once, slow: cold connections) stands
// for ten in flight only until sample_ttl: after that the source's other
// samples say what a second read brings, and a new sample at ten replaces
// the stale one instead of being averaged with it.
TEST(SourceSplit, ASampleNotMeasuredAgainStopsCountingAfterItsTtl) {
  SourceSplitOptions o;
  o.sample_ttl = milliseconds(2000);
  SourceSplit split(o);
  const Clock::time_point t0{};
  std::vector<SourceSplit::Ticket> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(split.Start(0, kMiB, t0));
  split.Finish(ten[9], true, t0 + milliseconds(1000));  // 10 MiB/s with 10 in flight
  for (int i = 0; i < 9; ++i) split.Abandon(ten[i]);
  // One read alone: 1 MiB in 20 ms, 50 MiB/s.
  const auto t1 = t0 + milliseconds(1000);
  split.Finish(split.Start(0, kMiB, t1), true, t1 + milliseconds(20));
  // Between 1 (50) and 10 (10): a second read looks like it slows the source.
  EXPECT_LT(split.RateAt(0, 2), 50.0 * kMiB);
  // 2.5 s after the burst, another read alone: the burst's sample is stale.
  const auto t2 = t0 + milliseconds(3500);
  split.Finish(split.Start(0, kMiB, t2), true, t2 + milliseconds(20));
  EXPECT_NEAR(split.RateAt(0, 2), 100.0 * kMiB, 1);  // each read at the per-read rate
  EXPECT_NEAR(split.RateAt(0, 10), 500.0 * kMiB, 1);
  // Ten at once again, now fast: the new sample, not its mean with the old.
  const auto t3 = t2 + milliseconds(100);
  ten.clear();
  for (int i = 0; i < 10; ++i) ten.push_back(split.Start(0, kMiB, t3));
  split.Finish(ten[9], true, t3 + milliseconds(25));  // 400 MiB/s with 10 in flight
  for (int i = 0; i < 9; ++i) split.Abandon(ten[i]);
  EXPECT_NEAR(split.RateAt(0, 10), 400.0 * kMiB, 1);
}

TEST(SourceSplit, ASourceWithALanePerReadGetsItsLanes) {
  // OBS: 16 connections of 50 MiB/s each; the share: one pipe of 400 MiB/s.
  // 24 reads in flight. A 1 MiB read takes 20 ms on OBS, and the share is
  // faster only while it has fewer than 8 reads queued, so OBS should carry
  // about two thirds of the bytes (16 of 24 reads): together about 1200
  // MiB/s. Taken as one pipe measured with few reads in flight, OBS looked
  // like 50-100 MiB/s and got a small part.
  double seconds = 0;
  const auto b = SimulateLanes({50.0 * kMiB, 400.0 * kMiB}, {16, 1}, 24, 6000, &seconds);
  const double obs_part = static_cast<double>(b[0]) / static_cast<double>(b[0] + b[1]);
  EXPECT_GT(obs_part, 0.5) << b[0] << " " << b[1];
  const double mib_per_s = static_cast<double>(b[0] + b[1]) / kMiB / seconds;
  EXPECT_GT(mib_per_s, 0.8 * 1200) << b[0] << " " << b[1];
}

// Options with one share slot and a wait bounded for a hung test only.
SourceSplitOptions OneShareSlot() {
  SourceSplitOptions o;
  o.max_in_flight = {0, 1};
  o.max_wait = std::chrono::seconds(20);
  return o;
}

// Measures 1 MiB reads taking `share` on the share and `obs` on OBS.
void MeasureBoth(SourceSplit& split, milliseconds share, milliseconds obs) {
  const auto t0 = Clock::now();
  split.Finish(split.Start(1, kMiB, t0), true, t0 + share);
  split.Finish(split.Start(0, kMiB, t0), true, t0 + obs);
}

TEST(SourceSplit, WaitersForASlotCountAsLoad) {
  SourceSplit split(OneShareSlot());
  MeasureBoth(split, milliseconds(10), milliseconds(25));  // the share: one slot
  const SourceSplit::Ticket busy = split.Start(1, kMiB, Clock::now());
  // A first reader waits for the share (2 MiB there: 20 ms, before OBS's 25).
  std::thread first([&] { EXPECT_EQ(split.PickOrWait(kMiB, nullptr).source, 1); });
  while (split.waiting(1) == 0) std::this_thread::sleep_for(milliseconds(1));
  // A second one counts it: 3 MiB on the share take 30 ms, OBS wins.
  EXPECT_EQ(split.PickOrWait(kMiB, nullptr).source, 0);
  split.Finish(busy, true, Clock::now());
  first.join();
  EXPECT_EQ(split.waiting(1), 0);
}

TEST(SourceSplit, PickOrWaitWaitsForTheBetterSourceAtItsLimit) {
  SourceSplit split(OneShareSlot());
  // The share (1) is ten times as fast as OBS, and at its limit.
  MeasureBoth(split, milliseconds(1), milliseconds(10));
  const SourceSplit::Ticket busy = split.Start(1, kMiB, Clock::now());
  EXPECT_EQ(split.Pick(kMiB, Clock::now()).source, 0);  // Pick takes the one with room
  std::thread ender([&] {
    std::this_thread::sleep_for(milliseconds(50));
    split.Finish(busy, true, Clock::now());
  });
  EXPECT_EQ(split.PickOrWait(kMiB, nullptr).source, 1);  // waited for the share
  ender.join();
}

TEST(SourceSplit, PickOrWaitGivesUpAfterMaxWait) {
  SourceSplitOptions o;
  o.max_in_flight = {0, 1};
  o.max_wait = milliseconds(20);
  SourceSplit split(o);
  const auto t0 = Clock::now();
  split.Finish(split.Start(1, kMiB, t0), true, t0 + milliseconds(1));
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));
  split.Start(1, kMiB, Clock::now());  // never ends
  EXPECT_EQ(split.PickOrWait(kMiB, nullptr).source, 0);
}

}  // namespace
}  // namespace dsfs
