// dsfsctl stats: the pieces of stats.cc that unit tests call
// (tests/unit/tools/ctl_stats_test.cc).
#pragma once

#include <string>

#include "tools/ctl/exposition.h"

namespace dsfs::ctl {

// What a failed getxattr(user.dsfs.stats) of `path` means: the exit code
// (commands.h) and the message for the operator. The only errno mapping of
// dsfsctl stats.
struct StatsError {
  int code;
  std::string message;
};
StatsError DescribeStatsError(const std::string& path, int err);

// The mount's metrics text (Prometheus exposition), or the error.
struct StatsText {
  std::string text;
  int code = 0;  // kOk, or the StatsError's
  std::string message;
};
StatsText ReadStatsText(const std::string& path);

// The human table: reads by tier, cache, requests (count, p50, p99), fallback,
// writes. With `before` (an earlier snapshot `seconds` ago) counters get a
// rate column and the quantiles cover just that interval.
std::string RenderTable(const Exposition& now, const Exposition* before, double seconds);

// A byte count for people: "512 B", "4.0 MiB", "1.5 GiB" (powers of 1024).
std::string FormatBytes(double bytes);

}  // namespace dsfs::ctl
