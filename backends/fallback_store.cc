#include "backends/fallback_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "backends/dir_store.h"

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

FallbackStore::FallbackStore(std::unique_ptr<ObjectStore> primary,
                             std::unique_ptr<ObjectStore> secondary, FallbackOptions options,
                             Metrics* metrics)
    : owned_primary_(std::move(primary)),
      owned_secondary_(std::move(secondary)),
      primary_(owned_primary_.get()),
      secondary_(owned_secondary_.get()),
      options_(std::move(options)) {
  Init(metrics);
}

FallbackStore::FallbackStore(ObjectStore& primary, ObjectStore& secondary, FallbackOptions options,
                             Metrics* metrics)
    : primary_(&primary), secondary_(&secondary), options_(std::move(options)) {
  Init(metrics);
}

void FallbackStore::Init(Metrics* metrics) {
  if (metrics == nullptr) {
    own_metrics_ = std::make_unique<Metrics>();
    metrics = own_metrics_.get();
  }
  open_total_ =
      &metrics->GetCounter("dsfs_fallback_open_total", "Times the primary store was declared down");
  close_total_ = &metrics->GetCounter("dsfs_fallback_close_total",
                                      "Times the primary store was declared recovered");
  secondary_requests_total_ = &metrics->GetCounter("dsfs_fallback_secondary_requests_total",
                                                   "Requests served by the fallback store");
  size_mismatch_total_ =
      &metrics->GetCounter("dsfs_fallback_size_mismatch_total",
                           "Reads refused because the fallback copy's size differs");
  probe_thread_ = std::thread([this] { ProbeLoop(); });
}

FallbackStore::~FallbackStore() {
  {
    std::lock_guard lock(circuit_mu_);
    stop_ = true;
  }
  circuit_cv_.notify_all();
  if (probe_thread_.joinable()) probe_thread_.join();
}

spdlog::logger& FallbackStore::Log() const {
  return options_.logger ? *options_.logger : *spdlog::default_logger_raw();
}

std::string FallbackStore::Describe() const {
  return "fallback(" + primary_->Describe() + ", " + secondary_->Describe() + ")";
}

bool FallbackStore::IsPrimaryDownError(const Status& status) {
  return status.code() == StatusCode::kUnavailable || status.retryable();
}

// ---- circuit ---------------------------------------------------------------

void FallbackStore::OpenLocked(const std::string& reason) {
  if (open_.load(std::memory_order_relaxed)) return;
  // Logged and counted under the lock, before the flag flips, so the
  // open/recovered lines never swap order and whoever sees the new state
  // also sees its line and count.
  Log().warn("fallback: OBS unavailable ({}), serving from {}", reason, secondary_->Describe());
  open_total_->Add();
  consecutive_failures_ = 0;
  wake_ = false;
  open_.store(true, std::memory_order_release);
  circuit_cv_.notify_all();
}

void FallbackStore::StartOpen(const std::string& reason) {
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
    if (IsPrimaryDownError(probe)) {
      Log().debug("fallback: probe of OBS failed: {}", probe.ToString());
      continue;
    }
    Log().warn("fallback: OBS recovered");
    close_total_->Add();
    consecutive_failures_ = 0;
    open_.store(false, std::memory_order_release);
  }
}

// ---- remembered sizes ------------------------------------------------------

void FallbackStore::Remember(const std::string& key, uint64_t size, const std::string& etag) {
  if (options_.max_remembered_keys == 0) return;
  std::lock_guard lock(memo_mu_);
  auto it = memo_.find(key);
  if (it != memo_.end()) {
    Remembered& r = it->second;
    // A whole-object Get tells the size only: keep the ETag if the size
    // still agrees, else it is unknown.
    std::string new_etag = etag.empty() && r.size == size ? r.etag : etag;
    if (r.size != size || r.etag != new_etag) r.mismatch_logged = false;
    r.size = size;
    r.etag = std::move(new_etag);
    lru_.splice(lru_.begin(), lru_, r.lru);
    return;
  }
  lru_.push_front(key);
  Remembered r;
  r.size = size;
  r.etag = etag;
  r.lru = lru_.begin();
  memo_.emplace(key, std::move(r));
  while (memo_.size() > options_.max_remembered_keys) {
    memo_.erase(lru_.back());
    lru_.pop_back();
  }
}

void FallbackStore::Forget(const std::string& key) {
  std::lock_guard lock(memo_mu_);
  auto it = memo_.find(key);
  if (it == memo_.end()) return;
  lru_.erase(it->second.lru);
  memo_.erase(it);
}

Status FallbackStore::CheckSecondary(const std::string& key, uint64_t share_size,
                                     const std::string& obs_etag) {
  uint64_t obs_size = 0;
  bool log = false;
  {
    std::lock_guard lock(memo_mu_);
    auto it = memo_.find(key);
    if (it == memo_.end()) return Status::Ok();  // the primary never answered for it
    Remembered& r = it->second;
    if (r.size == share_size) {
      if (!obs_etag.empty() && !r.etag.empty() && r.etag != obs_etag) {
        return Status::PreconditionFailed("'" + key + "' changed on OBS (now " + r.etag +
                                          "), the pinned version " + obs_etag +
                                          " cannot be served from " + secondary_->Describe());
      }
      return Status::Ok();
    }
    obs_size = r.size;
    log = !(r.mismatch_logged && r.logged_share_size == share_size);
    r.mismatch_logged = true;
    r.logged_share_size = share_size;
  }
  size_mismatch_total_->Add();
  if (log)
    Log().error("fallback: size mismatch for {}: OBS {}, share {}", key, obs_size, share_size);
  return Status::IoError("'" + key + "' has " + std::to_string(share_size) + " bytes in " +
                         secondary_->Describe() + " but " + std::to_string(obs_size) +
                         " on OBS: not served");
}

// ---- operations ------------------------------------------------------------

Result<ObjectInfo> FallbackStore::HeadSecondary(const std::string& key) {
  secondary_requests_total_->Add();
  DSFS_ASSIGN_OR_RETURN(ObjectInfo info, secondary_->Head(key));
  DSFS_RETURN_IF_ERROR(CheckSecondary(key, info.size, ""));
  return info;
}

Result<ObjectInfo> FallbackStore::Head(const std::string& key) {
  if (!circuit_open()) {
    auto r = primary_->Head(key);
    if (r.ok()) {
      OnPrimaryAnswer();
      Remember(key, r->size, r->etag);
      return r;
    }
    if (!IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
      if (r.status().code() == StatusCode::kNotFound) Forget(key);
      return r;
    }
    // OBS failed (after its own retries): this request is served by the
    // share whether or not the circuit opens; the threshold only decides
    // whether later requests skip OBS.
    const bool open = OnPrimaryFailure(r.status());
    return ShareOr(HeadSecondary(key), r.status(), open);
  }
  return HeadSecondary(key);
}

Result<GetResult> FallbackStore::GetSecondary(const GetRequest& request, char* buf, size_t buf_len) {
  secondary_requests_total_->Add();
  DSFS_ASSIGN_OR_RETURN(ObjectInfo info, secondary_->Head(request.key));
  const bool pinned_to_share = IsDirStoreEtag(request.if_match);
  DSFS_RETURN_IF_ERROR(
      CheckSecondary(request.key, info.size, pinned_to_share ? "" : request.if_match));
  // Read the share version the guard just checked: if the file changes in
  // between, the secondary fails with PreconditionFailed.
  GetRequest sub = request;
  sub.if_match = pinned_to_share ? request.if_match : info.etag;
  return secondary_->Get(sub, buf, buf_len);
}

Result<GetResult> FallbackStore::Get(const GetRequest& request, char* buf, size_t buf_len) {
  // Pinned to a share version: finish on the share.
  if (IsDirStoreEtag(request.if_match)) return GetSecondary(request, buf, buf_len);
  if (!circuit_open()) {
    auto r = primary_->Get(request, buf, buf_len);
    if (r.ok()) {
      OnPrimaryAnswer();
      if (!request.range) Remember(request.key, r->bytes, r->etag);
      return r;
    }
    if (!IsPrimaryDownError(r.status())) {
      OnPrimaryAnswer();
      if (r.status().code() == StatusCode::kNotFound) Forget(request.key);
      return r;
    }
    const bool open = OnPrimaryFailure(r.status());
    return ShareOr(GetSecondary(request, buf, buf_len), r.status(), open);
  }
  return GetSecondary(request, buf, buf_len);
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
  if (token.origin == 's') return ListSecondary(std::move(sub));
  if (!circuit_open()) {
    auto r = primary_->List(sub);
    if (r.ok()) {
      OnPrimaryAnswer();
      for (const ObjectInfo& o : r->objects) Remember(o.key, o.size, o.etag);
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
    return ShareOr(ListSecondary(std::move(sub)), r.status(), open);
  }
  // Continue a primary listing on the share after its last item
  // (the secondary's tokens mean "start after").
  sub.continuation = token.origin == 'p' ? token.last : "";
  return ListSecondary(std::move(sub));
}

}  // namespace dsfs
