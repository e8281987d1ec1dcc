// dsfsctl's reader of the Prometheus text exposition format (version
// 0.0.4), as the mount serves it through user.dsfs.stats and metrics_port=:
// the one place dsfsctl parses it. Also what dsfsctl computes from it:
// sums over label values, histogram quantiles, and the --json form.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace dsfs::ctl {

struct Sample {
  std::string name;  // as written: a histogram's x_bucket, x_sum, x_count
  Labels labels;     // in written order
  double value = 0;
  // name{a="x",b="y"} exactly as the exposition writes it (values
  // escaped); just the name without labels. The --json keys.
  std::string Key() const;
};

// (upper bound, cumulative count) of a histogram, ascending; the last
// bound is +Inf.
using Buckets = std::vector<std::pair<double, double>>;

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram, ...
  std::vector<Sample> samples;               // in written order

  // The sum of the samples named `name` whose labels include every pair of
  // `match` (empty: all of them); 0 when there is none.
  double Sum(const std::string& name, const Labels& match = {}) const;
  bool Has(const std::string& name) const;
  // The distinct values of `label` among the samples named `name`, sorted.
  std::vector<std::string> LabelValues(const std::string& name, const std::string& label) const;
  // Histogram `family`'s buckets, summed over the series matching `match`.
  dsfs::ctl::Buckets HistogramBuckets(const std::string& family, const Labels& match = {}) const;
};

// InvalidArgument naming the line for text that is not the format.
Result<Exposition> ParseExposition(std::string_view text);

// Prometheus' histogram_quantile(q): linear interpolation inside the
// bucket that holds rank q * count; the highest finite bound when the rank
// falls in +Inf; NaN without observations.
double Quantile(const Buckets& buckets, double q);
// later - earlier bucket by bucket (the observations made in between);
// `later` when the bounds differ (the mount was restarted).
Buckets BucketDelta(const Buckets& earlier, const Buckets& later);

// {"<Sample::Key()>": value, ...} on one line, in written order. Labelled
// series are folded into the key as the exposition writes them
// (dsfs_s3_requests_total{op="GET"}); NaN and infinities are null.
std::string ToJson(const Exposition& e);

}  // namespace dsfs::ctl
