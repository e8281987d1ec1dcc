#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "common/metrics.h"
#include "tests/unit/temp_dir.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/exposition.h"
#include "tools/ctl/stats.h"

namespace dsfs::ctl {
namespace {

// What a mount serves: rendered by the registry itself, so the parser is
// tested on the real format (histograms, labels, escapes).
std::string SampleText() {
  Metrics m;
  m.GetCounter("dsfs_s3_bytes_read_total", "S3 GET body bytes").Add(4 << 20);
  m.GetCounter("dsfs_s3_requests_total", "requests", {{"op", "GET"}}).Add(3);
  m.GetCounter("dsfs_s3_requests_total", "requests", {{"op", "HEAD"}}).Add(1);
  m.GetCounter("dsfs_s3_errors_total", "errors", {{"kind", "q\"uote"}}).Add(2);
  m.GetGauge("dsfs_readahead_memory_bytes", "in use").Set(8 << 20);
  const double bounds[] = {0.01, 0.1, 1};
  Histogram& get = m.GetHistogram("dsfs_s3_request_seconds", "latency", {{"op", "GET"}}, bounds);
  get.Observe(0.005);
  get.Observe(0.05);
  get.Observe(0.05);
  m.GetHistogram("dsfs_s3_request_seconds", "latency", {{"op", "HEAD"}}, bounds).Observe(0.5);
  return m.Render();
}

TEST(Exposition, ParsesWhatTheRegistryRenders) {
  auto e = ParseExposition(SampleText());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->types.at("dsfs_s3_request_seconds"), "histogram");
  EXPECT_EQ(e->types.at("dsfs_readahead_memory_bytes"), "gauge");
  EXPECT_EQ(e->Sum("dsfs_s3_bytes_read_total"), 4 << 20);
  EXPECT_EQ(e->Sum("dsfs_s3_requests_total"), 4);
  EXPECT_EQ(e->Sum("dsfs_s3_requests_total", {{"op", "GET"}}), 3);
  EXPECT_EQ(e->Sum("dsfs_s3_errors_total", {{"kind", "q\"uote"}}), 2);  // unescaped
  EXPECT_EQ(e->Sum("dsfs_s3_request_seconds_count", {{"op", "GET"}}), 3);
  EXPECT_EQ(e->LabelValues("dsfs_s3_requests_total", "op"),
            (std::vector<std::string>{"GET", "HEAD"}));
  const Buckets b = e->HistogramBuckets("dsfs_s3_request_seconds", {{"op", "GET"}});
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], (std::pair<double, double>{0.01, 1}));
  EXPECT_EQ(b[1], (std::pair<double, double>{0.1, 3}));
  EXPECT_TRUE(std::isinf(b[3].first));
  EXPECT_EQ(b[3].second, 3);
  // Summed over ops without a match.
  EXPECT_EQ(e->HistogramBuckets("dsfs_s3_request_seconds").back().second, 4);
}

TEST(Exposition, AcceptsTimestampsCommentsAndSpecialValues) {
  auto e = ParseExposition(
      "# a comment\n\n# HELP x_total h\nx_total{a=\"1\" , b=\"2\",} 7 1700000000000\r\n"
      "y +Inf\nz -Inf\nw NaN\nv 1.5e3\n");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ(e->samples.size(), 5u);
  EXPECT_EQ(e->Sum("x_total", {{"b", "2"}}), 7);
  EXPECT_TRUE(std::isinf(e->Sum("y")));
  EXPECT_TRUE(std::isnan(e->Sum("w")));
  EXPECT_EQ(e->Sum("v"), 1500);
}

TEST(Exposition, RejectsMalformedLinesNamingTheLine) {
  for (const char* bad : {"x_total\n", "x_total abc\n", "x{a=\"1\" 2\n", "x{a=1} 2\n",
                          "x{a=\"\\q\"} 2\n", "x 1 2 3\n", "1x 2\n", "x{=\"1\"} 2\n",
                          "# TYPE ok gauge\n"}) {  // the last: ok's second TYPE line
    auto e = ParseExposition(std::string("# TYPE ok counter\nok 1\n") + bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find("line 3"), std::string::npos) << e.status().ToString();
  }
}

TEST(Exposition, KeysFoldLabelsAsWrittenAndJsonEscapes) {
  auto e = ParseExposition("a_total 1\nb{op=\"GET\",k=\"x\\\"y\"} 2.5\nc NaN\n");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->samples[1].Key(), "b{op=\"GET\",k=\"x\\\"y\"}");
  EXPECT_EQ(ToJson(*e), "{\"a_total\":1,\"b{op=\\\"GET\\\",k=\\\"x\\\\\\\"y\\\"}\":2.5,\"c\":null}");
}

TEST(Quantile, InterpolatesInsideTheBucketLikePrometheus) {
  const double inf = INFINITY;
  const Buckets b{{0.01, 1}, {0.1, 3}, {1, 4}, {inf, 4}};
  EXPECT_DOUBLE_EQ(Quantile(b, 0.5), 0.01 + (0.1 - 0.01) * (2 - 1) / 2);  // rank 2
  EXPECT_DOUBLE_EQ(Quantile(b, 0.25), 0.01);                              // rank 1, first bucket
  EXPECT_DOUBLE_EQ(Quantile(b, 1.0), 1);
  EXPECT_DOUBLE_EQ(Quantile({{0.1, 0}, {inf, 2}}, 0.5), 0.1);  // in +Inf: highest bound
  EXPECT_TRUE(std::isnan(Quantile({{0.1, 0}, {inf, 0}}, 0.5)));
  EXPECT_TRUE(std::isnan(Quantile({}, 0.5)));
}

TEST(Quantile, DeltaCoversTheInterval) {
  const double inf = INFINITY;
  const Buckets before{{0.1, 5}, {inf, 5}};
  const Buckets after{{0.1, 5}, {inf, 7}};
  EXPECT_EQ(BucketDelta(before, after), (Buckets{{0.1, 0}, {inf, 2}}));
  // A restart (counts went down): the later snapshot as is.
  EXPECT_EQ(BucketDelta(after, before), before);
}

TEST(StatsTable, GroupsTiersRequestsAndRates) {
  auto now = ParseExposition(SampleText());
  ASSERT_TRUE(now.ok());
  const std::string table = RenderTable(*now, nullptr, 0);
  EXPECT_NE(table.find("reads by tier"), std::string::npos) << table;
  EXPECT_NE(table.find("OBS"), std::string::npos) << table;
  EXPECT_NE(table.find("4.0 MiB"), std::string::npos) << table;
  EXPECT_NE(table.find("8.0 MiB"), std::string::npos) << table;  // read-ahead memory gauge
  EXPECT_NE(table.find("p99"), std::string::npos) << table;
  EXPECT_NE(table.find("32.5 ms"), std::string::npos) << table;  // GET p50: rank 1.5 in (0.01, 0.1]
  EXPECT_EQ(table.find("rate/s"), std::string::npos) << table;
  EXPECT_EQ(table.find("share"), std::string::npos) << table;  // not reported: left out

  auto before = ParseExposition("dsfs_s3_bytes_read_total 0\n");
  ASSERT_TRUE(before.ok());
  const std::string rated = RenderTable(*now, &*before, 2.0);
  EXPECT_NE(rated.find("rate/s"), std::string::npos) << rated;
  EXPECT_NE(rated.find("2.0 MiB/s"), std::string::npos) << rated;
}

TEST(StatsErrors, EachErrnoHasItsExitCodeAndMessage) {
  StatsError e = DescribeStatsError("/mnt/x", ENOTCONN);
  EXPECT_EQ(e.code, kDeadMount);
  EXPECT_NE(e.message.find("daemon"), std::string::npos);
  EXPECT_NE(e.message.find("fusermount3 -u /mnt/x"), std::string::npos);
  for (int err : {ENODATA, EOPNOTSUPP}) {
    e = DescribeStatsError("/tmp", err);
    EXPECT_EQ(e.code, kNotDsfs);
    EXPECT_NE(e.message.find("not a dsfs mount"), std::string::npos);
  }
  EXPECT_EQ(DescribeStatsError("/nope", ENOENT).code, kFailed);
  EXPECT_EQ(DescribeStatsError("/x", EACCES).code, kFailed);
}

TEST(StatsErrors, ReadingAPlainDirectoryOrNoPathFails) {
  dsfs::testing::TempDir dir;
  StatsText t = ReadStatsText(dir.path());
  EXPECT_EQ(t.code, kNotDsfs) << t.message;
  t = ReadStatsText(dir.path() + "/missing");
  EXPECT_EQ(t.code, kFailed);
  EXPECT_NE(t.message.find("no such file"), std::string::npos) << t.message;
}

}  // namespace
}  // namespace dsfs::ctl
