// The FUSE adapter: libfuse 3.14 low-level API over Filesystem. Each
// callback converts the request, calls the core and replies; errors go
// through one helper (ReplyError) that maps with ToErrno, logs and counts.
// No FUSE type crosses into the core.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "fs/filesystem.h"

struct fuse_session;

namespace dsfs {

struct FuseOptions {
  std::string mountpoint;
  std::string fsname;   // shown as the source in /proc/mounts (the bucket)
  bool allow_other = false;
  bool read_only = true;
  bool debug = false;   // libfuse request trace
  unsigned max_threads = 16;
  std::chrono::milliseconds attr_ttl{5000};      // kernel attr/entry cache
  std::chrono::milliseconds negative_ttl{1000};  // kernel negative dentries
  // Kernel read-ahead for the mount (bdi read_ahead_kb). The kernel's
  // default of 128 KiB keeps FUSE reads small; 8 MiB lets it send 1 MiB
  // reads well ahead of the reader. Needs root; skipped otherwise.
  unsigned kernel_readahead_kb = 8192;
};

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
  Status Loop();

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
