// The store stack of a mount, and who owns each layer:
//
//   OfflineStore (with cache_dir: answers from persisted metadata when OBS cannot)
//     FallbackStore (the circuit breaker; with fallback=: serves the share)
//       S3Store (OBS)
//       BoundedStore(DirStore) (the share, on its own threads, under a deadline)
//
// The metadata database (cache_dir/meta) holds the offline records and the
// share proofs. The start-up probe decides whether the mount may come up
// while OBS is down: with a share or a cache_dir it comes up with the
// circuit open (one log line); with neither it fails.
#pragma once

#include <memory>

#include "backends/fallback_store.h"
#include "backends/s3_store.h"
#include "cache/meta_db.h"
#include "cache/offline_store.h"
#include "cache/persistent_proofs.h"
#include "common/config.h"
#include "common/metrics.h"

namespace dsfs {

class StoreStack {
 public:
  // Probes the bucket, then builds the layers. metrics must outlive the stack.
  static Result<std::unique_ptr<StoreStack>> Build(const Config& config, Credentials creds,
                                                   Metrics* metrics);
  // What the filesystem and the reader use.
  ObjectStore& top() { return *top_; }
  FallbackStore& circuit() { return *circuit_; }
  // OBS itself, for Stop() at shutdown (owned by the circuit).
  S3Store& s3() { return *s3_; }

 private:
  StoreStack() = default;
  // Declaration order is construction order; destruction runs backwards,
  // so each layer goes before what it wraps.
  std::unique_ptr<MetaDb> meta_;                 // null without cache_dir
  std::unique_ptr<PersistentProofBook> proofs_;  // null without meta_
  std::unique_ptr<FallbackStore> circuit_;       // owns S3Store and the share
  std::unique_ptr<OfflineStore> offline_;        // null without meta_
  ObjectStore* top_ = nullptr;
  S3Store* s3_ = nullptr;
};

}  // namespace dsfs
