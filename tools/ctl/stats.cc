// dsfsctl stats MOUNTPOINT [--json|--prometheus] [--watch SECONDS]: the
// metrics of a running mount, read through the root xattr user.dsfs.stats
// (Prometheus text format), as a table, JSON or the raw text; --watch
// redraws every SECONDS with per-second rates until SIGINT or SIGTERM.
#include "tools/ctl/stats.h"

#include <signal.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>

#include "tools/ctl/commands.h"

namespace dsfs::ctl {
namespace {

constexpr const char* kStatsXattr = "user.dsfs.stats";  // fs/filesystem.h

enum class Format { kTable, kJson, kPrometheus };
enum class Unit { kCount, kBytes };

std::string Amount(double v, Unit unit) {
  return unit == Unit::kBytes ? FormatBytes(v) : fmt::format("{:.0f}", v);
}

std::string Seconds(double s) {
  if (std::isnan(s)) return "-";
  if (s < 1) return fmt::format("{:.1f} ms", s * 1000);
  return fmt::format("{:.2f} s", s);
}

// Builds the table one section and row at a time; rows of metrics the
// mount does not report (no disk cache, no share) are left out.
class Table {
 public:
  Table(const Exposition& now, const Exposition* before, double seconds)
      : now_(now), before_(before), seconds_(seconds > 0 ? seconds : 1) {}

  void Section(const std::string& title, bool latency = false) {
    if (!out_.empty()) out_ += "\n";
    std::string line = fmt::format("{:<30}{:>14}", title, "total");
    if (before_) line += fmt::format("{:>14}", "rate/s");
    if (latency) line += fmt::format("{:>11}{:>11}", "p50", "p99");
    out_ += line + "\n";
  }

  // A counter: total and, when watching, its rate.
  void Counter(const std::string& label, const std::string& name, Unit unit,
               const Labels& match = {}) {
    if (!now_.Has(name)) return;
    Line(label, name, unit, match);
    out_ += "\n";
  }

  // A counter with latency quantiles from `histogram` (same labels).
  void Timed(const std::string& label, const std::string& name, const std::string& histogram,
             const Labels& match) {
    if (!now_.Has(name)) return;
    Line(label, name, Unit::kCount, match);
    Buckets b = now_.HistogramBuckets(histogram, match);
    if (before_) b = BucketDelta(before_->HistogramBuckets(histogram, match), b);
    out_ += fmt::format("{:>11}{:>11}\n", Seconds(Quantile(b, 0.5)), Seconds(Quantile(b, 0.99)));
  }

  // A gauge: its value now (rates mean nothing for it).
  void Gauge(const std::string& label, const std::string& name, Unit unit) {
    if (!now_.Has(name)) return;
    Text(label, Amount(now_.Sum(name), unit));
  }

  void Text(const std::string& label, const std::string& value) {
    out_ += fmt::format("  {:<28}{:>14}\n", label, value);
  }

  std::string str() const { return out_; }

 private:
  void Line(const std::string& label, const std::string& name, Unit unit, const Labels& match) {
    const double v = now_.Sum(name, match);
    out_ += fmt::format("  {:<28}{:>14}", label, Amount(v, unit));
    if (before_) {
      const double d = v - before_->Sum(name, match);
      // A drop means the mount restarted in between: no rate.
      out_ += fmt::format("{:>14}", d < 0 ? "-" : Amount(d / seconds_, unit) + "/s");
    }
  }

  const Exposition& now_;
  const Exposition* before_;
  const double seconds_;
  std::string out_;
};

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "dsfsctl: %s\n", message.c_str());
  return code;
}

// One frame of output; `before` is the previous frame's snapshot.
int Print(const std::string& text, Format format, const std::string& mountpoint,
          const Exposition* before, double seconds, std::optional<Exposition>* parsed,
          bool watching) {
  if (format == Format::kPrometheus) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (watching) std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!watching) return kOk;
  }
  auto e = ParseExposition(text);
  if (!e.ok()) return Fail(mountpoint + ": " + e.status().ToString(), kFailed);
  if (format == Format::kJson) {
    std::printf("%s\n", ToJson(*e).c_str());
  } else if (format == Format::kTable) {
    if (watching) {
      // A terminal is redrawn in place; a pipe or file gets frames in a row.
      std::fputs(isatty(STDOUT_FILENO) ? "\033[H\033[2J" : "\n", stdout);
      const std::time_t t = std::time(nullptr);
      char when[32];
      std::strftime(when, sizeof(when), "%H:%M:%S", std::localtime(&t));
      std::printf("dsfs stats %s at %s%s\n\n", mountpoint.c_str(), when,
                  before ? fmt::format(" (rates over {:.1f} s)", seconds).c_str() : "");
    }
    std::fputs(RenderTable(*e, before, seconds).c_str(), stdout);
  }
  std::fflush(stdout);
  *parsed = std::move(*e);
  return kOk;
}

int Stats(const std::string& mountpoint, Format format, double watch) {
  if (watch <= 0) {
    StatsText t = ReadStatsText(mountpoint);
    if (t.code != kOk) return Fail(t.message, t.code);
    std::optional<Exposition> unused;
    return Print(t.text, format, mountpoint, nullptr, 0, &unused, false);
  }
  // SIGINT/SIGTERM are taken with sigtimedwait (the interval's sleep), so
  // no handler and no global flag: the loop sees them between frames.
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  std::optional<Exposition> before;
  auto before_at = std::chrono::steady_clock::now();
  int rc = kOk;
  for (;;) {
    StatsText t = ReadStatsText(mountpoint);
    const auto at = std::chrono::steady_clock::now();
    if (t.code != kOk) {
      rc = Fail(t.message, t.code);
      break;
    }
    const double seconds = std::chrono::duration<double>(at - before_at).count();
    std::optional<Exposition> now;
    rc = Print(t.text, format, mountpoint, before ? &*before : nullptr, seconds, &now, true);
    if (rc != kOk) break;
    before = std::move(now);
    before_at = at;
    timespec wait{static_cast<time_t>(watch),
                  static_cast<long>((watch - std::floor(watch)) * 1e9)};
    int sig;
    do {
      sig = sigtimedwait(&stop, nullptr, &wait);
    } while (sig < 0 && errno == EINTR);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return rc;
}

}  // namespace

StatsError DescribeStatsError(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return {kFailed, path + ": no such file or directory"};
    case ENOTCONN:
      return {kDeadMount, path + ": the dsfs daemon of this mount is gone (" +
                              std::strerror(err) + "); unmount it with: fusermount3 -u " + path};
    case ENODATA:
    case EOPNOTSUPP:
      return {kNotDsfs, path + ": not a dsfs mount (no " + kStatsXattr +
                            "; give the mountpoint itself)"};
    default:
      return {kFailed, path + ": " + std::strerror(err)};
  }
}

StatsText ReadStatsText(const std::string& path) {
  StatsText out;
  // Series may appear between the size query and the read: room to spare,
  // and again with more (ERANGE) if that was not enough.
  for (size_t extra = 4096; extra <= (size_t{1} << 24); extra *= 16) {
    ssize_t n = getxattr(path.c_str(), kStatsXattr, nullptr, 0);
    if (n >= 0) {
      out.text.assign(static_cast<size_t>(n) + extra, '\0');
      n = getxattr(path.c_str(), kStatsXattr, out.text.data(), out.text.size());
    }
    if (n >= 0) {
      out.text.resize(static_cast<size_t>(n));
      return out;
    }
    if (errno != ERANGE) {
      StatsError e = DescribeStatsError(path, errno);
      return StatsText{"", e.code, std::move(e.message)};
    }
  }
  return StatsText{"", kFailed, path + ": " + kStatsXattr + " keeps growing"};
}

namespace {

// The counter rows of the table, section by section (labels as shown).
struct CounterRow {
  const char* label;
  const char* name;
  Unit unit;
};
constexpr CounterRow kTierRows[] = {
    {"read-ahead memory", "dsfs_readahead_bytes_served_total", Unit::kBytes},
    {"disk cache", "dsfs_cache_disk_bytes_read_total", Unit::kBytes},
    {"OBS", "dsfs_s3_bytes_read_total", Unit::kBytes},
    {"share", "dsfs_share_bytes_read_total", Unit::kBytes},
};
constexpr CounterRow kCacheRows[] = {
    {"block hits", "dsfs_cache_hits_total", Unit::kCount},
    {"  of those, from memory", "dsfs_cache_recent_hits_total", Unit::kCount},
    {"block misses", "dsfs_cache_misses_total", Unit::kCount},
    {"disk hits", "dsfs_cache_disk_hits_total", Unit::kCount},
    {"disk misses", "dsfs_cache_disk_misses_total", Unit::kCount},
    {"blocks evicted", "dsfs_cache_evictions_total", Unit::kCount},
    {"writes dropped", "dsfs_cache_write_dropped_total", Unit::kCount},
    {"corrupt blocks", "dsfs_cache_corrupt_blocks_total", Unit::kCount},
};
constexpr CounterRow kFallbackRows[] = {
    {"OBS down (opened)", "dsfs_fallback_open_total", Unit::kCount},
    {"OBS recovered", "dsfs_fallback_close_total", Unit::kCount},
    {"share requests", "dsfs_fallback_secondary_requests_total", Unit::kCount},
    {"share files proven", "dsfs_share_proven_total", Unit::kCount},
    {"share files differing", "dsfs_share_differs_total", Unit::kCount},
};
constexpr CounterRow kWriteRows[] = {
    {"uploads", "dsfs_write_uploads_total", Unit::kCount},
    {"upload errors", "dsfs_write_upload_errors_total", Unit::kCount},
    {"bytes uploaded", "dsfs_s3_bytes_written_total", Unit::kBytes},
};

void AddRows(Table& t, std::span<const CounterRow> rows) {
  for (const CounterRow& r : rows) t.Counter(r.label, r.name, r.unit);
}

// One row per value of `label` in counter family `name` ("retries: throttled").
void AddByLabel(Table& t, const Exposition& now, const std::string& prefix,
                const std::string& name, const std::string& label) {
  for (const std::string& v : now.LabelValues(name, label)) {
    t.Counter(prefix + v, name, Unit::kCount, {{label, v}});
  }
}

}  // namespace

std::string RenderTable(const Exposition& now, const Exposition* before, double seconds) {
  Table t(now, before, seconds);
  t.Section("reads by tier");
  AddRows(t, kTierRows);

  t.Section("cache");
  AddRows(t, kCacheRows);
  if (now.Has("dsfs_cache_disk_on")) {
    t.Text("disk tier", now.Sum("dsfs_cache_disk_on") > 0 ? "on" : "off");
  }
  t.Gauge("read-ahead memory in use", "dsfs_readahead_memory_bytes", Unit::kBytes);

  t.Section("requests", /*latency=*/true);
  for (const std::string& op : now.LabelValues("dsfs_s3_requests_total", "op")) {
    t.Timed(op, "dsfs_s3_requests_total", "dsfs_s3_request_seconds", {{"op", op}});
  }
  AddByLabel(t, now, "retries: ", "dsfs_s3_retries_total", "kind");
  AddByLabel(t, now, "errors: ", "dsfs_s3_errors_total", "kind");

  t.Section("fallback");
  if (now.Has("dsfs_fallback_state")) {
    static constexpr const char* kStates[] = {"OBS", "share", "offline"};
    const double s = now.Sum("dsfs_fallback_state");
    t.Text("serving from", s >= 0 && s < 3 ? kStates[static_cast<int>(s)] : "?");
  }
  AddRows(t, kFallbackRows);

  t.Section("writes");
  t.Gauge("dirty bytes", "dsfs_write_dirty_bytes", Unit::kBytes);
  AddRows(t, kWriteRows);
  return t.str();
}

void AddStatsCommand(CLI::App& app, int* rc) {
  auto* cmd = app.add_subcommand("stats", "the metrics of a running mount");
  cmd->footer(
      "Output: a table by default (reads by tier, cache, S3 requests with p50/p99 latency,\n"
      "fallback, writes). --prometheus prints the mount's Prometheus text as served.\n"
      "--json prints one object {\"series\": value}: one member per sample, the key being\n"
      "the sample as the Prometheus text writes it, labels folded in, e.g.\n"
      "  {\"dsfs_s3_bytes_read_total\":4194304,\"dsfs_s3_requests_total{op=\\\"GET\\\"}\":1,\n"
      "   \"dsfs_s3_request_seconds_bucket{op=\\\"GET\\\",le=\\\"0.1\\\"}\":1, ...}\n"
      "--watch SECONDS repeats every SECONDS until SIGINT/SIGTERM: the table gains per-second\n"
      "rates of the counters over the interval (and p50/p99 over it); --json prints one object\n"
      "per line, --prometheus one text per interval separated by a blank line.\n"
      "Exit codes: 0 ok, 1 failed (e.g. no such path), 2 usage, 3 not a dsfs mount,\n"
      "4 dead mount (the daemon is gone: fusermount3 -u MOUNTPOINT).");
  struct Args {
    std::string mountpoint;
    bool json = false;
    bool prometheus = false;
    double watch = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MOUNTPOINT", args->mountpoint, "a dsfs mountpoint")->required();
  auto* json = cmd->add_flag("--json", args->json, "one JSON object {series: value}");
  auto* prom =
      cmd->add_flag("--prometheus", args->prometheus, "the raw Prometheus text exposition");
  json->excludes(prom);
  cmd->add_option("--watch", args->watch, "redraw every SECONDS, with rates")
      ->check(CLI::PositiveNumber);
  cmd->callback([rc, args] {
    const Format f = args->json ? Format::kJson
                     : args->prometheus ? Format::kPrometheus
                                        : Format::kTable;
    *rc = Stats(args->mountpoint, f, args->watch);
  });
}

std::string FormatBytes(double b) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (std::fabs(b) >= 1024 && u + 1 < std::size(kUnits)) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, kUnits[u]);
}

}  // namespace dsfs::ctl
