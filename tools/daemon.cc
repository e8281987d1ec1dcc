#include "tools/daemon.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "backends/credentials.h"
#include "backends/dir_store.h"
#include "backends/fallback_store.h"
#include "backends/s3_store.h"
#include "cache/cache_options.h"
#include "cache/caching_reader.h"
#include "cache/disk_block_cache.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"
#include "tools/metrics_http.h"
#include "tools/signals.h"
#include "tools/stores.h"

namespace dsfs {
namespace {

// Reports start-up success or failure to the waiting parent (daemon mode)
// or to stderr (foreground).
class StartupReporter {
 public:
  explicit StartupReporter(int fd) : fd_(fd) {}
  ~StartupReporter() {
    if (fd_ >= 0) close(fd_);
  }
  void Fail(const Status& status) {
    std::string msg = "dsfs: error: " + status.message() + "\n";
    if (fd_ >= 0) {
      WriteAll(msg);
      close(fd_);
      fd_ = -1;
    } else {
      std::fputs(msg.c_str(), stderr);
    }
  }
  void Ready() {
    if (fd_ < 0) return;
    WriteAll("OK\n");
    close(fd_);
    fd_ = -1;
  }

 private:
  void WriteAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(fd_, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  int fd_;
};

// The parent side of daemonizing: waits for the child's verdict.
int WaitForChild(int fd, pid_t child) {
  std::string msg;
  char buf[512];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (msg == "OK\n") return 0;
  if (msg.empty()) {
    int status = 0;
    waitpid(child, &status, 0);
    msg = "dsfs: error: the daemon exited during start-up (see its log)\n";
  }
  std::fputs(msg.c_str(), stderr);
  return 1;
}

void DetachStdio() {
  int null = open("/dev/null", O_RDWR);
  if (null < 0) return;
  dup2(null, STDIN_FILENO);
  dup2(null, STDOUT_FILENO);
  dup2(null, STDERR_FILENO);
  if (null > STDERR_FILENO) close(null);
}

// The disk tier under cache_dir=, or none. A cache that cannot be used
// (foreign owner, read-only disk, unknown format, in use by another dsfs,
// an index that cannot be opened, bad cache_size) fails the mount with its
// message; a corrupt index is rebuilt by the cache itself, and a full disk
// mounts with the disk tier off (the cache logs why).
Result<std::unique_ptr<BlockCache>> OpenBlockCache(const Config& config, BufferPool* buffers,
                                                   Metrics* metrics) {
  const CacheConfig& c = config.cache;
  if (c.dir.empty()) return std::unique_ptr<BlockCache>();
  auto cap = ResolveCacheSize(c.size, c.dir);
  if (!cap.ok()) return cap.status().WithContext("cache_size");
  if (*cap < 2 * c.block_size) {
    return Status::InvalidArgument("cache_size " + c.size + " is smaller than two blocks");
  }
  DiskCacheOptions o = DiskCacheOptionsFrom(config, *cap);
  o.buffers = buffers;
  auto disk = DiskBlockCache::Open(o, metrics);
  if (!disk.ok()) {
    if (disk.status().message().find("cache_dir") != std::string::npos) return disk.status();
    return disk.status().WithContext("cache_dir '" + c.dir + "'");
  }
  if (metrics) {
    metrics->GetGauge("dsfs_cache_capacity_bytes", "The disk cache's cap (cache_size=)")
        .Set(static_cast<int64_t>(*cap));
  }
  if ((*disk)->state() != DiskCacheState::kOff) {
    spdlog::info("block cache {} capped at {} MiB", c.dir, *cap >> 20);
  }
  return std::unique_ptr<BlockCache>(std::move(*disk));
}

// The directory files being written are staged in: cache_dir/staging
// (made here, after the cache took cache_dir's lock; the cache's own
// clean-up never looks at it) or tmpdir=, which must exist. Staged files
// are nameless (O_TMPFILE), so nothing is left in it to clean.
Status PrepareStagingDir(const Config& config, const std::string& dir) {
  if (!config.cache.dir.empty() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    // A full or broken cache disk must not stop the mount serving reads:
    // writes then fail with the staging directory's error.
    spdlog::warn("cannot create the staging directory '{}': {}; writes will fail", dir,
                 std::strerror(errno));
    return Status::Ok();
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("staging directory '" + dir +
                                   "' is not a directory (tmpdir= must exist; -o ro needs none)");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return Status::AccessDenied("staging directory '" + dir + "' is not writable");
  }
  return Status::Ok();
}

// Runs in the (possibly daemonized) process that serves the mount.
int Serve(const Config& config, Credentials creds, StartupReporter& reporter) {
  // The log, the cache's block files and its index hold key names and
  // data: only the mounting user reads them.
  umask(0077);
  // Before any thread exists (see SignalThread).
  if (Status s = SignalThread::BlockSignals(); !s.ok()) {
    reporter.Fail(s);
    return 1;
  }
  const std::string logfile =
      config.daemon.logfile.empty() && !config.daemon.foreground ? "syslog" : config.daemon.logfile;
  if (Status s = SetupLogging(logfile, config.daemon.log_level); !s.ok()) {
    reporter.Fail(s);
    return 1;
  }
  if (!config.s3.verify_tls) {
    spdlog::warn("TLS certificate verification is OFF (ssl_verify=0): traffic can be intercepted");
  }
  Metrics metrics;
  // Freed block buffers are kept for reuse: one per GET thread.
  BufferPool buffers(config.cache.block_size, static_cast<size_t>(config.cache.max_inflight));
  auto cache = OpenBlockCache(config, &buffers, &metrics);
  if (!cache.ok()) {
    reporter.Fail(cache.status());
    return 1;
  }
  // After the cache: it holds cache_dir's lock, and the stack's metadata
  // lives in cache_dir.
  auto store = StoreStack::Build(config, std::move(creds), &metrics);
  if (!store.ok()) {
    reporter.Fail(store.status());
    return 1;
  }
  SteadyClock clock;
  ReadAheadOptions read_ahead = ReadAheadOptionsFrom(config);
  read_ahead.buffers = &buffers;
  CachingReader reader((*store)->top(), cache->get(), read_ahead, &metrics);
  const WriteOptions write = WriteOptionsFrom(config);
  if (!config.fs.read_only) {
    if (Status st = PrepareStagingDir(config, write.staging_dir); !st.ok()) {
      reporter.Fail(st);
      return 1;
    }
  }
  Filesystem fs(config.fs, (*store)->top(), reader, clock, &metrics, write);
  if (!config.fallback.dir.empty()) {
    FallbackStore* circuit = &(*store)->circuit();
    fs.set_prover([circuit](const std::string& prefix) { return circuit->ProvePrefix(prefix); });
  }
  // Before the mount: a port in use fails the mount, not a running one.
  std::unique_ptr<MetricsServer> metrics_server;
  if (config.daemon.metrics_port != 0) {
    auto server =
        MetricsServer::Start(config.daemon.metrics_addr, config.daemon.metrics_port, metrics);
    if (!server.ok()) {
      reporter.Fail(server.status());
      return 1;
    }
    metrics_server = std::move(*server);
    spdlog::info("metrics at http://{}:{}/metrics", config.daemon.metrics_addr,
                 config.daemon.metrics_port);
  }
  const FuseOptions fo = FuseOptionsFrom(config);
  auto session = FuseSession::Mount(fs, fo, &metrics);
  if (!session.ok()) {
    reporter.Fail(session.status());
    return 1;
  }
  spdlog::info("mounted {} on {} (prefix '{}')", (*store)->top().Describe(), fo.mountpoint,
               config.fs.prefix);
  auto signals = SignalThread::Start(
      [] {
        if (Status s = ReopenLog(); !s.ok()) {
          spdlog::error("SIGHUP: {}", s.ToString());
          return;
        }
        spdlog::info("SIGHUP: log reopened");
      },
      [&metrics] {
        std::istringstream text(metrics.Render());
        for (std::string line; std::getline(text, line);) {
          if (!line.empty() && line[0] != '#') spdlog::info("stats: {}", line);
        }
      });
  if (!signals.ok()) {
    reporter.Fail(signals.status());
    return 1;
  }
  reporter.Ready();
  if (!config.daemon.foreground) DetachStdio();
  // Shutdown order: the exit is seen (signal or unmount) -> every S3
  // transfer in flight is aborted and new ones fail at once -> libfuse
  // joins its workers (their requests now end quickly) -> unmount -> the
  // reader joins its fetch threads -> the disk cache closes cleanly. No
  // step waits on the network, so a black-holed origin cannot hold it.
  S3Store* s3 = &(*store)->s3();
  auto stop_network = [s3, &fo] {
    if (s3->stopped()) return;
    spdlog::info("shutting down {}: cancelling S3 requests in flight", fo.mountpoint);
    s3->Stop();
  };
  Status s = (*session)->Loop(stop_network);
  stop_network();
  spdlog::info("unmounting {}", fo.mountpoint);
  session->reset();
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

Status CheckLocalInput(const Config& config) {
  struct stat st;
  const std::string& mnt = config.daemon.mountpoint;
  if (stat(mnt.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::InvalidArgument("mountpoint '" + mnt + "' does not exist");
    return Status::InvalidArgument("mountpoint '" + mnt + "': " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("mountpoint '" + mnt + "' is not a directory");
  }
  return Status::Ok();
}

namespace {

// path made absolute and free of symlinks, also when its tail does not
// exist yet (a cache_dir the cache will create).
std::string ResolvePartly(const std::string& path) {
  std::string head = path.empty() ? "." : path;
  std::string tail;
  while (true) {
    char buf[PATH_MAX];
    if (realpath(head.c_str(), buf)) {
      std::string out = buf;
      if (!tail.empty()) out += (out == "/" ? "" : "/") + tail;
      return out;
    }
    if (head == "/" || head == ".") return path;
    const size_t slash = head.find_last_of('/');
    const std::string last = slash == std::string::npos ? head : head.substr(slash + 1);
    if (!last.empty()) tail = tail.empty() ? last : last + "/" + tail;
    head = slash == std::string::npos ? "." : slash == 0 ? "/" : head.substr(0, slash);
  }
}

}  // namespace

Status CheckMountTargets(const Config& config, const std::string& mountinfo) {
  const std::string& mnt = config.daemon.mountpoint;
  if (!FindMountDevice(mountinfo, mnt).empty()) {
    return Status::InvalidArgument("mountpoint '" + mnt +
                                   "' is already a mount point (unmount it first)");
  }
  if (!config.cache.dir.empty()) {
    const std::string cache = ResolvePartly(config.cache.dir);
    if (cache == mnt || cache.starts_with(mnt == "/" ? mnt : mnt + "/")) {
      return Status::InvalidArgument("cache_dir '" + config.cache.dir +
                                     "' is inside the mountpoint '" + mnt +
                                     "': the cache would be stored through dsfs itself");
    }
  }
  return Status::Ok();
}

Result<std::string> AbsoluteMountpoint(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) {
    return Status::InvalidArgument("mountpoint '" + path + "': " + std::strerror(errno));
  }
  return std::string(buf);
}

Status DescribeProbeFailure(const Status& status, const Config& config) {
  const std::string& ep = config.s3.endpoint;
  switch (status.code()) {
    case StatusCode::kAccessDenied:
      return Status::AccessDenied("access denied by " + ep + " for bucket '" + config.fs.bucket +
                                  "': " + status.message() + " (check passwd_file / keys)");
    case StatusCode::kNotFound:
      return status;  // "bucket 'x' does not exist"
    case StatusCode::kUnavailable:
      return Status::Unavailable("cannot connect to " + ep + ": " + status.message());
    case StatusCode::kTransient:
    case StatusCode::kThrottled:
      return Status::Unavailable(ep + " did not answer the bucket check: " + status.message());
    default:
      return Status(status.code(), ep + ": " + status.message());
  }
}

int RunDaemon(const CommandLine& cl) {
  Config config = cl.config;
  if (Status s = CheckLocalInput(config); !s.ok()) {
    std::fprintf(stderr, "dsfs: error: %s\n", s.message().c_str());
    return 1;
  }
  // The daemon leaves the working directory: a relative mountpoint must be
  // made absolute first.
  auto abs = AbsoluteMountpoint(config.daemon.mountpoint);
  if (!abs.ok()) {
    std::fprintf(stderr, "dsfs: error: %s\n", abs.status().message().c_str());
    return 1;
  }
  config.daemon.mountpoint = *abs;
  {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream text;
    text << in.rdbuf();
    if (Status s = CheckMountTargets(config, text.str()); !s.ok()) {
      std::fprintf(stderr, "dsfs: error: %s\n", s.message().c_str());
      return 1;
    }
  }
  auto creds = LoadCredentials(config.daemon.passwd_file, config.fs.bucket);
  if (!creds.ok()) {
    std::fprintf(stderr, "dsfs: error: %s\n", creds.status().message().c_str());
    return 1;
  }
  int pipe_fds[2] = {-1, -1};
  if (!config.daemon.foreground) {
    if (pipe(pipe_fds) != 0) {
      std::fprintf(stderr, "dsfs: error: pipe: %s\n", std::strerror(errno));
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "dsfs: error: fork: %s\n", std::strerror(errno));
      return 1;
    }
    if (pid > 0) {
      close(pipe_fds[1]);
      return WaitForChild(pipe_fds[0], pid);
    }
    close(pipe_fds[0]);
    setsid();
    if (chdir("/") != 0) spdlog::debug("chdir /: {}", std::strerror(errno));
  }
  StartupReporter reporter(pipe_fds[1]);
  curl_global_init(CURL_GLOBAL_ALL);
  int rc = Serve(config, std::move(*creds), reporter);
  curl_global_cleanup();
  return rc;
}

}  // namespace dsfs
