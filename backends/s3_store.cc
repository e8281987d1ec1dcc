#include "backends/s3_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <thread>

#include "backends/s3_store_internal.h"
#include "backends/s3_xml.h"
#include "backends/sigv4.h"
#include "common/logging.h"
#include "common/strings.h"

namespace dsfs {
namespace {

// A 1000-key ListObjectsV2 page is ~300 KiB; anything this big is not one.
constexpr size_t kMaxListBody = 32 * 1024 * 1024;
constexpr const char* kMetaPrefix = "x-amz-meta-";
// S3's (and OBS's) largest object: a bigger size is a broken reply.
constexpr uint64_t kMaxObjectSize = uint64_t{5} << 40;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

bool IsValidBucketName(const std::string& b) {
  if (b.empty() || b.size() > 255) return false;
  for (char c : b) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

size_t S3Store::OnHeader(char* data, size_t size, size_t nitems, void* userp) {
  auto* reply = static_cast<Reply*>(userp);
  const size_t n = size * nitems;
  std::string_view line(data, n);
  reply->responded = true;
  if (line.substr(0, 5) == "HTTP/") {
    reply->headers.clear();  // a new response (after 100 Continue)
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  reply->headers[AsciiLower(Trim(line.substr(0, colon)))] =
      std::string(Trim(line.substr(colon + 1)));
  return n;
}

int S3Store::OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* reply = static_cast<Reply*>(userp);
  // Returning 1 aborts the transfer: CURLE_ABORTED_BY_CALLBACK.
  if (reply->stopping != nullptr && reply->stopping->load()) {
    reply->stopped = true;
    return 1;
  }
  if (IsCancelled(reply->call->cancel)) {
    reply->cancelled = true;
    return 1;
  }
  if (reply->responded || reply->first_byte_deadline == std::chrono::steady_clock::time_point() ||
      std::chrono::steady_clock::now() < reply->first_byte_deadline) {
    return 0;
  }
  reply->first_byte_timeout = true;
  return 1;
}

size_t S3Store::OnBody(char* data, size_t size, size_t nmemb, void* userp) {
  auto* reply = static_cast<Reply*>(userp);
  const Call& call = *reply->call;
  const size_t n = size * nmemb;
  if (reply->status == 0) curl_easy_getinfo(reply->curl, CURLINFO_RESPONSE_CODE, &reply->status);
  const bool success = reply->status >= 200 && reply->status < 300;
  if (success && call.buf != nullptr) {
    if (call.range && reply->status == 200) {
      // The server ignored Range and sends the whole object: only fine when
      // the whole object is exactly the range asked for.
      uint64_t len = 0;
      auto it = reply->headers.find("content-length");
      if (call.range->offset != 0 || it == reply->headers.end() ||
          !ParseInteger(std::string_view(it->second), &len) || len != call.range->length) {
        reply->ignored_range = true;
        return 0;  // aborts the transfer
      }
    }
    if (n > call.buf_len - reply->sink_bytes) {
      reply->overflow = true;
      return 0;
    }
    if (call.on_parts_done != nullptr && !reply->headers_checked) {
      // Parts are handed out before the reply ends: its version and range
      // are checked before its first byte lands.
      reply->headers_checked = true;
      reply->early_error = CheckGetHeaders(call, *reply);
      if (!reply->early_error.ok()) return 0;  // aborts the transfer
    }
    if (call.parts.empty()) {
      std::memcpy(call.buf + reply->sink_bytes, data, n);
    } else {
      // Parts are consecutive: find where sink_bytes falls, copy across.
      size_t at = reply->sink_bytes, done = 0;
      for (const GetPart& p : call.parts) {
        if (done == n) break;
        if (at >= p.length) {
          at -= p.length;
          continue;
        }
        const size_t k = std::min(p.length - at, n - done);
        std::memcpy(p.data + at, data + done, k);
        done += k;
        at = 0;
      }
    }
    reply->sink_bytes += n;
    if (call.on_parts_done != nullptr) {
      const size_t before = reply->parts_done;
      while (reply->parts_done < call.parts.size() &&
             reply->sink_bytes >= reply->parts_done_bytes + call.parts[reply->parts_done].length) {
        reply->parts_done_bytes += call.parts[reply->parts_done].length;
        ++reply->parts_done;
      }
      if (reply->parts_done > before) (*call.on_parts_done)(reply->parts_done);
    }
    return n;
  }
  const size_t cap = success ? call.max_body : kS3MaxErrorBody;
  if (reply->body.size() + n > cap) {
    if (success) {
      reply->body_too_large = true;
      return 0;
    }
    // Keep the start of an error and stop reading: a body that never
    // ends must not hold the request until request_timeout.
    reply->body.append(data, cap - reply->body.size());
    reply->error_body_cut = true;
    return 0;
  }
  reply->body.append(data, n);
  return n;
}

// ---------------------------------------------------------------------------
// Construction

Result<std::unique_ptr<S3Store>> S3Store::Create(const S3Config& config, Credentials creds,
                                                 std::string bucket, Metrics* metrics) {
  DSFS_RETURN_IF_ERROR(ParseEndpoint(config.endpoint).status());
  if (!IsValidBucketName(bucket)) {
    return Status::InvalidArgument("invalid bucket name '" + bucket + "'");
  }
  if (creds.access_key.empty() || creds.secret_key.empty()) {
    return Status::InvalidArgument("S3 credentials need an access key and a secret key");
  }
  if (config.max_retries < 0 || config.max_connections < 1) {
    return Status::InvalidArgument("S3 config: retries must be >= 0 and connections >= 1");
  }
  return std::make_unique<S3Store>(config, std::move(creds), std::move(bucket), metrics);
}

S3Store::S3Store(const S3Config& config, Credentials creds, std::string bucket, Metrics* metrics)
    : config_(config),
      creds_(std::move(creds)),
      bucket_(std::move(bucket)),
      region_(ResolveRegion(config)),
      rng_(std::random_device{}()) {
  auto ep = ParseEndpoint(config_.endpoint);
  if (ep.ok()) {
    endpoint_ = *std::move(ep);
  } else {
    endpoint_status_ = ep.status();
  }
  if (metrics != nullptr) {
    metrics_ = metrics;
    bytes_read_ = &metrics->GetCounter("dsfs_s3_bytes_read_total",
                                       "S3 GET body bytes read (the OBS tier)");
    bytes_written_ = &metrics->GetCounter("dsfs_s3_bytes_written_total",
                                          "S3 body bytes uploaded by successful PUTs and parts");
  }
  if (!config_.verify_tls) {
    spdlog::warn(
        "TLS certificate verification is DISABLED for {} (ssl_verify=0): "
        "the endpoint's identity is not checked",
        config_.endpoint);
  }
}

S3Store::~S3Store() {
  std::lock_guard<std::mutex> lock(pool_mu_);
  for (CURL* h : idle_) curl_easy_cleanup(h);
  idle_.clear();
}

std::string S3Store::Describe() const { return "s3://" + bucket_ + "@" + endpoint_.host_port; }

size_t S3Store::idle_handles() const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  return idle_.size();
}

CURL* S3Store::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Store::ReleaseHandle(CURL* handle) {
  // Reset drops options but keeps the live connection and DNS cache.
  curl_easy_reset(handle);
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (idle_.size() < static_cast<size_t>(config_.max_connections)) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(handle);
}

std::string S3Store::Scrub(std::string text) const {
  for (const std::string* secret : {&creds_.secret_key, &creds_.session_token}) {
    if (secret->empty()) continue;
    for (size_t pos; (pos = text.find(*secret)) != std::string::npos;) {
      text.replace(pos, secret->size(), "<redacted>");
    }
  }
  return text;
}

std::string S3Store::PathFor(const std::string& key) const {
  if (config_.path_style) return "/" + bucket_ + "/" + key;
  return "/" + key;
}

std::string S3Store::HostHeader() const {
  if (config_.path_style) return endpoint_.host_port;
  return bucket_ + "." + endpoint_.host_port;
}

std::chrono::milliseconds S3Store::BackoffDelay(int retry) {
  int64_t cap = config_.retry_cap.count();
  int64_t ceiling = config_.retry_base.count();
  for (int i = 0; i < retry && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::max<int64_t>(0, std::min(ceiling, cap));
  std::lock_guard<std::mutex> lock(rng_mu_);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, ceiling)(rng_));
}

// ---------------------------------------------------------------------------
// HTTP

S3Store::Attempt S3Store::PerformOnce(const Call& call, Reply* reply) {
  Attempt result;
  CURL* h = AcquireHandle();
  if (h == nullptr) {
    result.status = Status::Transient("curl_easy_init failed");
    result.retry = true;
    return result;
  }
  reply->Reset();
  reply->call = &call;
  reply->curl = h;

  sigv4::Request sreq;
  sreq.method = call.method;
  sreq.path = call.path;
  sreq.query = call.query;
  sreq.headers = call.headers;
  sreq.headers.emplace_back("Host", HostHeader());
  sreq.payload_hash = call.payload_hash;
  const std::string authorization = sigv4::Sign(&sreq, creds_, region_, std::time(nullptr));

  Slist headers;
  auto add = [&](const std::string& line) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l != nullptr) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  for (const auto& [name, value] : sreq.headers) add(name + ": " + value);
  add("Authorization: " + authorization);
  add("Expect:");

  std::string url = endpoint_.scheme + "://" + HostHeader() + sigv4::CanonicalUri(call.path);
  if (!call.query.empty()) url += "?" + sigv4::CanonicalQueryString(call.query);

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);  // keys may hold "." and ".." segments
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, config_.low_speed_limit);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>((config_.low_speed_time.count() + 999) / 1000)));
  // Every attempt has a wall-clock deadline (request_timeout=; longer for
  // a body and for server-side work, see AttemptTimeout).
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(AttemptTimeout(call).count()));
  if (call.slow) curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 0L);
  if (call.head) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  SetUpWrite(h, call, reply);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, config_.verify_tls ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, config_.verify_tls ? 2L : 0L);
  if (!config_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config_.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, reply);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
  // A request whose answer has not started within first_byte_timeout is
  // cut and retried: one stalled GET must not hold a reader for the whole
  // low-speed window. (curl calls the progress function about once a
  // second while idle, so the cut comes within ~1 s of the deadline.)
  // The same callback aborts the transfer on Stop() or the caller's cancel.
  reply->first_byte_deadline = config_.first_byte_timeout.count() > 0 && !call.slow
                                   ? std::chrono::steady_clock::now() + config_.first_byte_timeout
                                   : std::chrono::steady_clock::time_point();
  // A body is sent before any answer can start: the deadline starts when
  // its last byte is handed to curl (OnUpload).
  reply->first_byte_after_upload = std::chrono::milliseconds(0);
  if (call.upload != nullptr && call.upload->length > 0 &&
      reply->first_byte_deadline != std::chrono::steady_clock::time_point()) {
    reply->first_byte_after_upload = config_.first_byte_timeout;
    reply->first_byte_deadline = std::chrono::steady_clock::time_point();
  }
  reply->stopping = &stopping_;
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, reply);

  if (metrics_ != nullptr) {
    metrics_->GetCounter("dsfs_s3_requests_total", "S3 HTTP requests sent (attempts), by operation",
                         {{"op", call.op}})
        .Add();
  }
  const auto started = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(h);
  if (metrics_ != nullptr) {
    metrics_
        ->GetHistogram("dsfs_s3_request_seconds",
                       "S3 HTTP request (attempt) latency to the end of the reply, by operation",
                       {{"op", call.op}})
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->status);
  long request_size = 0;
  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
  ReleaseHandle(h);
  reply->curl = nullptr;

  const std::string curl_msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  const std::string what = std::string(call.op) + " '" + call.key + "'";
  if (!reply->upload_error.empty()) {
    // The staged file could not be read: a local failure, not retried.
    result.status = Status::IoError(what + ": " + reply->upload_error);
    return result;
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK && (reply->stopped || reply->cancelled)) {
    result.status = CancelStatus(call);
    if (result.status.ok()) result.status = Status::Cancelled(what + ": cancelled");
    return result;
  }
  // A cut error body is a complete answer: its status says what happened.
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && reply->error_body_cut)) {
    if (reply->status >= 200 && reply->status < 300) {
      if (call.buf != nullptr) {
        result.status = ValidateGet(call, *reply);
        result.retry = result.status.retryable();
      } else {
        result.status = ValidateWrite(call, *reply, &result.retry);
      }
    } else {
      result.status = MapHttpError(call, *reply, &result.retry);
    }
    return result;
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK && reply->first_byte_timeout) {
    result.status = Status::Transient(what + ": timed out: no response within " +
                                      std::to_string(config_.first_byte_timeout.count()) + " ms");
    result.retry = true;
    return result;
  }
  if (rc == CURLE_WRITE_ERROR && !reply->early_error.ok()) {
    result.status = reply->early_error;
    result.retry = result.status.retryable();
    return result;
  }
  if (rc == CURLE_WRITE_ERROR && reply->overflow) {
    result.status = Status::InvalidArgument(what + ": object is larger than the " +
                                            std::to_string(call.buf_len) + "-byte buffer");
    return result;
  }
  if (rc == CURLE_WRITE_ERROR && reply->ignored_range) {
    result.status = Status::InvalidArgument(
        what + ": server answered 200 (whole object) to a ranged GET; it does not support Range");
    return result;
  }
  if (rc == CURLE_WRITE_ERROR && reply->body_too_large) {
    result.status = Status::InvalidArgument(what + ": reply body larger than " +
                                            std::to_string(call.max_body) + " bytes");
    return result;
  }
  const bool never_connected =
      rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
      rc == CURLE_COULDNT_RESOLVE_PROXY ||
      ((rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR) && request_size == 0);
  if (never_connected) {
    result.status =
        Status::Unavailable("cannot connect to " + endpoint_.host_port + ": " + curl_msg);
    result.retry = true;
    return result;
  }
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      result.status =
          Status::Unavailable("TLS failure with " + endpoint_.host_port + ": " + curl_msg);
      return result;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      result.status = Status::InvalidArgument(what + ": " + curl_msg);
      return result;
    default:
      // Reset, stall (low-speed limit), timeout, partial body, ...
      result.status = Status::Transient(what + ": " + curl_msg);
      result.retry = true;
      return result;
  }
}

Status S3Store::MapHttpError(const Call& call, const Reply& reply, bool* retry) const {
  *retry = false;
  const std::string what = std::string(call.op) + " '" + call.key + "'";
  S3Error err;
  if (!reply.body.empty()) {
    auto parsed = ParseS3Error(reply.body);
    if (parsed.ok()) err = *std::move(parsed);
  }
  std::string detail = std::to_string(reply.status);
  if (!err.code.empty()) detail += " " + err.code;
  if (!err.message.empty()) detail += ": " + err.message;
  detail = Scrub(std::move(detail));
  const long s = reply.status;
  if (s == 404) {
    if (err.code == "NoSuchBucket") {
      return Status::NotFound("bucket '" + bucket_ + "' does not exist");
    }
    if (err.code == "NoSuchUpload") {
      return Status::NotFound(what + ": no such multipart upload (completed or aborted)");
    }
    return Status::NotFound("no such key '" + call.key + "'");
  }
  if (s == 403) {
    std::string hint = err.code.empty() ? " (check the access key, secret key and region)" : "";
    return Status::AccessDenied(what + ": " + detail + hint);
  }
  if (s == 412) {
    return Status::PreconditionFailed(what + ": object changed (ETag is no longer '" +
                                      call.if_match + "')");
  }
  if (s == 429 || s == 503) {
    *retry = true;
    return Status::Throttled(what + ": " + detail);
  }
  if (s >= 500) {
    *retry = true;
    return Status::Transient(what + ": " + detail);
  }
  // BadDigest: the body that arrived is not the one whose Content-MD5 was
  // sent (damaged on the way); sent again from the staged bytes.
  if (s == 400 && (err.code == "RequestTimeout" || err.code == "BadDigest")) {
    *retry = true;
    return Status::Transient(what + ": " + detail);
  }
  if (s >= 300 && s < 400) {
    auto loc = reply.headers.find("location");
    std::string to = loc == reply.headers.end() ? "" : " to '" + loc->second + "'";
    return Status::IoError(what + ": redirected (" + detail + ")" + Scrub(std::move(to)) +
                           ": the endpoint (url=" + config_.endpoint + "), region or addressing (" +
                           (config_.path_style ? "path" : "virtual-host") +
                           " style) is wrong for bucket '" + bucket_ + "'");
  }
  return Status::InvalidArgument(what + ": " + detail);
}

Status S3Store::ValidateGet(const Call& call, const Reply& reply) const {
  DSFS_RETURN_IF_ERROR(CheckGetHeaders(call, reply));
  const std::string what = "GET '" + call.key + "'";
  if (call.range) {
    if (reply.sink_bytes != call.range->length) {
      return Status::Transient(what + ": short body: " + std::to_string(reply.sink_bytes) + " of " +
                               std::to_string(call.range->length) + " bytes");
    }
    return Status::Ok();
  }
  auto cl = reply.headers.find("content-length");
  if (cl != reply.headers.end()) {
    uint64_t len = 0;
    if (!ParseInteger(std::string_view(cl->second), &len) || len != reply.sink_bytes) {
      return Status::Transient(what + ": short body: " + std::to_string(reply.sink_bytes) +
                               " bytes, Content-Length " + cl->second);
    }
  }
  return Status::Ok();
}

Status S3Store::CheckGetHeaders(const Call& call, const Reply& reply) {
  const std::string what = "GET '" + call.key + "'";
  auto header = [&](const char* name) -> const std::string* {
    auto it = reply.headers.find(name);
    return it == reply.headers.end() ? nullptr : &it->second;
  };
  // The version the bytes belong to must be the one asked for: a server
  // (or a proxy) that ignores If-Match must not hand a reader bytes of
  // another version.
  if (!call.if_match.empty()) {
    const std::string* etag = header("etag");
    const std::string got = etag != nullptr ? StripEtagQuotes(*etag) : std::string();
    if (got != call.if_match) {
      return Status::PreconditionFailed(what + ": asked for version " + call.if_match +
                                        ", the reply is version '" + got + "'");
    }
  }
  if (call.range) {
    const ByteRange& r = *call.range;
    if (reply.status == 206) {
      // "bytes 100-199/1000"
      const std::string* cr = header("content-range");
      uint64_t start = 0;
      uint64_t end = 0;
      bool good = false;
      if (cr != nullptr && cr->rfind("bytes ", 0) == 0) {
        std::string_view v(*cr);
        v.remove_prefix(6);
        size_t dash = v.find('-');
        size_t slash = v.find('/');
        good = dash != std::string_view::npos && slash != std::string_view::npos && dash < slash &&
               ParseInteger(v.substr(0, dash), &start) &&
               ParseInteger(v.substr(dash + 1, slash - dash - 1), &end);
      }
      if (!good || start != r.offset || end != r.offset + r.length - 1) {
        return Status::Transient(what + ": Content-Range '" + (cr ? *cr : std::string()) +
                                 "' is not bytes " + std::to_string(r.offset) + "-" +
                                 std::to_string(r.offset + r.length - 1));
      }
    } else if (reply.status != 200) {  // 200 was vetted by the write callback
      return Status::Transient(what + ": unexpected status " + std::to_string(reply.status) +
                               " for a ranged GET");
    }
  }
  return Status::Ok();
}

Status S3Store::CancelStatus(const Call& call) const {
  const std::string what = std::string(call.op) + " '" + call.key + "'";
  if (stopping_.load()) return Status::Cancelled(what + ": cancelled: dsfs is shutting down");
  if (IsCancelled(call.cancel)) return Status::Cancelled(what + ": cancelled by the caller");
  return Status::Ok();
}

bool S3Store::SleepUnlessCancelled(const Call& call, std::chrono::milliseconds delay) {
  // The caller's check is polled; Stop() wakes the sleep at once.
  constexpr std::chrono::milliseconds kPoll{100};
  const auto until = std::chrono::steady_clock::now() + delay;
  std::unique_lock lock(stop_mu_);
  while (true) {
    if (!CancelStatus(call).ok()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    stop_cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(until - now, kPoll),
                      [&] { return stopping_.load(); });
  }
}

void S3Store::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_.store(true);
  }
  stop_cv_.notify_all();
}

void S3Store::CountError(const Status& status) {
  if (metrics_ == nullptr) return;
  metrics_
      ->GetCounter("dsfs_s3_errors_total", "S3 operations that failed (not found excluded), by kind",
                   {{"kind", AsciiLower(StatusCodeName(status.code()))}})
      .Add();
}

Status S3Store::Execute(const Call& call, Reply* reply) {
  if (!endpoint_status_.ok()) return endpoint_status_;
  if (Status c = CancelStatus(call); !c.ok()) return c;
  Attempt attempt;
  for (int n = 0;; ++n) {
    const auto start = std::chrono::steady_clock::now();
    attempt = PerformOnce(call, reply);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    spdlog::debug("s3 {} {} -> {} {} ({} ms, attempt {})", call.op, EscapeForLog(call.key),
                  reply->status, attempt.status.ok() ? "OK" : StatusCodeName(attempt.status.code()),
                  ms, n + 1);
    // Parts already handed out (GetRequest::on_parts_done) are never
    // written again: the caller fetches the rest itself.
    if (attempt.status.ok() || !attempt.retry || n >= config_.max_retries ||
        reply->parts_done > 0) {
      break;
    }
    const auto delay = BackoffDelay(n);
    spdlog::debug("s3 {} {}: {}; retry {} in {} ms", call.op, EscapeForLog(call.key),
                  EscapeForLog(attempt.status.ToString()), n + 1, delay.count());
    if (metrics_ != nullptr) {
      metrics_
          ->GetCounter("dsfs_s3_retries_total", "S3 requests retried, by the failure's kind",
                       {{"kind", AsciiLower(StatusCodeName(attempt.status.code()))}})
          .Add();
    }
    if (!SleepUnlessCancelled(call, delay)) {
      attempt.status = CancelStatus(call);
      attempt.retry = false;
      break;
    }
  }
  if (!attempt.status.ok() && attempt.status.code() != StatusCode::kNotFound) {
    CountError(attempt.status);
  }
  if (!attempt.status.ok() && attempt.retry && config_.max_retries > 0) {
    return Status(attempt.status.code(), attempt.status.message() + " (after " +
                                             std::to_string(config_.max_retries + 1) +
                                             " attempts)");
  }
  return attempt.status;
}

// ---------------------------------------------------------------------------
// Operations

Result<ObjectInfo> S3Store::Head(const std::string& key) {
  if (key.empty()) return Status::InvalidArgument("HEAD: empty key");
  Call call;
  call.op = "HEAD";
  call.method = "HEAD";
  call.key = key;
  call.path = PathFor(key);
  call.head = true;
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));

  ObjectInfo info;
  info.key = key;
  auto it = reply.headers.find("content-length");
  if (it == reply.headers.end() || !ParseInteger(std::string_view(it->second), &info.size)) {
    return Status::InvalidArgument("HEAD '" + key + "': reply has no valid Content-Length");
  }
  if (info.size > kMaxObjectSize) {
    return Status::Corruption("HEAD '" + key + "': bad server reply: size " +
                              std::to_string(info.size) +
                              " is over S3's 5 TiB maximum object size");
  }
  if (auto e = reply.headers.find("etag"); e != reply.headers.end()) {
    info.etag = StripEtagQuotes(e->second);
  }
  if (auto lm = reply.headers.find("last-modified"); lm != reply.headers.end()) {
    auto t = ParseHttpDate(lm->second);
    if (t.ok()) {
      info.mtime_sec = *t;
    } else {
      spdlog::debug("s3 HEAD {}: ignoring Last-Modified: {}", EscapeForLog(key),
                    EscapeForLog(t.status().ToString()));
    }
  }
  if (auto ct = reply.headers.find("content-type"); ct != reply.headers.end()) {
    info.content_type = ct->second;
  }
  const size_t plen = std::strlen(kMetaPrefix);
  for (const auto& [name, value] : reply.headers) {
    if (name.size() > plen && name.compare(0, plen, kMetaPrefix) == 0) {
      info.meta[name.substr(plen)] = value;
    }
  }
  return info;
}

Result<ListPage> S3Store::List(const ListRequest& request) {
  Call call;
  call.op = "LIST";
  call.method = "GET";
  call.key = request.prefix;
  call.path = config_.path_style ? "/" + bucket_ : "/";
  call.max_body = kMaxListBody;
  call.query = {{"list-type", "2"}, {"encoding-type", "url"}};
  if (!request.prefix.empty()) call.query.emplace_back("prefix", request.prefix);
  if (!request.delimiter.empty()) call.query.emplace_back("delimiter", request.delimiter);
  if (!request.continuation.empty()) {
    call.query.emplace_back("continuation-token", request.continuation);
  }
  if (request.max_keys > 0) call.query.emplace_back("max-keys", std::to_string(request.max_keys));
  call.cancel = request.cancel;
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  auto page = ParseListObjectsV2(reply.body);
  if (!page.ok()) {
    CountError(page.status());
    return page.status().WithContext("LIST '" + request.prefix + "'");
  }
  return page;
}

Result<GetResult> S3Store::Get(const GetRequest& request, char* buf, size_t buf_len) {
  return GetInto(request, buf, buf_len, {});
}

Result<GetResult> S3Store::GetParts(const GetRequest& request, std::span<const GetPart> parts) {
  if (parts.empty()) return Status::InvalidArgument("GET '" + request.key + "': no parts");
  size_t total = 0;
  for (const GetPart& p : parts) {
    if (p.data == nullptr) return Status::InvalidArgument("GET '" + request.key + "': null part");
    total += p.length;
  }
  if (!request.range || request.range->length != total) {
    return Status::InvalidArgument("GET '" + request.key + "': parts must hold the range exactly");
  }
  return GetInto(request, parts[0].data, total, parts);
}

Result<GetResult> S3Store::GetInto(const GetRequest& request, char* buf, size_t buf_len,
                                   std::span<const GetPart> parts) {
  if (request.key.empty()) return Status::InvalidArgument("GET: empty key");
  if (buf == nullptr) return Status::InvalidArgument("GET '" + request.key + "': null buffer");
  Call call;
  call.op = "GET";
  call.method = "GET";
  call.key = request.key;
  call.path = PathFor(request.key);
  call.buf = buf;
  call.buf_len = buf_len;
  call.parts = parts;
  if (!parts.empty() && request.on_parts_done && !request.if_match.empty()) {
    call.on_parts_done = &request.on_parts_done;
  }
  call.range = request.range;
  call.if_match = request.if_match;
  call.cancel = request.cancel;
  if (request.range) {
    const ByteRange& r = *request.range;
    if (r.length == 0) {
      return Status::InvalidArgument("GET '" + request.key + "': empty range");
    }
    if (r.length > buf_len) {
      return Status::InvalidArgument("GET '" + request.key + "': range of " +
                                     std::to_string(r.length) + " bytes exceeds the " +
                                     std::to_string(buf_len) + "-byte buffer");
    }
    call.headers.emplace_back("Range", "bytes=" + std::to_string(r.offset) + "-" +
                                           std::to_string(r.offset + r.length - 1));
  }
  if (!request.if_match.empty()) {
    call.headers.emplace_back("If-Match", "\"" + request.if_match + "\"");
  }
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  if (bytes_read_ != nullptr) bytes_read_->Add(reply.sink_bytes);
  GetResult result;
  result.bytes = reply.sink_bytes;
  if (auto e = reply.headers.find("etag"); e != reply.headers.end()) {
    result.etag = StripEtagQuotes(e->second);
  }
  result.source = DataSource::kObjectStore;
  return result;
}

}  // namespace dsfs
