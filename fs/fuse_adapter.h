// The FUSE adapter: libfuse 3.14 low-level API over Filesystem. Each
// callback converts the request, calls the core and replies; errors go
// through one helper (ReplyError) that maps with ToErrno, logs and counts.
// No FUSE type crosses into the core.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"
#include "fs/filesystem.h"

struct fuse_session;

namespace dsfs {

// Filled from Config by FuseOptionsFrom; the defaults are a default
// Config's (reasons in common/config.h).
struct FuseOptions {
  std::string mountpoint;
  std::string fsname;  // shown as the source in /proc/mounts (the bucket)
  bool allow_other = FsConfig{}.allow_other;
  bool read_only = FsConfig{}.read_only;
  bool debug = DaemonConfig{}.fuse_debug;  // libfuse request trace
  unsigned max_threads = DaemonConfig{}.max_threads;
  std::chrono::milliseconds attr_ttl = FsConfig{}.stat_ttl;          // kernel attr/entry cache
  std::chrono::milliseconds negative_ttl = FsConfig{}.negative_ttl;  // kernel negative dentries
  // bdi read_ahead_kb of the mount; 0 keeps the kernel's.
  unsigned kernel_readahead_kb = DaemonConfig{}.kernel_readahead_kb;
};

// The options of the mount: daemon.*, fs.allow_other/read_only, the stat
// and negative TTLs as the kernel's, the bucket as fsname.
FuseOptions FuseOptionsFrom(const Config& config);

// The "major:minor" of the mount at `mountpoint`, from a mountinfo text
// (the last matching line wins: a mount stacked over another).
std::string FindMountDevice(const std::string& mountinfo, const std::string& mountpoint);

class FuseSession {
 public:
  // Creates the session and mounts it. The Filesystem must outlive it.
  static Result<std::unique_ptr<FuseSession>> Mount(Filesystem& fs, const FuseOptions& options,
                                                    Metrics* metrics);
  ~FuseSession();  // unmounts

  // Serves requests until unmounted or a signal (SIGINT/SIGTERM/SIGHUP).
  // on_exit runs (on another thread, within ~100 ms) once the session is
  // told to exit, before the loop waits for the requests in progress: the
  // daemon cancels the network there, so no request keeps it from exiting.
  Status Loop(const std::function<void()>& on_exit = {});

  // Per-request glue; public so the C callbacks can reach it.
  Filesystem& fs() { return fs_; }
  Metrics* metrics() { return metrics_; }
  const FuseOptions& options() const { return options_; }

 private:
  FuseSession(Filesystem& fs, const FuseOptions& options, Metrics* metrics)
      : fs_(fs), options_(options), metrics_(metrics) {}

  Filesystem& fs_;
  const FuseOptions options_;
  Metrics* metrics_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_installed_ = false;
};

}  // namespace dsfs
