#include "tools/stores.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "backends/bounded_store.h"
#include "backends/dir_store.h"
#include "backends/s3_store.h"
#include "common/logging.h"
#include "tools/daemon.h"

namespace dsfs {
namespace {

// The start-up probe must answer fast: a black-holed endpoint should fail
// the mount (or let it come up offline) in seconds, not minutes.
S3Config ProbeConfig(const S3Config& main) {
  S3Config c = main;
  c.connect_timeout = std::min(main.connect_timeout, milliseconds(3000));
  c.request_timeout = std::min(main.request_timeout, milliseconds(5000));
  c.low_speed_time = std::min(main.low_speed_time, milliseconds(5000));
  c.max_retries = std::min(main.max_retries, 1);
  return c;
}

}  // namespace

Result<std::unique_ptr<StoreStack>> StoreStack::Build(const Config& config, Credentials creds,
                                                      Metrics* metrics) {
  std::unique_ptr<StoreStack> stack(new StoreStack());
  Status probe_status;
  {
    DSFS_ASSIGN_OR_RETURN(
        auto probe, S3Store::Create(ProbeConfig(config.s3), creds, config.fs.bucket, nullptr));
    ListRequest req{
        .prefix = config.fs.prefix, .delimiter = "/", .continuation = "", .max_keys = 1};
    probe_status = probe->List(req).status();
  }
  const bool down = FallbackStore::IsPrimaryDownError(probe_status);
  const bool has_share = !config.fallback.dir.empty();
  const bool has_cache = !config.cache.dir.empty();
  if (!probe_status.ok() && (!down || (!has_share && !has_cache))) {
    return DescribeProbeFailure(probe_status, config);
  }
  if (has_cache) {
    // RocksDB aborts (an assertion) creating a db on a full disk; the disk
    // cache turns itself off there (less than a block free), and so does this.
    struct statvfs vfs;
    const bool full = ::statvfs(config.cache.dir.c_str(), &vfs) == 0 &&
                      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < config.cache.block_size;
    Result<std::unique_ptr<MetaDb>> meta =
        full ? Result<std::unique_ptr<MetaDb>>(Status::Unavailable("its disk is full"))
             : MetaDb::Open(config.cache.dir + "/meta");
    if (meta.ok()) {
      stack->meta_ = std::move(*meta);
      stack->proofs_ = std::make_unique<PersistentProofBook>(*stack->meta_);
    } else if (!has_share && down) {
      return meta.status().WithContext("OBS is down and the metadata of cache_dir is unusable");
    } else {
      spdlog::warn("cache_dir {}: metadata unusable ({}); no offline mode, proofs kept in memory",
                   EscapeForLog(config.cache.dir), EscapeForLog(meta.status().ToString()));
    }
  }
  DSFS_ASSIGN_OR_RETURN(auto s3,
                        S3Store::Create(config.s3, std::move(creds), config.fs.bucket, metrics));
  stack->s3_ = s3.get();
  std::unique_ptr<ObjectStore> share;
  if (has_share) {
    auto dir = DirStore::Open(config.fallback.dir);
    if (!dir.ok()) return dir.status().WithContext("fallback '" + config.fallback.dir + "'");
    // Share I/O under the request deadline, on threads of its own.
    share = std::make_unique<BoundedStore>(std::move(*dir), config.fallback.share_workers,
                                           config.s3.request_timeout);
  }
  FallbackOptions fo = FallbackOptionsFrom(config);
  fo.proofs = stack->proofs_.get();
  stack->circuit_ =
      std::make_unique<FallbackStore>(std::move(s3), std::move(share), fo, metrics);
  stack->top_ = stack->circuit_.get();
  if (stack->meta_) {
    FallbackStore* circuit = stack->circuit_.get();
    stack->offline_ = std::make_unique<OfflineStore>(
        *circuit, *stack->meta_, [circuit] { return circuit->circuit_open(); }, metrics);
    stack->top_ = stack->offline_.get();
  }
  if (down) stack->circuit_->OpenCircuit(DescribeProbeFailure(probe_status, config).message());
  return stack;
}

}  // namespace dsfs
