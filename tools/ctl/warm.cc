// dsfsctl warm PATH... [--jobs N]: loads files (directories are walked)
// into the disk cache of the running mount. The daemon fetches and caches
// the blocks itself (getxattr user.dsfs.warm.FIRST.COUNT, fs/filesystem.h):
// no data passes through dsfsctl. --jobs requests are in flight, each of
// kWarmBlocksPerRequest blocks; blocks already cached are skipped, so an
// interrupted warm resumes where it stopped. Progress goes to stderr: one
// redrawn line on a terminal, plain lines otherwise.
#include "tools/ctl/warm.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/config.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/exposition.h"
#include "tools/ctl/stats.h"

namespace dsfs::ctl {

std::optional<WarmReply> ParseWarmReply(const std::string& text) {
  std::istringstream in(text);
  std::string k1, k2, k3, k4;
  WarmReply r;
  if (!(in >> k1 >> r.fetched >> k2 >> r.skipped >> k3 >> r.blocks >> k4 >> r.block_size)) {
    return std::nullopt;
  }
  if (k1 != "fetched" || k2 != "skipped" || k3 != "blocks" || k4 != "block_size") {
    return std::nullopt;
  }
  return r;
}

std::string MountRootOf(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec).lexically_normal();
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return path;
  while (p.has_parent_path() && p.parent_path() != p) {
    struct stat up {};
    if (::stat(p.parent_path().c_str(), &up) != 0 || up.st_dev != st.st_dev) break;
    p = p.parent_path();
  }
  return p.string();
}

int CheckDsfsPath(const std::string& path, std::string* message) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    StatsError e = DescribeStatsError(path, errno);
    *message = e.message;
    return e.code;
  }
  StatsText t = ReadStatsText(MountRootOf(path));
  if (t.code == kOk) return kOk;
  *message = path + ": " + (t.code == kNotDsfs ? "not in a dsfs mount" : t.message);
  return t.code;
}

std::vector<ProofResult> ParseProveReport(const std::string& text) {
  std::vector<ProofResult> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    ProofResult r{line.substr(0, sp), line.substr(sp + 1)};
    if (r.result == "total" || r.result == "...") continue;
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

constexpr const char* kWarmXattr = "user.dsfs.warm.";  // fs/filesystem.h

struct File {
  std::string path;
  uint64_t size = 0;
  uint64_t blocks = 0;
  uint64_t block_size = 0;
};

struct Chunk {
  size_t file;
  uint64_t first;
  uint64_t count;
};

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "dsfsctl: %s\n", message.c_str());
  return code;
}

// getxattr of a warm request; the reply, or the errno.
std::optional<WarmReply> Request(const std::string& path, uint64_t first, uint64_t count,
                                 int* err) {
  const std::string name = fmt::format("{}{}.{}", kWarmXattr, first, count);
  char buf[256];
  ssize_t n = getxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
  if (n < 0) {
    *err = errno;
    return std::nullopt;
  }
  auto r = ParseWarmReply(std::string(buf, static_cast<size_t>(n)));
  if (!r) *err = EPROTO;
  return r;
}

std::string WarmError(const std::string& path, int err) {
  if (err == EOPNOTSUPP) return path + ": the mount has no disk cache to warm (cache_dir=)";
  if (err == EPROTO) return path + ": unexpected reply to " + kWarmXattr + "*";
  return DescribeStatsError(path, err).message;
}

int Warm(const std::vector<std::string>& paths, unsigned jobs) {
  namespace fs = std::filesystem;
  std::vector<File> files;
  for (const std::string& p : paths) {
    std::string message;
    if (int code = CheckDsfsPath(p, &message); code != kOk) return Fail(message, code);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back({it->path().string()});
      }
      if (ec) return Fail(p + ": " + ec.message(), kFailed);
    } else {
      files.push_back({p});
    }
  }
  uint64_t total = 0;
  for (File& f : files) {
    int err = 0;
    auto r = Request(f.path, 0, 0, &err);
    if (!r) return Fail(WarmError(f.path, err), err == EOPNOTSUPP ? kFailed : DescribeStatsError(f.path, err).code);
    struct stat st {};
    if (::stat(f.path.c_str(), &st) == 0) f.size = static_cast<uint64_t>(st.st_size);
    f.blocks = r->blocks;
    f.block_size = r->block_size;
    total += f.size;
  }
  // The cap, from the mount's metrics (dsfs_cache_capacity_bytes).
  if (!paths.empty()) {
    StatsText t = ReadStatsText(MountRootOf(paths.front()));
    auto e = ParseExposition(t.text);
    if (t.code == kOk && e.ok() && e->Has("dsfs_cache_capacity_bytes")) {
      const double cap = e->Sum("dsfs_cache_capacity_bytes");
      if (static_cast<double>(total) > cap) {
        std::fprintf(stderr,
                     "dsfsctl: warning: %s to warm exceed the cache cap of %s: the cache will "
                     "evict blocks warmed first\n",
                     FormatBytes(static_cast<double>(total)).c_str(), FormatBytes(cap).c_str());
      }
    }
  }
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < files.size(); ++i) {
    for (uint64_t b = 0; b < files[i].blocks; b += kWarmBlocksPerRequest) {
      chunks.push_back({i, b, std::min(kWarmBlocksPerRequest, files[i].blocks - b)});
    }
  }
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0}, fetched{0}, skipped{0};
  std::mutex mu;
  std::string error;
  int error_code = kOk;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
      const Chunk& c = chunks[i];
      const File& f = files[c.file];
      int err = 0;
      auto r = Request(f.path, c.first, c.count, &err);
      if (!r) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.empty()) {
          error = WarmError(f.path, err);
          error_code = err == EOPNOTSUPP ? kFailed : DescribeStatsError(f.path, err).code;
        }
        next = chunks.size();
        return;
      }
      fetched += r->fetched;
      skipped += r->skipped;
      const uint64_t lo = c.first * f.block_size;
      const uint64_t hi = std::min(f.size, (c.first + c.count) * f.block_size);
      done_bytes += hi > lo ? hi - lo : 0;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned j = 0; j < std::max(1u, jobs); ++j) threads.emplace_back(worker);
  const bool tty = isatty(STDERR_FILENO);
  auto report = [&](bool last) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double d = static_cast<double>(done_bytes.load());
    const double rate = secs > 0 ? d / secs : 0;
    const std::string eta =
        rate > 0 ? fmt::format("{:.0f}s", (static_cast<double>(total) - d) / rate) : "-";
    std::fprintf(stderr, "%swarm %s / %s  %s/s  ETA %s  blocks fetched %llu skipped %llu%s",
                 tty ? "\r\033[K" : "", FormatBytes(d).c_str(), FormatBytes(static_cast<double>(total)).c_str(),
                 FormatBytes(rate).c_str(), eta.c_str(), static_cast<unsigned long long>(fetched.load()),
                 static_cast<unsigned long long>(skipped.load()), tty && !last ? "" : "\n");
  };
  std::thread progress([&] {
    int ticks = 0;
    while (next.load() < chunks.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      // A terminal is redrawn 4 times a second, a log gets a line a second.
      if (tty || ++ticks % 4 == 0) report(false);
    }
  });
  for (auto& t : threads) t.join();
  progress.join();
  report(true);
  if (!error.empty()) return Fail(error, error_code);
  std::printf("warmed %zu files, %s: %llu blocks fetched, %llu skipped (already cached)\n",
              files.size(), FormatBytes(static_cast<double>(total)).c_str(),
              static_cast<unsigned long long>(fetched.load()),
              static_cast<unsigned long long>(skipped.load()));
  return kOk;
}

}  // namespace

void AddWarmCommand(CLI::App& app, int* rc) {
  auto* cmd = app.add_subcommand(
      "warm", "load files or directories into the disk cache of their running mount");
  auto paths = std::make_shared<std::vector<std::string>>();
  auto jobs = std::make_shared<unsigned>(kWarmDefaultJobs);
  cmd->add_option("PATH", *paths, "files or directories in a dsfs mount")->required();
  cmd->add_option("--jobs,-j", *jobs, "requests in flight (each fetches a few blocks)")
      ->check(CLI::Range(1u, 256u));
  cmd->footer(
      "Blocks the cache holds are skipped (a warm resumes where an interrupted one stopped).\n"
      "Warns before the first byte when the files exceed the cache cap. Exit codes: 0 done,\n"
      "1 failed (no disk cache, I/O error), 3 not in a dsfs mount, 4 dead mount.");
  cmd->callback([rc, paths, jobs] { *rc = Warm(*paths, *jobs); });
}

}  // namespace dsfs::ctl
