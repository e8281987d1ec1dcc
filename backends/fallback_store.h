// FallbackStore: reads from a primary store (S3Store on OBS) while it is
// healthy and from a secondary store (DirStore on the SFS share that mirrors
// the bucket) while it is not, returning to the primary by itself.
//
// Circuit breaker
//  - CLOSED: every request goes to the primary.
//  - It OPENS after `failure_threshold` consecutive retryable primary
//    failures (Throttled / Transient, which include the primary's own
//    timeouts), or at once on Unavailable (connect failure). Any answer of
//    the primary (success, NotFound, AccessDenied, PreconditionFailed, ...)
//    resets the count; those errors never open the circuit and are
//    returned as they are.
//  - Every request that fails on the primary with a "down" error (after the
//    primary's own retries) is retried on the secondary in the same call,
//    whether or not it opens the circuit, so the caller sees the share's
//    answer, not the error; a read in progress continues from the share at
//    the same offset. Below the threshold, if the share fails too, the
//    caller gets the primary's error.
//  - OPEN: Head / List / Get go to the secondary. A background thread probes
//    the primary every `probe_interval` (default: List of `probe_prefix`
//    with max_keys=1) and CLOSES the circuit when the primary answers: any
//    result that is not IsPrimaryDownError() counts (NotFound or
//    AccessDenied mean the store is there).
//  - Each transition logs exactly one line
//      "fallback: OBS unavailable (<reason>), serving from <secondary>"
//      "fallback: OBS recovered"
//    and bumps dsfs_fallback_open_total / dsfs_fallback_close_total.
//
// Size guard and identity
//  - The store remembers the size and ETag the primary last reported per key
//    (Head, List entries, whole-object Gets), in an LRU of
//    `max_remembered_keys` keys. A primary NotFound forgets the key.
//  - Serving a key from the secondary (Head or Get): if the primary
//    reported a size and the secondary's differs, the request fails with
//    IoError (EIO) and no bytes, logged once per key and size pair as
//    "fallback: size mismatch for <key>: OBS <n>, share <m>". If the primary
//    never answered for the key since start (or it was evicted), the
//    secondary is served as is.
//  - Results from the secondary carry the secondary's ETag ("sfs-..."), never
//    an OBS ETag, so a cache keyed by (key, ETag) never mixes share bytes with
//    an OBS version.
//  - Get.if_match, the version a reader is pinned to:
//      * an "sfs-" ETag (pinned while the circuit was open) always goes to
//        the secondary, even after the circuit closes, and must equal the
//        share file's current ETag: the reader finishes on the exact share
//        version it started on (size guard still applies);
//      * an OBS ETag served from the secondary is allowed when the size guard
//        passes (the share is assumed to mirror the same version: the only
//        check a share allows), and fails with PreconditionFailed (ESTALE)
//        when the primary's last reported ETag for the key is a different
//        one (the object changed on OBS since the reader pinned it).
//    In both cases the secondary is asked with the share ETag the size guard
//    looked at, so a share file rewritten between the check and the read
//    fails with PreconditionFailed instead of returning other bytes.
//  - List pages from the secondary are passed through (entries carry share
//    sizes and ETags); the guard applies when such a key is read.
//
// List continuation tokens are wrapped ("p"/"s" + the page's last item +
// the inner token). A primary token used while the circuit is open
// continues on the secondary after that last item (DirStore tokens mean
// "start after"); a secondary token always continues on the secondary, so
// one listing never mixes pages of two stores after a flip back.
//
// Writes are not in the ObjectStore interface yet; when they are, they need
// the primary and fail while the circuit is open.
//
// Thread-safe. Lock order: circuit_mu_ and memo_mu_ are never held together.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "backends/object_store.h"
#include "common/metrics.h"

namespace spdlog {
class logger;
}

namespace dsfs {

struct FallbackOptions {
  // Consecutive retryable primary failures that open the circuit. 3: the
  // primary (S3Store) already retried each request with backoff, so three
  // failed requests in a row mean it is down, not unlucky.
  int failure_threshold = 3;
  // How often the background probe asks the primary while the circuit is
  // open: 5 s returns to OBS soon after it recovers and costs one LIST per
  // 5 s during an outage.
  std::chrono::milliseconds probe_interval{5000};
  // The default probe lists this prefix with max_keys=1 (the mount's key
  // prefix: the credentials may be allowed to list only there).
  std::string probe_prefix;
  // Replaces the default probe. Its result is judged by IsPrimaryDownError.
  std::function<Status(ObjectStore& primary)> probe;
  // Keys whose primary-reported size and ETag are remembered for the size
  // guard (LRU). 100k keys is ~25 MB and covers every shard of many models;
  // 0 disables the memory (the secondary is then always served).
  size_t max_remembered_keys = 100000;
  // Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

class FallbackStore : public ObjectStore {
 public:
  // Owning. metrics may be null (counters are then kept privately).
  FallbackStore(std::unique_ptr<ObjectStore> primary, std::unique_ptr<ObjectStore> secondary,
                FallbackOptions options, Metrics* metrics);
  // Non-owning: both stores must outlive this object.
  FallbackStore(ObjectStore& primary, ObjectStore& secondary, FallbackOptions options,
                Metrics* metrics);
  // Stops and joins the probe thread (waits for a probe in flight, which
  // the primary's own timeouts bound).
  ~FallbackStore() override;
  FallbackStore(const FallbackStore&) = delete;
  FallbackStore& operator=(const FallbackStore&) = delete;

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  // "fallback(<primary>, <secondary>)"
  std::string Describe() const override;

  // Whether a primary failure means the primary is down (Unavailable,
  // Throttled, Transient), as opposed to an answer. The daemon uses it at
  // mount: with a fallback configured, a mount whose first primary request
  // fails this way succeeds and calls StartOpen().
  static bool IsPrimaryDownError(const Status& status);

  bool circuit_open() const { return open_.load(std::memory_order_acquire); }
  // Opens the circuit (no-op when open): logs the transition line with
  // `reason` and counts it. For a mount that starts while OBS is down.
  void StartOpen(const std::string& reason);
  // Runs the probe now instead of at the next interval (tests, dsfsctl).
  void ProbeNow();

 private:
  struct Remembered {
    uint64_t size = 0;
    std::string etag;  // may be empty (learned from a whole-object Get)
    // The (OBS size, share size) pair already logged as a mismatch.
    uint64_t logged_share_size = 0;
    bool mismatch_logged = false;
    std::list<std::string>::iterator lru;
  };

  void Init(Metrics* metrics);
  spdlog::logger& Log() const;
  // Records a primary answer (resets the failure count).
  void OnPrimaryAnswer();
  // Records a primary failure that IsPrimaryDownError; returns whether the
  // circuit is now open.
  bool OnPrimaryFailure(const Status& status);
  // Opens the circuit, logs and counts (no-op when open). Requires
  // circuit_mu_.
  void OpenLocked(const std::string& reason);
  Status RunProbe();
  void ProbeLoop();

  // The share's answer to a request OBS failed. While the circuit is still
  // closed, a share error gives way to OBS's own error (the share may lag
  // behind the bucket); once open, the share's errors are the answer.
  template <typename T>
  static Result<T> ShareOr(Result<T> share, const Status& primary_error, bool circuit_open) {
    if (share.ok() || circuit_open) return share;
    return primary_error;
  }

  void Remember(const std::string& key, uint64_t size, const std::string& etag);
  void Forget(const std::string& key);
  // Checks the size guard for `key` whose share size is share_size and,
  // when obs_etag is an OBS ETag a reader is pinned to, that it is still
  // the primary's latest. OK, IoError or PreconditionFailed.
  Status CheckSecondary(const std::string& key, uint64_t share_size, const std::string& obs_etag);

  Result<ObjectInfo> HeadSecondary(const std::string& key);
  Result<GetResult> GetSecondary(const GetRequest& request, char* buf, size_t buf_len);
  Result<ListPage> ListSecondary(ListRequest request);

  std::unique_ptr<ObjectStore> owned_primary_;
  std::unique_ptr<ObjectStore> owned_secondary_;
  ObjectStore* primary_;
  ObjectStore* secondary_;
  const FallbackOptions options_;
  std::unique_ptr<Metrics> own_metrics_;  // when none was given
  Counter* open_total_ = nullptr;
  Counter* close_total_ = nullptr;
  Counter* secondary_requests_total_ = nullptr;
  Counter* size_mismatch_total_ = nullptr;

  std::atomic<bool> open_{false};  // written under circuit_mu_
  mutable std::mutex circuit_mu_;
  std::condition_variable circuit_cv_;  // signalled on open, wake, stop
  int consecutive_failures_ = 0;        // guarded by circuit_mu_
  bool wake_ = false;                   // guarded by circuit_mu_
  bool stop_ = false;                   // guarded by circuit_mu_

  mutable std::mutex memo_mu_;
  std::list<std::string> lru_;                        // guarded by memo_mu_, front = newest
  std::unordered_map<std::string, Remembered> memo_;  // guarded by memo_mu_

  std::thread probe_thread_;  // last member: started after everything else
};

}  // namespace dsfs
