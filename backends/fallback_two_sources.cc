// FallbackStore's reads from two sources at once: which share copy is
// proven identical to the OBS object, the share's identity (stat) checks,
// and the split of one read between OBS and the share (SourceSplit), with
// hedging of a read that is late on one source. The circuit, proofs and
// the plain reads are in fallback_store.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "backends/dir_store.h"
#include "backends/fallback_store.h"
#include "common/logging.h"

namespace dsfs {
std::optional<std::string> FallbackStore::ParallelShareEtag(const GetRequest& request) {
  if (!options_.parallel || secondary_ == nullptr || !request.range ||
      request.if_match.empty() || IsDirStoreEtag(request.if_match)) {
    return std::nullopt;
  }
  std::string id = request.key + '\0' + request.if_match;
  {
    std::lock_guard lock(parallel_mu_);
    if (auto it = share_identity_.find(id); it != share_identity_.end()) {
      // A proven identity holds until a share read fails (the share's
      // If-Match refuses a rewritten file); "not proven" is asked again.
      if (!it->second.share_etag.empty()) return it->second.share_etag;
      if (std::chrono::steady_clock::now() < it->second.until) return std::nullopt;
    }
  }
  // Not known (or not proven a while ago): this read goes to OBS while the
  // share file is stat'ed in the background, never on a reader's thread
  // (a hung share must not hold reads OBS can serve).
  QueueShareStat(ObjectInfo{.key = request.key, .etag = request.if_match});
  return std::nullopt;
}

void FallbackStore::RememberProven(const std::string& key, const std::string& obs_etag,
                                   const std::string& share_etag) {
  if (!options_.parallel) return;
  std::lock_guard lock(parallel_mu_);
  SetIdentityLocked(key + '\0' + obs_etag, ShareIdentity{share_etag, {}});
}

void FallbackStore::SetIdentityLocked(const std::string& id, ShareIdentity identity) {
  if (share_identity_.size() >= 10000) share_identity_.clear();  // bounded; refilled by stats
  share_identity_[id] = std::move(identity);
}

void FallbackStore::QueueShareStat(const ObjectInfo& obs) {
  if (!stat_thread_.joinable() || !IsProvableEtag(obs.etag)) return;
  if (obs.key.empty() || obs.key.back() == '/') return;
  std::string id = obs.key + '\0' + obs.etag;
  {
    std::lock_guard lock(parallel_mu_);
    if (auto it = share_identity_.find(id); it != share_identity_.end() &&
        (!it->second.share_etag.empty() || std::chrono::steady_clock::now() < it->second.until)) {
      return;  // known
    }
    if (stat_stop_ || stat_queue_.size() >= options_.proof_queue ||
        !stat_queued_.insert(id).second) {
      return;
    }
    stat_queue_.push_back(std::move(id));
  }
  stat_cv_.notify_one();
}

void FallbackStore::StatLoop() {
  std::unique_lock lock(parallel_mu_);
  while (true) {
    stat_cv_.wait(lock, [this] { return stat_stop_ || !stat_queue_.empty(); });
    if (stat_stop_) return;
    const std::string id = std::move(stat_queue_.front());
    stat_queue_.pop_front();
    stat_busy_ = true;
    lock.unlock();
    const size_t nul = id.find('\0');
    const std::string key = id.substr(0, nul), obs_etag = id.substr(nul + 1);
    const auto now = std::chrono::steady_clock::now();
    ShareIdentity identity{"", now + options_.parallel_stat_ttl};
    auto share = secondary_->Head(key);
    if (share.ok()) {
      if (auto proof = proofs_->Find(key, share->etag);
          proof && proof->verdict == ProofVerdict::kProven && proof->obs_etag == obs_etag) {
        identity.share_etag = share->etag;
      }
    } else if (share.status().code() != StatusCode::kNotFound) {
      identity.until = now + options_.parallel_error_backoff;
    }
    lock.lock();
    SetIdentityLocked(id, identity);
    stat_queued_.erase(id);
    stat_busy_ = false;
    if (stat_queue_.empty()) stat_idle_cv_.notify_all();
  }
}

bool FallbackStore::WaitShareStatsIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(parallel_mu_);
  return stat_idle_cv_.wait_for(lock, timeout,
                                [this] { return stat_queue_.empty() && !stat_busy_; });
}

void FallbackStore::ShareFailed(const GetRequest& request, const Status& status) {
  parallel_share_failures_->Add();
  Log().debug("fallback: parallel read of '{}' from the share failed ({}): read from OBS",
              EscapeForLog(request.key), EscapeForLog(status.ToString()));
  std::lock_guard lock(parallel_mu_);
  SetIdentityLocked(request.key + '\0' + request.if_match,
                    ShareIdentity{"", std::chrono::steady_clock::now() +
                                          options_.parallel_error_backoff});
}


Result<GetResult> FallbackStore::ReadFrom(int source, const GetRequest& request,
                                          const std::string& share_etag,
                                          std::span<const GetPart> parts,
                                          const CancelTokenPtr& cancel) {
  GetRequest sub = request;
  sub.cancel = cancel;
  sub.on_parts_done = nullptr;  // two sources may write the parts
  if (source == kObsSource) {
    Result<GetResult> r = parts.size() == 1 ? primary_->Get(sub, parts[0].data, parts[0].length)
                                            : primary_->GetParts(sub, parts);
    // The same OBS identity as the read asked for, whoever answers.
    if (r.ok() && !r->etag.empty() && r->etag != request.if_match) {
      return Status::PreconditionFailed("'" + request.key + "' is no longer OBS version " +
                                        request.if_match);
    }
    return r;
  }
  sub.if_match = share_etag;
  Result<GetResult> r =
      parts.size() == 1
          ? secondary_->Get(sub, parts[0].data, parts[0].length)
          : secondary_->GetParts(sub, parts);
  if (!r.ok()) return r;
  if (r->etag != share_etag) {
    return Status::PreconditionFailed("'" + request.key + "' on the share is not version " +
                                      share_etag);
  }
  r->etag = request.if_match;  // the proven share version is this OBS version
  r->source = DataSource::kShare;
  return r;
}

Result<GetResult> FallbackStore::TimedRead(const SourceSplit::Ticket& ticket,
                                           const GetRequest& request,
                                           const std::string& share_etag,
                                           std::span<const GetPart> parts,
                                           const CancelTokenPtr& cancel, bool hedge) {
  const int source = ticket.source;
  Result<GetResult> r = ReadFrom(source, request, share_etag, parts, cancel);
  if (Log().should_log(spdlog::level::debug)) {
    Log().debug("split: {} bytes at {} from {} took {:.0f} ms ({} in flight at its start, {} now)",
                ticket.bytes, request.range ? request.range->offset : 0,
                source == kShareSource ? "share" : "obs",
                std::chrono::duration<double, std::milli>(SourceSplit::Clock::now() - ticket.start)
                    .count(),
                ticket.in_flight_at_start, split_.in_flight(source));
  }
  if (r.ok() || !IsCancelled(cancel) || (!hedge && !IsCancelled(request.cancel))) {
    // A first attempt the hedge overtook answered nothing in time: a failure.
    split_.Finish(ticket, r.ok(), SourceSplit::Clock::now());
  } else {
    split_.Abandon(ticket);  // a hedge not needed, or the reader gave up: no sample
  }
  if (r.ok()) {
    parallel_requests_[source]->Add();
    parallel_bytes_[source]->Add(r->bytes);
    if (source == kShareSource) share_bytes_total_->Add(r->bytes);
  }
  return r;
}

Result<GetResult> FallbackStore::HedgedRead(const SourceSplit::Ticket& ticket,
                                            const GetRequest& request,
                                            const std::string& share_etag,
                                            std::span<const GetPart> parts) {
  const uint64_t len = request.range->length;
  const int source = ticket.source;
  const int other = 1 - source;
  std::optional<SourceSplit::Clock::duration> late = split_.LateAfter(source, len);
  if (late) late = std::max<SourceSplit::Clock::duration>(*late, options_.hedge_min_delay);
  // Only when the other source is expected to answer within that time.
  auto may_hedge = [&] {
    if (!split_.HasRoom(other)) return false;
    auto expected = split_.ExpectedTime(other, len);
    return !expected || *expected <= *late;
  };
  auto first = [&](const CancelTokenPtr& cancel) {
    return TimedRead(ticket, request, share_etag, parts, cancel, /*hedge=*/false);
  };
  // Runs on a hedge worker: copies of what it needs, never the caller's.
  auto second = [this, other, request, share_etag](const CancelTokenPtr& cancel, char* buf,
                                                   size_t n) {
    hedges_started_->Add();
    const GetPart part{buf, n};
    return TimedRead(split_.Start(other, n, SourceSplit::Clock::now()), request, share_etag,
                     std::span<const GetPart>(&part, 1), cancel, /*hedge=*/true);
  };
  Hedger::Outcome outcome;
  Result<GetResult> r = hedger_.Run(
      request.cancel, late, may_hedge, first, second, len,
      [&](const char* bytes, size_t n) { CopyIntoParts(parts, 0, bytes, n); }, &outcome);
  if (outcome == Hedger::Outcome::kHedgeWon) hedges_won_->Add();
  return r;
}

Result<GetResult> FallbackStore::GetEither(const GetRequest& request,
                                           const std::string& share_etag,
                                           std::span<const GetPart> parts) {
  const uint64_t len = request.range->length;
  const SourceSplit::Ticket ticket = split_.PickOrWait(len, request.cancel);
  if (Log().should_log(spdlog::level::debug)) {  // the counts take the split's lock
    auto ms = [&](int source) {
      auto t = split_.ExpectedTime(source, len);
      return t ? std::chrono::duration<double, std::milli>(*t).count() : -1.0;
    };
    Log().debug(
        "split: {} bytes at {} to {} (in flight then: obs {}, share {} +{} waiting; expected "
        "ms: obs {:.0f}, share {:.0f})",
        len, request.range->offset, ticket.source == kShareSource ? "share" : "obs",
        split_.in_flight(kObsSource), split_.in_flight(kShareSource),
        split_.waiting(kShareSource), ms(kObsSource), ms(kShareSource));
  }
  if (ticket.source == kShareSource) {
    Result<GetResult> r = HedgedRead(ticket, request, share_etag, parts);
    if (r.ok()) return r;
    if (r.status().code() == StatusCode::kCancelled && IsCancelled(request.cancel)) return r;
    ShareFailed(request, r.status());
    // Retried on OBS in the same call (never an error because the share was
    // tried); OBS's answer is the answer.
    return TimedRead(split_.Start(kObsSource, len, SourceSplit::Clock::now()), request,
                     share_etag, parts, request.cancel, /*hedge=*/false);
  }
  return HedgedRead(ticket, request, share_etag, parts);
}

}  // namespace dsfs
