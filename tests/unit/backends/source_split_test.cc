#include "backends/source_split.h"

#include <gtest/gtest.h>

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

// Both sources as pipes of a fixed rate serving their reads one after the
// other; `readers` reads are kept in flight (a fake clock: no sleeping).
// Returns the bytes each source served.
std::vector<uint64_t> Simulate(double rate0, double rate1, int readers, int reads) {
  SourceSplit split;
  struct Done {
    Clock::time_point at;
    SourceSplit::Ticket ticket;
    bool operator>(const Done& o) const { return at > o.at; }
  };
  std::priority_queue<Done, std::vector<Done>, std::greater<>> done;
  const double rates[2] = {rate0, rate1};
  Clock::time_point free_at[2] = {};
  Clock::time_point now{};
  std::vector<uint64_t> bytes(2, 0);
  auto start = [&] {
    const int s = split.Choose(kMiB, now);
    const auto begin = std::max(now, free_at[s]);
    free_at[s] = begin + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(kMiB / rates[s]));
    done.push(Done{free_at[s], split.Start(s, kMiB, now)});
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
  return bytes;
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
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));  // 100 MiB/s
  split.Start(0, kMiB, t0);
  auto t = split.ExpectedTime(0, kMiB);
  ASSERT_TRUE(t);
  EXPECT_NEAR(std::chrono::duration<double>(*t).count(), 0.020, 1e-3);
}

TEST(SourceSplit, PickOrWaitWaitsForTheBetterSourceAtItsLimit) {
  SourceSplitOptions o;
  o.max_in_flight = {0, 1};
  o.max_wait = std::chrono::seconds(20);  // a bound for a hung test only
  SourceSplit split(o);
  const auto t0 = Clock::now();
  // The share (1) is ten times as fast as OBS, and at its limit.
  split.Finish(split.Start(1, kMiB, t0), true, t0 + milliseconds(1));
  split.Finish(split.Start(0, kMiB, t0), true, t0 + milliseconds(10));
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
