#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace dsfs {
namespace {

TEST(Metrics, CounterRendersHelpTypeAndValue) {
  Metrics m;
  m.GetCounter("dsfs_x_total", "things done").Add(3);
  EXPECT_EQ(m.Render(), "# HELP dsfs_x_total things done\n# TYPE dsfs_x_total counter\n"
                        "dsfs_x_total 3\n");
}

TEST(Metrics, LabelledSeriesShareOneHelpAndTypeSortedByLabels) {
  Metrics m;
  m.GetCounter("dsfs_req_total", "requests", {{"op", "HEAD"}}).Add(2);
  m.GetCounter("dsfs_req_total", "", {{"op", "GET"}}).Add(5);
  m.GetCounter("dsfs_req_total", "other help is ignored", {{"op", "GET"}}).Add(1);
  EXPECT_EQ(m.Render(),
            "# HELP dsfs_req_total requests\n# TYPE dsfs_req_total counter\n"
            "dsfs_req_total{op=\"GET\"} 6\ndsfs_req_total{op=\"HEAD\"} 2\n");
  EXPECT_EQ(m.CounterTotal("dsfs_req_total"), 8u);
  EXPECT_EQ(m.CounterTotal("dsfs_absent_total"), 0u);
}

TEST(Metrics, LabelOrderDoesNotMakeANewSeries) {
  Metrics m;
  Counter& a = m.GetCounter("dsfs_c_total", "", {{"b", "1"}, {"a", "2"}});
  Counter& b = m.GetCounter("dsfs_c_total", "", {{"a", "2"}, {"b", "1"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(m.Render().find("dsfs_c_total{a=\"2\",b=\"1\"} 0\n"), std::string::npos);
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Metrics m;
  m.GetCounter("dsfs_e_total", "a \\ b\nc", {{"k", "q\"u\\o\nte"}}).Add();
  const std::string text = m.Render();
  EXPECT_NE(text.find("# HELP dsfs_e_total a \\\\ b\\nc\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dsfs_e_total{k=\"q\\\"u\\\\o\\nte\"} 1\n"), std::string::npos) << text;
}

TEST(Metrics, GaugeGoesUpAndDown) {
  Metrics m;
  Gauge& g = m.GetGauge("dsfs_g_bytes", "bytes in use");
  g.Add(10);
  g.Sub(4);
  EXPECT_EQ(g.value(), 6);
  g.Set(-2);
  EXPECT_EQ(m.Render(), "# HELP dsfs_g_bytes bytes in use\n# TYPE dsfs_g_bytes gauge\n"
                        "dsfs_g_bytes -2\n");
}

TEST(Metrics, HistogramRendersCumulativeBucketsSumAndCount) {
  Metrics m;
  const double bounds[] = {0.25, 1};
  Histogram& h = m.GetHistogram("dsfs_lat_seconds", "latency", {{"op", "GET"}}, bounds);
  h.Observe(0.125);
  h.Observe(0.25);  // le is inclusive
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(m.Render(),
            "# HELP dsfs_lat_seconds latency\n# TYPE dsfs_lat_seconds histogram\n"
            "dsfs_lat_seconds_bucket{op=\"GET\",le=\"0.25\"} 2\n"
            "dsfs_lat_seconds_bucket{op=\"GET\",le=\"1\"} 3\n"
            "dsfs_lat_seconds_bucket{op=\"GET\",le=\"+Inf\"} 4\n"
            "dsfs_lat_seconds_sum{op=\"GET\"} 7.875\n"
            "dsfs_lat_seconds_count{op=\"GET\"} 4\n");
}

TEST(Metrics, HistogramDefaultsToTheLatencyBucketsAndIgnoresNaN) {
  Metrics m;
  Histogram& h = m.GetHistogram("dsfs_h_seconds");
  h.Observe(std::nan(""));
  h.Observe(0.003);
  const Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.bounds.size(), kLatencyBucketsSeconds.size());
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.buckets[2], 1u);  // 0.0025 < 0.003 <= 0.005
}

TEST(Metrics, ATypeMismatchIsNotRenderedTwice) {
  Metrics m;
  m.GetCounter("dsfs_same", "a counter").Add(1);
  Gauge& g = m.GetGauge("dsfs_same", "now a gauge");
  g.Set(99);  // usable, but not reported
  Counter& bad = m.GetCounter("0bad name");
  bad.Add();
  m.GetCounter("dsfs_l_total", "", {{"le", "1"}}).Add();  // le is the histogram's
  EXPECT_EQ(m.Render(), "# HELP dsfs_same a counter\n# TYPE dsfs_same counter\ndsfs_same 1\n");
}

TEST(Metrics, FamiliesSortedByName) {
  Metrics m;
  m.GetGauge("dsfs_b", "b");
  m.GetCounter("dsfs_a_total", "a");
  const std::string text = m.Render();
  EXPECT_LT(text.find("dsfs_a_total"), text.find("dsfs_b"));
}

TEST(Metrics, ConcurrentUpdatesAndRegistrationsAreAllCounted) {
  Metrics m;
  constexpr int kThreads = 4, kIters = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      const std::string op = t % 2 ? "GET" : "HEAD";
      for (int i = 0; i < kIters; ++i) {
        m.GetCounter("dsfs_n_total", "n", {{"op", op}}).Add();
        m.GetHistogram("dsfs_t_seconds", "t", {{"op", op}}).Observe(0.01);
        m.GetGauge("dsfs_g", "g").Add(1);
        if (i % 1000 == 0) m.Render();  // readers race with writers
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.CounterTotal("dsfs_n_total"), uint64_t{kThreads} * kIters);
  EXPECT_EQ(m.GetHistogram("dsfs_t_seconds", "", {{"op", "GET"}}).Read().count,
            uint64_t{kThreads / 2} * kIters);
  EXPECT_EQ(m.GetGauge("dsfs_g").value(), int64_t{kThreads} * kIters);
}

}  // namespace
}  // namespace dsfs
