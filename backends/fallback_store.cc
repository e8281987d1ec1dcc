#include "backends/fallback_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "backends/dir_store.h"
#include "common/logging.h"

namespace dsfs {
namespace {

// List continuation tokens handed to the caller:
//   origin ('p' primary, 's' secondary) + len(last) + ':' + last + inner
// where `last` is the last key or common prefix of the page and `inner` the
// store's own token.
struct ListToken {
  char origin = 0;
  std::string last;
  std::string inner;
};

std::string WrapToken(char origin, const ListPage& page, const std::string& inner) {
  std::string last;
  if (!page.objects.empty()) last = page.objects.back().key;
  if (!page.common_prefixes.empty()) last = std::max(last, page.common_prefixes.back());
  return std::string(1, origin) + std::to_string(last.size()) + ":" + last + inner;
}

Result<ListToken> ParseToken(const std::string& token) {
  auto bad = [] { return Status::InvalidArgument("malformed list continuation token"); };
  if (token.size() < 3 || (token[0] != 'p' && token[0] != 's')) return bad();
  size_t colon = token.find(':', 1);
  if (colon == std::string::npos || colon == 1 || colon > 8) return bad();
  size_t len = 0;
  for (size_t i = 1; i < colon; ++i) {
    if (token[i] < '0' || token[i] > '9') return bad();
    len = len * 10 + static_cast<size_t>(token[i] - '0');
  }
  if (token.size() - colon - 1 < len) return bad();
  ListToken t;
  t.origin = token[0];
  t.last = token.substr(colon + 1, len);
  t.inner = token.substr(colon + 1 + len);
  return t;
}

}  // namespace

SourceSplitOptions FallbackStore::SplitOptions(const FallbackOptions& options) {
  SourceSplitOptions o = options.split;
  // The share's BoundedStore refuses work once every worker is busy and one
  // request waits: leave a worker each to the background prover and stats.
  o.max_in_flight[kShareSource] = std::max(1, options.share_workers - 2);
  return o;
}

FallbackOptions FallbackOptionsFrom(const Config& config) {
  FallbackOptions o;
  o.failure_threshold = config.fallback.failure_threshold;
  o.probe_interval = config.fallback.probe_interval;
  o.probe_prefix = config.fs.prefix;
  o.proof_rate = config.fallback.proof_rate;
  o.proof_queue = config.fallback.proof_queue;
  o.parallel = config.fallback.parallel;
  o.parallel_stat_ttl = config.fallback.parallel_stat_ttl;
  o.parallel_error_backoff = config.fallback.parallel_error_backoff;
  o.hedge_workers = config.fallback.hedge_workers;
  o.hedge_min_delay = config.fallback.hedge_min_delay;
  o.share_workers = config.fallback.share_workers;
  o.split.ewma_alpha = config.fallback.split_ewma_alpha;
  o.split.latency_window = config.fallback.split_latency_window;
  o.split.min_latency_samples = config.fallback.split_min_latency_samples;
  o.split.probe_after = config.fallback.split_probe_after;
  o.split.sample_ttl = config.fallback.split_sample_ttl;
  o.split.max_wait = config.fallback.split_max_wait;
  return o;
}

FallbackStore::FallbackStore(std::unique_ptr<ObjectStore> primary,
                             std::unique_ptr<ObjectStore> secondary, FallbackOptions options,
                             Metrics* metrics)
    : owned_primary_(std::move(primary)),
      owned_secondary_(std::move(secondary)),
      primary_(owned_primary_.get()),
      secondary_(owned_secondary_.get()),
      options_(std::move(options)),
      limiter_(options_.proof_rate),
      split_(SplitOptions(options_)),
      hedger_(options_.parallel ? options_.hedge_workers : 0, kHedgeCancelPoll) {
  Init(metrics);
}

FallbackStore::FallbackStore(ObjectStore& primary, ObjectStore* secondary, FallbackOptions options,
                             Metrics* metrics)
    : primary_(&primary),
      secondary_(secondary),
      options_(std::move(options)),
      limiter_(options_.proof_rate),
      split_(SplitOptions(options_)),
      hedger_(options_.parallel ? options_.hedge_workers : 0, kHedgeCancelPoll) {
  Init(metrics);
}

void FallbackStore::Init(Metrics* metrics) {
  if (metrics == nullptr) {
    own_metrics_ = std::make_unique<Metrics>();
    metrics = own_metrics_.get();
  }
  proofs_ = options_.proofs;
  if (proofs_ == nullptr) {
    own_proofs_ = std::make_unique<MemoryProofBook>();
    proofs_ = own_proofs_.get();
  }
  open_total_ =
      &metrics->GetCounter("dsfs_fallback_open_total", "Times the primary store was declared down");
  close_total_ = &metrics->GetCounter("dsfs_fallback_close_total",
                                      "Times the primary store was declared recovered");
  secondary_requests_total_ = &metrics->GetCounter("dsfs_fallback_secondary_requests_total",
                                                   "Requests served by the fallback store");
  share_bytes_total_ = &metrics->GetCounter("dsfs_share_bytes_read_total",
                                            "Bytes read from the share (fallback store)");
  static constexpr const char* kSourceNames[SourceSplit::kSources] = {"obs", "share"};
  for (int s = 0; s < SourceSplit::kSources; ++s) {
    parallel_bytes_[s] = &metrics->GetCounter(
        "dsfs_parallel_bytes_total",
        "Bytes of reads that could go to OBS or a proven share copy, by where they went",
        {{"source", kSourceNames[s]}});
    parallel_requests_[s] = &metrics->GetCounter(
        "dsfs_parallel_requests_total",
        "Reads that could go to OBS or a proven share copy, by where they were served",
        {{"source", kSourceNames[s]}});
  }
  hedges_started_ = &metrics->GetCounter(
      "dsfs_parallel_hedges_total",
      "Reads late on one source (past its recent p99) also asked of the other");
  hedges_won_ = &metrics->GetCounter("dsfs_parallel_hedges_won_total",
                                     "Hedged reads answered first by the other source");
  parallel_share_failures_ =
      &metrics->GetCounter("dsfs_parallel_share_failures_total",
                           "Reads of a proven share copy that failed and were retried on OBS");
  state_ = &metrics->GetGauge("dsfs_fallback_state",
                              "Where reads go: 0 OBS, 1 the share (OBS down), 2 offline "
                              "(OBS down, no share: cached data only)");
  proven_total_ = &metrics->GetCounter("dsfs_share_proven_total",
                                       "Share files proven to hold the bytes of their OBS version");
  differs_total_ = &metrics->GetCounter("dsfs_share_differs_total",
                                        "Share files found to differ from their OBS version");
  unproven_reads_total_ =
      &metrics->GetCounter("dsfs_share_unproven_reads_total",
                           "Reads of an OBS version refused because the share copy is unproven");
  if (secondary_ != nullptr && options_.proof_rate > 0) {
    prover_thread_ = std::thread([this] { ProverLoop(); });
  }
  if (secondary_ != nullptr && options_.parallel) {
    stat_thread_ = std::thread([this] { StatLoop(); });
  }
  probe_thread_ = std::thread([this] { ProbeLoop(); });
}

FallbackStore::~FallbackStore() {
  stop_token_->Cancel();
  {
    std::lock_guard lock(circuit_mu_);
    stop_ = true;
  }
  circuit_cv_.notify_all();
  {
    std::lock_guard lock(proof_mu_);
    proof_stop_ = true;
  }
  proof_cv_.notify_all();
  {
    std::lock_guard lock(parallel_mu_);
    stat_stop_ = true;
  }
  stat_cv_.notify_all();
  if (probe_thread_.joinable()) probe_thread_.join();
  if (stat_thread_.joinable()) stat_thread_.join();
  if (prover_thread_.joinable()) prover_thread_.join();
}

spdlog::logger& FallbackStore::Log() const {
  return options_.logger ? *options_.logger : *spdlog::default_logger_raw();
}

std::string FallbackStore::Describe() const {
  if (secondary_ == nullptr) return "circuit(" + primary_->Describe() + ")";
  return "fallback(" + primary_->Describe() + ", " + secondary_->Describe() + ")";
}

bool FallbackStore::IsPrimaryDownError(const Status& status) {
  return status.code() == StatusCode::kUnavailable || status.retryable();
}

Status FallbackStore::Offline(const std::string& what) const {
  return Status::Unavailable(what + ": OBS is unavailable (offline)");
}

Status FallbackStore::NoWrites(const std::string& what) const {
  return Status::Unavailable(what + ": OBS is unreachable: writes need it");
}

// ---- circuit ---------------------------------------------------------------

void FallbackStore::OpenLocked(const std::string& reason) {
  if (open_.load(std::memory_order_relaxed)) return;
  // Logged and counted under the lock, before the flag flips, so the
  // open/recovered lines never swap order and whoever sees the new state
  // also sees its line and count.
  if (secondary_ != nullptr) {
    Log().warn("fallback: OBS unavailable ({}), serving from {}", EscapeForLog(reason),
               secondary_->Describe());
  } else {
    Log().warn("offline: OBS unavailable ({}), serving what this node holds", EscapeForLog(reason));
  }
  open_total_->Add();
  state_->Set(secondary_ != nullptr ? kStateShare : kStateOffline);
  consecutive_failures_ = 0;
  wake_ = false;
  open_.store(true, std::memory_order_release);
  circuit_cv_.notify_all();
}

void FallbackStore::OpenCircuit(const std::string& reason) {
  std::lock_guard lock(circuit_mu_);
  OpenLocked(reason);
}

void FallbackStore::ProbeNow() {
  {
    std::lock_guard lock(circuit_mu_);
    wake_ = true;
  }
  circuit_cv_.notify_all();
}

void FallbackStore::OnPrimaryAnswer() {
  std::lock_guard lock(circuit_mu_);
  consecutive_failures_ = 0;
}

bool FallbackStore::OnPrimaryFailure(const Status& status) {
  std::lock_guard lock(circuit_mu_);
  if (open_.load(std::memory_order_relaxed)) return true;
  const int threshold = std::max(1, options_.failure_threshold);
  if (status.code() == StatusCode::kUnavailable || ++consecutive_failures_ >= threshold) {
    OpenLocked(status.ToString());
    return true;
  }
  return false;
}

Status FallbackStore::RunProbe() {
  if (options_.probe) return options_.probe(*primary_);
  ListRequest request;
  request.prefix = options_.probe_prefix;
  request.max_keys = 1;
  return primary_->List(request).status();
}

void FallbackStore::ProbeLoop() {
  std::unique_lock lock(circuit_mu_);
  while (!stop_) {
    if (!open_.load(std::memory_order_relaxed)) {
      circuit_cv_.wait(lock, [this] { return stop_ || open_.load(std::memory_order_relaxed); });
      continue;
    }
    circuit_cv_.wait_for(lock, options_.probe_interval, [this] { return stop_ || wake_; });
    if (stop_) break;
    wake_ = false;
    if (!open_.load(std::memory_order_relaxed)) continue;
    lock.unlock();
    Status probe = RunProbe();
    lock.lock();
    if (stop_ || !open_.load(std::memory_order_relaxed)) continue;
    // A probe cut by the store's shutdown (S3Store::Stop) says nothing.
    if (IsPrimaryDownError(probe) || probe.code() == StatusCode::kCancelled) {
      Log().debug("fallback: probe of OBS failed: {}", EscapeForLog(probe.ToString()));
      continue;
    }
    Log().warn(secondary_ != nullptr ? "fallback: OBS recovered" : "offline: OBS recovered");
    close_total_->Add();
    state_->Set(kStateObs);
    consecutive_failures_ = 0;
    open_.store(false, std::memory_order_release);
  }
}

// ---- proofs ----------------------------------------------------------------

void FallbackStore::QueueProof(const ObjectInfo& obs) {
  if (secondary_ == nullptr || options_.proof_rate == 0 || !IsProvableEtag(obs.etag)) return;
  if (obs.key.empty() || obs.key.back() == '/') return;  // markers hold no bytes to prove
  {
    std::lock_guard lock(proof_mu_);
    if (proof_queue_.size() >= options_.proof_queue) return;
    if (!queued_.insert(obs.key + '\0' + obs.etag).second) return;
    proof_queue_.push_back(ProofJob{obs.key, obs.etag, obs.size});
  }
  proof_cv_.notify_one();
}

void FallbackStore::ProverLoop() {
  std::unique_lock lock(proof_mu_);
  while (true) {
    proof_cv_.wait(lock, [this] { return proof_stop_ || !proof_queue_.empty(); });
    if (proof_stop_) return;
    ProofJob job = std::move(proof_queue_.front());
    proof_queue_.pop_front();
    proof_busy_ = true;
    lock.unlock();
    // Only while OBS is healthy: during an outage the share serves readers.
    if (!circuit_open()) {
      auto r = ProveWith(job.key, job.etag, job.size, &limiter_);
      if (!r.ok() && r.status().code() != StatusCode::kCancelled) {
        Log().debug("fallback: proof of '{}' failed: {}", EscapeForLog(job.key),
                    EscapeForLog(r.status().ToString()));
      }
    }
    lock.lock();
    queued_.erase(job.key + '\0' + job.etag);
    proof_busy_ = false;
    if (proof_queue_.empty()) proof_idle_cv_.notify_all();
  }
}

bool FallbackStore::WaitProofsIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(proof_mu_);
  return proof_idle_cv_.wait_for(lock, timeout,
                                 [this] { return proof_queue_.empty() && !proof_busy_; });
}

Result<std::string> FallbackStore::ProveWith(const std::string& key, const std::string& etag,
                                             uint64_t size, RateLimiter* limiter) {
  if (secondary_ == nullptr) return Status::InvalidArgument("no share configured (fallback=)");
  auto share = secondary_->Head(key);
  if (!share.ok()) {
    if (share.status().code() == StatusCode::kNotFound) return std::string("missing");
    return share.status();
  }
  ProofVerdict verdict = ProofVerdict::kDiffers;
  if (auto known = proofs_->Find(key, share->etag); known && known->obs_etag == etag) {
    if (known->verdict == ProofVerdict::kProven) RememberProven(key, etag, share->etag);
    return std::string(ProofVerdictName(known->verdict));
  }
  if (share->size == size) {
    DSFS_ASSIGN_OR_RETURN(
        verdict, ProveShareFile(*secondary_, key, share->etag, size, etag, limiter, stop_token_));
  }
  proofs_->Record(key, share->etag, ProofRecord{etag, verdict});
  if (verdict == ProofVerdict::kProven) {
    proven_total_->Add();
    RememberProven(key, etag, share->etag);
  }
  if (verdict == ProofVerdict::kDiffers) differs_total_->Add();
  Log().info("fallback: share copy of '{}' {} OBS version {}", EscapeForLog(key),
             verdict == ProofVerdict::kProven    ? "is proven to be"
             : verdict == ProofVerdict::kDiffers ? "differs from"
                                                 : "cannot be checked against",
             EscapeForLog(etag));
  return std::string(ProofVerdictName(verdict));
}

Result<std::string> FallbackStore::Prove(const ObjectInfo& obs) {
  return ProveWith(obs.key, obs.etag, obs.size, nullptr);
}

Result<std::vector<ProofLine>> FallbackStore::ProvePrefix(const std::string& prefix) {
  if (secondary_ == nullptr) return Status::InvalidArgument("no share configured (fallback=)");
  if (circuit_open()) return Offline("prove '" + prefix + "'");
  std::vector<ProofLine> lines;
  ListRequest req;
  req.prefix = prefix;
  // Bounded like any listing loop: a server repeating a token cannot hold us.
  std::string previous;
  for (int pages = 0; pages < 100000; ++pages) {
    DSFS_ASSIGN_OR_RETURN(ListPage page, primary_->List(req));
    for (const ObjectInfo& o : page.objects) {
      if (o.key.empty() || o.key.back() == '/') continue;
      auto r = ProveWith(o.key, o.etag, o.size, nullptr);
      lines.push_back(ProofLine{o.key, r.ok() ? *r : std::string("error")});
      if (!r.ok()) {
        Log().warn("fallback: proof of '{}' failed: {}", EscapeForLog(o.key),
                   EscapeForLog(r.status().ToString()));
      }
    }
    if (page.next_continuation.empty()) return lines;
    if (page.next_continuation == previous) {
      return Status::Transient("LIST '" + prefix + "': the server repeated a continuation token");
    }
    previous = req.continuation = page.next_continuation;
  }
  return Status::Transient("LIST '" + prefix + "': too many pages");
}

// ---- operations ------------------------------------------------------------

void FallbackStore::LogUnproven(const std::string& key, const std::string& etag) {
  unproven_reads_total_->Add();
  {
    std::lock_guard lock(logged_mu_);
    if (logged_unproven_.size() > 10000) logged_unproven_.clear();
    if (!logged_unproven_.insert(key + '\0' + etag).second) return;
  }
  Log().error("fallback: '{}' on the share is not proven to be OBS version {}: not served",
              EscapeForLog(key), EscapeForLog(etag));
}

Result<ObjectInfo> FallbackStore::HeadSecondary(const std::string& key) {
  secondary_requests_total_->Add();
  DSFS_ASSIGN_OR_RETURN(ObjectInfo info, secondary_->Head(key));
  if (key.empty() || key.back() == '/') return info;
  // A proven copy is the OBS version it was proven to be.
  if (auto proof = proofs_->Find(key, info.etag);
      proof && proof->verdict == ProofVerdict::kProven) {
    info.etag = proof->obs_etag;
  }
  return info;
}

Result<ObjectInfo> FallbackStore::Head(const std::string& key) {
  if (!circuit_open()) {
    auto r = primary_->Head(key);
    if (r.ok()) {
      OnPrimaryAnswer();
      QueueProof(*r);
      QueueShareStat(*r);
      return r;
    }
    if (!IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
      return r;
    }
    // OBS failed (after its own retries): this request is served by the
    // share whether or not the circuit opens; the threshold only decides
    // whether later requests skip OBS.
    const bool open = OnPrimaryFailure(r.status());
    return FromSecondary<ObjectInfo>([&] { return HeadSecondary(key); }, r.status(), open);
  }
  if (secondary_ == nullptr) return Offline("HEAD '" + key + "'");
  return HeadSecondary(key);
}

Result<GetResult> FallbackStore::GetSecondary(const GetRequest& request, char* buf,
                                              size_t buf_len) {
  secondary_requests_total_->Add();
  if (request.if_match.empty() || IsDirStoreEtag(request.if_match)) {
    auto got = secondary_->Get(request, buf, buf_len);
    if (got.ok()) share_bytes_total_->Add(got->bytes);
    return got;
  }
  // Pinned to an OBS version: only a proven copy of exactly that version.
  DSFS_ASSIGN_OR_RETURN(ObjectInfo share, secondary_->Head(request.key));
  auto proof = proofs_->Find(request.key, share.etag);
  if (!proof || proof->verdict != ProofVerdict::kProven || proof->obs_etag != request.if_match) {
    LogUnproven(request.key, request.if_match);
    return Status::IoError("'" + request.key + "' on " + secondary_->Describe() +
                           " is not proven to be OBS version " + request.if_match);
  }
  // Read the share version that was proven: if the file changes in
  // between, the share fails with PreconditionFailed.
  GetRequest sub = request;
  sub.if_match = share.etag;
  sub.on_parts_done = nullptr;
  DSFS_ASSIGN_OR_RETURN(GetResult got, secondary_->Get(sub, buf, buf_len));
  share_bytes_total_->Add(got.bytes);
  got.etag = request.if_match;
  return got;
}

// ---- reads -------------------------------------------------------------------

Result<GetResult> FallbackStore::Get(const GetRequest& request, char* buf, size_t buf_len) {
  // Pinned to a share version: finish on the share.
  if (IsDirStoreEtag(request.if_match)) {
    if (secondary_ == nullptr) return Status::PreconditionFailed("no share for a share version");
    return GetSecondary(request, buf, buf_len);
  }
  if (!circuit_open()) {
    const auto share_etag = request.range && buf_len >= request.range->length
                                ? ParallelShareEtag(request)
                                : std::nullopt;
    const GetPart whole{buf, share_etag ? static_cast<size_t>(request.range->length) : 0};
    auto r = share_etag ? GetEither(request, *share_etag, std::span<const GetPart>(&whole, 1))
                        : primary_->Get(request, buf, buf_len);
    if (r.ok() || !IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
      return r;
    }
    const bool open = OnPrimaryFailure(r.status());
    return FromSecondary<GetResult>([&] { return GetSecondary(request, buf, buf_len); }, r.status(),
                                    open);
  }
  if (secondary_ == nullptr) return Offline("GET '" + request.key + "'");
  return GetSecondary(request, buf, buf_len);
}

Result<GetResult> FallbackStore::GetParts(const GetRequest& request,
                                          std::span<const GetPart> parts) {
  auto secondary = [&] {
    return GetPartsThroughBuffer(
        parts, [&](char* buf, size_t len) { return GetSecondary(request, buf, len); });
  };
  if (IsDirStoreEtag(request.if_match) || circuit_open()) {
    return ObjectStore::GetParts(request, parts);  // Get's share path, through one buffer
  }
  const auto share_etag = ParallelShareEtag(request);
  // Parts OBS handed out early (GetRequest::on_parts_done) are the
  // caller's: the share never writes them again.
  size_t handed_out = 0;
  GetRequest obs = request;
  if (request.on_parts_done) {
    obs.on_parts_done = [&](size_t n) {
      handed_out = n;
      request.on_parts_done(n);
    };
  }
  auto r = share_etag ? GetEither(request, *share_etag, parts) : primary_->GetParts(obs, parts);
  if (r.ok() || !IsPrimaryDownError(r.status())) {
    OnPrimaryAnswer();
    return r;
  }
  const bool open = OnPrimaryFailure(r.status());
  if (handed_out > 0) return r.status();  // the caller fetches the rest again
  return FromSecondary<GetResult>(secondary, r.status(), open);
}

Result<ListPage> FallbackStore::ListSecondary(ListRequest request) {
  secondary_requests_total_->Add();
  DSFS_ASSIGN_OR_RETURN(ListPage page, secondary_->List(request));
  if (!page.next_continuation.empty()) {
    page.next_continuation = WrapToken('s', page, page.next_continuation);
  }
  return page;
}

Result<ListPage> FallbackStore::List(const ListRequest& request) {
  ListToken token;
  if (!request.continuation.empty()) {
    DSFS_ASSIGN_OR_RETURN(token, ParseToken(request.continuation));
  }
  ListRequest sub = request;
  sub.continuation = token.inner;
  // A listing begun on the share finishes on the share.
  if (token.origin == 's') {
    if (secondary_ == nullptr) return Status::InvalidArgument("share token without a share");
    return ListSecondary(std::move(sub));
  }
  if (!circuit_open()) {
    auto r = primary_->List(sub);
    if (r.ok()) {
      OnPrimaryAnswer();
      if (!r->next_continuation.empty()) {
        r->next_continuation = WrapToken('p', *r, r->next_continuation);
      }
      return r;
    }
    if (!IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
      return r;
    }
    const bool open = OnPrimaryFailure(r.status());
    sub.continuation = token.origin == 'p' ? token.last : "";
    return FromSecondary<ListPage>([&] { return ListSecondary(sub); }, r.status(), open);
  }
  if (secondary_ == nullptr) return Offline("LIST '" + request.prefix + "'");
  // Continue a primary listing on the share after its last item
  // (the secondary's tokens mean "start after").
  sub.continuation = token.origin == 'p' ? token.last : "";
  return ListSecondary(std::move(sub));
}

// ---- writes (primary only) ---------------------------------------------------

Result<PutResult> FallbackStore::Put(const PutRequest& request) {
  return WriteToPrimary<PutResult>("PUT '" + request.key + "'",
                                   [&] { return primary_->Put(request); });
}

Result<PutResult> FallbackStore::Copy(const CopyRequest& request) {
  return WriteToPrimary<PutResult>("COPY '" + request.source_key + "' to '" + request.key + "'",
                                   [&] { return primary_->Copy(request); });
}

Result<std::string> FallbackStore::CreateMultipartUpload(const std::string& key,
                                                         const ObjectAttrs& attrs) {
  return WriteToPrimary<std::string>("CREATE MULTIPART '" + key + "'",
                                     [&] { return primary_->CreateMultipartUpload(key, attrs); });
}

Result<std::string> FallbackStore::UploadPart(const UploadPartRequest& request) {
  return WriteToPrimary<std::string>(
      "UPLOAD PART " + std::to_string(request.part_number) + " of '" + request.key + "'",
      [&] { return primary_->UploadPart(request); });
}

Result<PutResult> FallbackStore::CompleteMultipartUpload(const std::string& key,
                                                         const std::string& upload_id,
                                                         const std::vector<CompletedPart>& parts) {
  return WriteToPrimary<PutResult>("COMPLETE MULTIPART '" + key + "'", [&] {
    return primary_->CompleteMultipartUpload(key, upload_id, parts);
  });
}

Status FallbackStore::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  // Result<bool> carries the Status through the same accounting.
  auto r = WriteToPrimary<bool>("ABORT MULTIPART '" + key + "'", [&]() -> Result<bool> {
    Status s = primary_->AbortMultipartUpload(key, upload_id);
    if (!s.ok()) return s;
    return true;
  });
  return r.status();
}

Status FallbackStore::Delete(const std::string& key) {
  auto r = WriteToPrimary<bool>("DELETE '" + key + "'", [&]() -> Result<bool> {
    Status s = primary_->Delete(key);
    if (!s.ok()) return s;
    return true;
  });
  return r.status();
}

}  // namespace dsfs
