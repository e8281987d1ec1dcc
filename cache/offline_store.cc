#include "cache/offline_store.h"

#include <spdlog/spdlog.h>

#include "common/logging.h"

namespace dsfs {
namespace {

constexpr uint64_t kRecordFormat = 1;
constexpr uint64_t kFound = 1;
constexpr uint64_t kTombstone = 0;

std::string EncodeInfo(const ObjectInfo& info) {
  MetaWriter w;
  w.U64(kRecordFormat);
  w.U64(kFound);
  w.U64(info.size);
  w.Str(info.etag);
  w.I64(info.mtime_sec);
  w.Str(info.content_type);
  w.U64(info.meta.size());
  for (const auto& [k, v] : info.meta) {
    w.Str(k);
    w.Str(v);
  }
  return w.data();
}

std::string EncodeTombstone() {
  MetaWriter w;
  w.U64(kRecordFormat);
  w.U64(kTombstone);
  return w.data();
}

// nullopt for a malformed record; a tombstone is NotFound.
std::optional<Result<ObjectInfo>> DecodeInfo(const std::string& key, const std::string& bytes) {
  MetaReader r(bytes);
  uint64_t format = 0;
  uint64_t found = 0;
  if (!r.U64(&format) || format != kRecordFormat || !r.U64(&found)) return std::nullopt;
  if (found == kTombstone) {
    if (!r.done()) return std::nullopt;
    return Result<ObjectInfo>(Status::NotFound("no such key '" + key + "' (offline, as last seen)"));
  }
  ObjectInfo info;
  info.key = key;
  uint64_t n = 0;
  if (!r.U64(&info.size) || !r.Str(&info.etag) || !r.I64(&info.mtime_sec) ||
      !r.Str(&info.content_type) || !r.U64(&n) || n > 10000) {
    return std::nullopt;
  }
  for (uint64_t i = 0; i < n; ++i) {
    std::string k;
    std::string v;
    if (!r.Str(&k) || !r.Str(&v)) return std::nullopt;
    info.meta.emplace(std::move(k), std::move(v));
  }
  if (!r.done()) return std::nullopt;
  return Result<ObjectInfo>(std::move(info));
}

std::string EncodePage(const ListPage& page) {
  MetaWriter w;
  w.U64(kRecordFormat);
  w.U64(page.objects.size());
  for (const ObjectInfo& o : page.objects) {
    w.Str(o.key);
    w.U64(o.size);
    w.Str(o.etag);
    w.I64(o.mtime_sec);
  }
  w.U64(page.common_prefixes.size());
  for (const std::string& p : page.common_prefixes) w.Str(p);
  w.Str(page.next_continuation);
  return w.data();
}

std::optional<ListPage> DecodePage(const std::string& bytes) {
  MetaReader r(bytes);
  uint64_t format = 0;
  uint64_t n = 0;
  if (!r.U64(&format) || format != kRecordFormat || !r.U64(&n) || n > 100000) return std::nullopt;
  ListPage page;
  for (uint64_t i = 0; i < n; ++i) {
    ObjectInfo o;
    if (!r.Str(&o.key) || !r.U64(&o.size) || !r.Str(&o.etag) || !r.I64(&o.mtime_sec)) {
      return std::nullopt;
    }
    page.objects.push_back(std::move(o));
  }
  if (!r.U64(&n) || n > 100000) return std::nullopt;
  for (uint64_t i = 0; i < n; ++i) {
    std::string p;
    if (!r.Str(&p)) return std::nullopt;
    page.common_prefixes.push_back(std::move(p));
  }
  if (!r.Str(&page.next_continuation) || !r.done()) return std::nullopt;
  return page;
}

}  // namespace

OfflineStore::OfflineStore(ObjectStore& inner, MetaDb& db, std::function<bool()> obs_down,
                           Metrics* metrics)
    : inner_(inner), db_(db), obs_down_(std::move(obs_down)) {
  if (metrics) {
    offline_answers_ = &metrics->GetCounter(
        "dsfs_offline_answers_total", "Lookups and listings answered from persisted metadata");
    record_errors_ = &metrics->GetCounter("dsfs_offline_record_errors_total",
                                          "Metadata records that could not be written or read");
  }
}

std::string OfflineStore::HeadRecordKey(const std::string& key) {
  return std::string("h") + '\0' + key;
}

std::string OfflineStore::ListRecordKey(const ListRequest& request) {
  std::string k = std::string("l") + '\0' + request.prefix;
  k += '\0';
  k += request.delimiter;
  k += '\0';
  k += request.continuation;
  k += '\0';
  k += std::to_string(request.max_keys);
  return k;
}

bool OfflineStore::CannotAnswer(const Status& status) const {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kThrottled:
    case StatusCode::kTransient:
    case StatusCode::kIoError: return true;
    case StatusCode::kNotFound: return obs_down_();  // the share's NotFound
    default: return false;
  }
}

Result<ObjectInfo> OfflineStore::Head(const std::string& key) {
  auto r = inner_.Head(key);
  if (r.ok() && r->source != DataSource::kObjectStore) return r;  // the share's file
  if (r.ok() || (r.status().code() == StatusCode::kNotFound && !obs_down_())) {
    Status s = db_.Put(HeadRecordKey(key), r.ok() ? EncodeInfo(*r) : EncodeTombstone());
    if (!s.ok()) Bump(record_errors_);
    return r;
  }
  if (!CannotAnswer(r.status())) return r;
  auto rec = db_.Get(HeadRecordKey(key));
  if (!rec.ok() || !rec->has_value()) return r;
  auto decoded = DecodeInfo(key, **rec);
  if (!decoded) {
    Bump(record_errors_);
    return r;
  }
  Bump(offline_answers_);
  spdlog::debug("offline: HEAD '{}' answered from what OBS said last", EscapeForLog(key));
  return std::move(*decoded);
}

Result<ListPage> OfflineStore::List(const ListRequest& request) {
  const std::string rec_key = ListRecordKey(request);
  auto recorded = [&]() -> std::optional<ListPage> {
    auto rec = db_.Get(rec_key);
    if (!rec.ok() || !rec->has_value()) return std::nullopt;
    auto page = DecodePage(**rec);
    if (!page) Bump(record_errors_);
    return page;
  };
  // A listing the node recorded continues from the record while OBS is
  // down (its tokens are OBS's; the share would start elsewhere).
  if (!request.continuation.empty() && obs_down_()) {
    if (auto page = recorded()) {
      Bump(offline_answers_);
      return std::move(*page);
    }
  }
  auto r = inner_.List(request);
  if (r.ok() && r->source == DataSource::kObjectStore) {
    if (!db_.Put(rec_key, EncodePage(*r)).ok()) Bump(record_errors_);
    return r;
  }
  if (r.ok()) {
    // The share answered: it wins unless it has nothing where OBS had something.
    if (!r->objects.empty() || !r->common_prefixes.empty()) return r;
  } else if (!CannotAnswer(r.status())) {
    return r;
  }
  if (auto page = recorded()) {
    Bump(offline_answers_);
    return std::move(*page);
  }
  return r;
}

// ---- writes ----------------------------------------------------------------

void OfflineStore::AfterWrite(const std::string& key, const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:  // refused, or never connected
    case StatusCode::kNotFound:
    case StatusCode::kAccessDenied:
    case StatusCode::kPreconditionFailed:
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotSupported:
    case StatusCode::kReadOnly: return;  // OBS refused it: nothing changed
    default: break;
  }
  bool failed = !db_.Delete(HeadRecordKey(key)).ok();
  // Every listing that may show the key: its directory prefixes (the
  // root's "" included), each under every delimiter, token and page size.
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i != 0 && key[i - 1] != '/') continue;
    failed |= !db_.DeletePrefix(std::string("l") + '\0' + key.substr(0, i) + '\0').ok();
  }
  if (failed) {
    Bump(record_errors_);
    spdlog::warn("offline: could not forget the records of '{}' after a write",
                 EscapeForLog(key));
  }
}

Result<PutResult> OfflineStore::Put(const PutRequest& request) {
  auto r = inner_.Put(request);
  AfterWrite(request.key, r.status());
  return r;
}

Result<PutResult> OfflineStore::Copy(const CopyRequest& request) {
  auto r = inner_.Copy(request);
  AfterWrite(request.key, r.status());
  return r;
}

Result<PutResult> OfflineStore::CompleteMultipartUpload(const std::string& key,
                                                        const std::string& upload_id,
                                                        const std::vector<CompletedPart>& parts) {
  auto r = inner_.CompleteMultipartUpload(key, upload_id, parts);
  AfterWrite(key, r.status());
  return r;
}

Status OfflineStore::Delete(const std::string& key) {
  Status s = inner_.Delete(key);
  AfterWrite(key, s);
  if (s.ok() && !db_.Put(HeadRecordKey(key), EncodeTombstone()).ok()) Bump(record_errors_);
  return s;
}

}  // namespace dsfs
