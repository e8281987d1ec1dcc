// FallbackStore: reads from a primary store (S3Store on OBS) while it is
// healthy and from a secondary store (DirStore on the SFS share that mirrors
// the bucket) while it is not, returning to the primary by itself. Without a
// secondary it is the circuit breaker alone: while the primary is down every
// request fails fast with Unavailable, so the layers above answer from what
// the node holds (offline mode) instead of waiting for timeouts.
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
//    whether or not it opens the circuit. Below the threshold, if the share
//    fails too, the caller gets the primary's error.
//  - OPEN: Head / List / Get go to the secondary (or fail with Unavailable
//    when there is none). A background thread probes the primary every
//    `probe_interval` (default: List of `probe_prefix` with max_keys=1) and
//    CLOSES the circuit when the primary answers: any result that is not
//    IsPrimaryDownError() counts (NotFound or AccessDenied mean the store is
//    there).
//  - Each transition logs exactly one line and bumps
//    dsfs_fallback_open_total / dsfs_fallback_close_total:
//      "fallback: OBS unavailable (<reason>), serving from <secondary>"
//      "fallback: OBS recovered"
//    or, without a secondary,
//      "offline: OBS unavailable (<reason>), serving what this node holds"
//      "offline: OBS recovered"
//
// Which bytes the share may serve (see share_proof.h for the proof)
//  - A share file is served as an OBS version only when the ProofBook holds
//    a kProven verdict for (key, the file's current share ETag) against that
//    OBS ETag. Such a Get returns the OBS ETag with source kShare, so the
//    bytes may be cached under the OBS identity: they are that version's.
//  - A Get pinned to an OBS version (If-Match an OBS ETag) that the share
//    cannot prove fails with IoError (EIO) and no bytes, logged once per
//    key and version: "fallback: '<key>' on the share is not proven to be
//    OBS version <etag>: not served". A reader never gets share bytes under
//    an OBS identity it did not prove, and a handle never mixes versions.
//  - Head from the share returns the OBS version a proof maps the file to,
//    else the share's own identity ("sfs-..."): an unproven file is only
//    ever its own version, as when OBS was never reachable.
//  - A Get pinned to a share ETag always goes to the share, even after the
//    circuit closes, and must equal the file's current ETag (DirStore checks).
//  - List pages from the share are passed through (share ETags).
//
// Two sources at once (fallback_parallel=on, the default)
//  - While the circuit is closed, a ranged Get/GetParts pinned to an OBS
//    ETag whose share copy is proven to be exactly that version goes to
//    OBS or to the share, whichever SourceSplit expects to finish it
//    first (source_split.h: rates measured as it goes, a fair split until
//    then). From the share it is read pinned to the proven share ETag and
//    returned as the OBS ETag with source kShare, as GetSecondary does.
//  - Whether it is proven: a background thread stats the share file (the
//    first reads of an object go to OBS meanwhile; no reader ever waits
//    for a share stat) and looks its identity up in the ProofBook. A proven
//    identity is used until a share read fails: the share's If-Match
//    refuses a rewritten file. "Not proven" is asked again after
//    `parallel_stat_ttl`.
//  - Anything else (off, no share, unpinned, unproven, a share ETag) goes
//    where it went before. A share failure of such a read is retried on
//    OBS in the same call and keeps that object's reads off the share for
//    `parallel_error_backoff`; an OBS failure is handled as any OBS failure.
//  - A read still running past its source's recent p99 (for its size; at
//    least `hedge_min_delay`) is also asked of the other source when that
//    one is expected to answer within the same time and a hedge worker is
//    free (hedger.h: at most one hedge per read, `hedge_workers` at once).
//    The first good answer is returned and the other attempt cancelled;
//    both answers are checked to be the OBS version asked for (the share's
//    through its proven share ETag). Hedge failures never count towards
//    the circuit.
//  - Counted in dsfs_parallel_{bytes,requests}_total{source="obs"|"share"}
//    (bytes also in dsfs_share_bytes_read_total),
//    dsfs_parallel_share_failures_total, dsfs_parallel_hedges_total and
//    dsfs_parallel_hedges_won_total.
//
// Proofs are made in the background while the primary is healthy: a
// primary Head of a key whose ETag is provable queues the key; a prover
// thread reads the share copy at most `proof_rate` bytes/s and records the
// verdict (dsfs_share_proven_total / dsfs_share_differs_total). Prove()
// and ProvePrefix() prove on the caller's thread (ahead of a job; the
// `user.dsfs.prove` xattr, dsfsctl verify).
//
// Writes (Put, Copy, the multipart calls, Delete) go to the primary only:
// the share is a read-only mirror and is never written. While the circuit
// is open a write fails at once with Unavailable ("OBS is unreachable:
// writes need it"); the caller keeps what it staged. A write's failure
// counts towards opening the circuit exactly as a read's does, and its
// answer closes the count the same way. An abort skipped while the circuit
// is open leaves its parts to the bucket's lifecycle rule for incomplete
// uploads (S3's AbortIncompleteMultipartUpload).
//
// List continuation tokens are wrapped ("p"/"s" + the page's last item +
// the inner token). A primary token used while the circuit is open
// continues on the secondary after that last item (DirStore tokens mean
// "start after"); a secondary token always continues on the secondary, so
// one listing never mixes pages of two stores after a flip back.
//
// Thread-safe. Lock order: circuit_mu_, proof_mu_, parallel_mu_ and logged_mu_ are
// leaves, never held together; no store call runs under any of them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/hedger.h"
#include "backends/object_store.h"
#include "backends/share_proof.h"
#include "backends/source_split.h"
#include "common/config.h"
#include "common/metrics.h"

namespace spdlog {
class logger;
}

namespace dsfs {

// The defaults are a default FallbackConfig's (common/config.h has the
// reasons); FallbackOptionsFrom fills them from the mount's Config.
struct FallbackOptions {
  // Consecutive retryable primary failures that open the circuit.
  int failure_threshold = FallbackConfig{}.failure_threshold;
  // How often the background probe asks the primary while the circuit is
  // open.
  std::chrono::milliseconds probe_interval = FallbackConfig{}.probe_interval;
  // The default probe lists this prefix with max_keys=1 (the mount's key
  // prefix: the credentials may be allowed to list only there).
  std::string probe_prefix;
  // Replaces the default probe. Its result is judged by IsPrimaryDownError.
  std::function<Status(ObjectStore& primary)> probe;
  // Bytes per second the background prover reads from the share; 0: no
  // background proofs (Prove/ProvePrefix still work).
  uint64_t proof_rate = FallbackConfig{}.proof_rate;
  // Keys waiting for a background proof; more are dropped (a later Head
  // queues them again).
  size_t proof_queue = FallbackConfig{}.proof_queue;
  // Reads of proven objects split between OBS and the share while OBS is
  // healthy (see "Two sources at once").
  bool parallel = FallbackConfig{}.parallel;
  // How long a share file's proven identity is used before it is stat'ed
  // again, and how long an object's reads stay off the share after a share
  // error.
  std::chrono::milliseconds parallel_stat_ttl = FallbackConfig{}.parallel_stat_ttl;
  std::chrono::milliseconds parallel_error_backoff = FallbackConfig{}.parallel_error_backoff;
  // Threads of the share's BoundedStore: bounds the reads in flight there.
  int share_workers = FallbackConfig{}.share_workers;
  // Hedges at once (0: no hedging), and the least time before one.
  int hedge_workers = FallbackConfig{}.hedge_workers;
  std::chrono::milliseconds hedge_min_delay = FallbackConfig{}.hedge_min_delay;
  // How the split measures the sources (its max_in_flight is set from
  // share_workers, whatever this says).
  SourceSplitOptions split;
  // Where verdicts are kept (must outlive the store); null: in memory.
  ProofBook* proofs = nullptr;
  // Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

// fallback.* (threshold, probe interval, proof rate and queue, parallel) and the
// probe prefix (fs.prefix). `probe`, `proofs` and `logger` are left unset:
// the store stack owns the proof book.
FallbackOptions FallbackOptionsFrom(const Config& config);

// One line of a ProvePrefix report.
struct ProofLine {
  std::string key;
  // "proven", "differs", "missing" (no share copy), "unprovable", or "error".
  std::string result;
};

class FallbackStore : public ObjectStore {
 public:
  // Owning. secondary may be null (circuit only). metrics may be null
  // (counters are then kept privately).
  FallbackStore(std::unique_ptr<ObjectStore> primary, std::unique_ptr<ObjectStore> secondary,
                FallbackOptions options, Metrics* metrics);
  // Non-owning: both stores must outlive this object; secondary may be null.
  FallbackStore(ObjectStore& primary, ObjectStore* secondary, FallbackOptions options,
                Metrics* metrics);
  // Stops and joins the probe and prover threads (a share read in flight
  // is cancelled; a probe in flight is bounded by the primary's timeouts).
  ~FallbackStore() override;
  FallbackStore(const FallbackStore&) = delete;
  FallbackStore& operator=(const FallbackStore&) = delete;

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  // OBS in place; the share (and OBS failing over to it) through one buffer.
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override;
  // "fallback(<primary>, <secondary>)" or "circuit(<primary>)"
  std::string Describe() const override;

  Result<PutResult> Put(const PutRequest& request) override;
  Result<PutResult> Copy(const CopyRequest& request) override;
  Result<std::string> CreateMultipartUpload(const std::string& key,
                                            const ObjectAttrs& attrs) override;
  Result<std::string> UploadPart(const UploadPartRequest& request) override;
  Result<PutResult> CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                            const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override;
  Status Delete(const std::string& key) override;

  // Whether a primary failure means the primary is down (Unavailable,
  // Throttled, Transient), as opposed to an answer. The daemon uses it at
  // mount: a mount whose first primary request fails this way may come up
  // with the circuit open (OpenCircuit()).
  static bool IsPrimaryDownError(const Status& status);

  bool circuit_open() const { return open_.load(std::memory_order_acquire); }
  bool has_secondary() const { return secondary_ != nullptr; }
  // Opens the circuit (no-op when open): logs the transition line with
  // `reason` and counts it. For a mount that starts while OBS is down.
  void OpenCircuit(const std::string& reason);
  // Runs the probe now instead of at the next interval (tests, dsfsctl).
  void ProbeNow();

  // Proves the share copy of one object version now (reads it whole) and
  // records the verdict. "missing" when the share has no such file.
  Result<std::string> Prove(const ObjectInfo& obs);
  // Proves every object under prefix (recursive), listed from the primary.
  Result<std::vector<ProofLine>> ProvePrefix(const std::string& prefix);
  // Waits until the background prover has nothing queued or running
  // (tests); false after `timeout`.
  bool WaitProofsIdle(std::chrono::milliseconds timeout);
  // Waits until no share stat of the parallel reads is queued or running
  // (tests); false after `timeout`.
  bool WaitShareStatsIdle(std::chrono::milliseconds timeout);

 private:
  struct ProofJob {
    std::string key;
    std::string etag;
    uint64_t size = 0;
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

  // The answer to a request OBS failed: the share's while it has one. While
  // the circuit is still closed, a share error gives way to OBS's own error
  // (the share may lag behind the bucket); once open, the share's errors are
  // the answer.
  template <typename T, typename F>
  Result<T> FromSecondary(F&& ask, const Status& primary_error, bool circuit_open) {
    if (secondary_ == nullptr) return primary_error;
    Result<T> share = ask();
    if (share.ok() || circuit_open) return share;
    return primary_error;
  }
  Status Offline(const std::string& what) const;
  // A write on the primary: refused at once while the circuit is open,
  // else sent, its outcome counted like a read's.
  template <typename T, typename F>
  Result<T> WriteToPrimary(const std::string& what, F&& write) {
    if (circuit_open()) return NoWrites(what);
    Result<T> r = write();
    if (r.ok() || !IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
    } else {
      OnPrimaryFailure(r.status());
    }
    return r;
  }
  Status NoWrites(const std::string& what) const;

  Result<ObjectInfo> HeadSecondary(const std::string& key);
  Result<GetResult> GetSecondary(const GetRequest& request, char* buf, size_t buf_len);
  Result<ListPage> ListSecondary(ListRequest request);
  // Two sources at once: the proven share ETag of a request that may go
  // to either source, else nullopt (the request goes where it always did).
  std::optional<std::string> ParallelShareEtag(const GetRequest& request);
  // Records a proof's outcome for the parallel reads.
  void RememberProven(const std::string& key, const std::string& obs_etag,
                      const std::string& share_etag);
  struct ShareIdentity;
  // Records an identity (bounded). Requires parallel_mu_.
  void SetIdentityLocked(const std::string& id, ShareIdentity identity);
  // Queues a background stat of obs's share file unless its identity is
  // known.
  void QueueShareStat(const ObjectInfo& obs);
  // Stats queued share files and records their proven identities.
  void StatLoop();
  // Keeps the object's reads off the share for the error backoff.
  void ShareFailed(const GetRequest& request, const Status& status);
  // A read that may go to either source (share_etag: the proven share
  // version), into parts. A share failure is retried on OBS.
  Result<GetResult> GetEither(const GetRequest& request, const std::string& share_etag,
                              std::span<const GetPart> parts);
  // The read started on ticket.source, hedged on the other when late.
  Result<GetResult> HedgedRead(const SourceSplit::Ticket& ticket, const GetRequest& request,
                               const std::string& share_etag, std::span<const GetPart> parts);
  // The read started on ticket.source under `cancel`, measured and counted
  // (`hedge`: it is the second attempt of a hedged read).
  Result<GetResult> TimedRead(const SourceSplit::Ticket& ticket, const GetRequest& request,
                              const std::string& share_etag, std::span<const GetPart> parts,
                              const CancelTokenPtr& cancel, bool hedge);
  static SourceSplitOptions SplitOptions(const FallbackOptions& options);
  // The read on `source`; checks the answer is the version asked for.
  Result<GetResult> ReadFrom(int source, const GetRequest& request, const std::string& share_etag,
                             std::span<const GetPart> parts, const CancelTokenPtr& cancel);
  // Logs the "not proven" line once per key and version.
  void LogUnproven(const std::string& key, const std::string& etag);

  // Background proofs.
  void QueueProof(const ObjectInfo& obs);
  void ProverLoop();
  // Share Head + proof (or the verdict already recorded) + record.
  Result<std::string> ProveWith(const std::string& key, const std::string& etag, uint64_t size,
                                RateLimiter* limiter);

  std::unique_ptr<ObjectStore> owned_primary_;
  std::unique_ptr<ObjectStore> owned_secondary_;
  ObjectStore* primary_;
  ObjectStore* secondary_;  // may be null
  const FallbackOptions options_;
  std::unique_ptr<Metrics> own_metrics_;  // when none was given
  std::unique_ptr<MemoryProofBook> own_proofs_;
  ProofBook* proofs_ = nullptr;
  RateLimiter limiter_;
  std::shared_ptr<CancelToken> stop_token_ = std::make_shared<CancelToken>();
  Counter* open_total_ = nullptr;
  Counter* close_total_ = nullptr;
  Counter* secondary_requests_total_ = nullptr;
  Counter* proven_total_ = nullptr;
  Counter* differs_total_ = nullptr;
  Counter* unproven_reads_total_ = nullptr;
  Counter* share_bytes_total_ = nullptr;  // bytes of share GETs (the share tier)
  // Two sources at once: [kObsSource] OBS, [kShareSource] the share.
  static constexpr int kObsSource = 0, kShareSource = 1;
  // How soon a reader's cancellation reaches a read that may be hedged.
  static constexpr std::chrono::milliseconds kHedgeCancelPoll{20};
  Counter* parallel_bytes_[SourceSplit::kSources] = {};
  Counter* parallel_requests_[SourceSplit::kSources] = {};
  Counter* parallel_share_failures_ = nullptr;
  Counter* hedges_started_ = nullptr;
  Counter* hedges_won_ = nullptr;
  // dsfs_fallback_state, set with open_ under circuit_mu_.
  static constexpr int64_t kStateObs = 0, kStateShare = 1, kStateOffline = 2;
  Gauge* state_ = nullptr;

  std::atomic<bool> open_{false};  // written under circuit_mu_
  mutable std::mutex circuit_mu_;
  std::condition_variable circuit_cv_;  // signalled on open, wake, stop
  int consecutive_failures_ = 0;        // guarded by circuit_mu_
  bool wake_ = false;                   // guarded by circuit_mu_
  bool stop_ = false;                   // guarded by circuit_mu_

  std::mutex proof_mu_;
  std::condition_variable proof_cv_;        // queued job or stop
  std::condition_variable proof_idle_cv_;   // queue drained
  std::deque<ProofJob> proof_queue_;        // guarded by proof_mu_
  std::unordered_set<std::string> queued_;  // guarded by proof_mu_: key + '\0' + etag
  bool proof_busy_ = false;                 // guarded by proof_mu_
  bool proof_stop_ = false;                 // guarded by proof_mu_

  SourceSplit split_;
  struct ShareIdentity {
    std::string share_etag;  // empty: not to be read from the share
    std::chrono::steady_clock::time_point until;
  };
  std::mutex parallel_mu_;
  std::condition_variable stat_cv_;       // queued stat or stop
  std::condition_variable stat_idle_cv_;  // stat queue drained
  // key + '\0' + OBS ETag -> its proven share version (bounded).
  std::unordered_map<std::string, ShareIdentity> share_identity_;  // guarded by parallel_mu_
  std::deque<std::string> stat_queue_;                             // guarded by parallel_mu_
  std::unordered_set<std::string> stat_queued_;                    // guarded by parallel_mu_
  bool stat_busy_ = false;                                         // guarded by parallel_mu_
  bool stat_stop_ = false;                                         // guarded by parallel_mu_

  std::mutex logged_mu_;
  std::unordered_set<std::string> logged_unproven_;  // guarded by logged_mu_ (bounded)

  // Destroyed before everything its hedges use (declared after it).
  Hedger hedger_;

  std::thread prover_thread_;
  std::thread stat_thread_;  // share stats of parallel reads' objects
  std::thread probe_thread_;  // last members: started after everything else
};

}  // namespace dsfs
