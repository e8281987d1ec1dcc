// S3Store's write operations: PutObject, CopyObject, the multipart upload
// (Create, UploadPart / UploadPartCopy, Complete, Abort) and DeleteObject,
// over the HTTP machinery of s3_store.cc (same retries, cancellation,
// error classification and signing). The request formats are listed in
// s3_store.h.
#include <errno.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "backends/md5.h"
#include "backends/s3_store.h"
#include "backends/s3_store_internal.h"
#include "backends/s3_xml.h"
#include "backends/sigv4.h"
#include "common/logging.h"
#include "common/strings.h"

namespace dsfs {
namespace {

constexpr const char* kMetaPrefix = "x-amz-meta-";
constexpr const char* kDefaultContentType = "application/octet-stream";
// S3's limits: one PUT or part carries at most 5 GiB; part numbers 1..10000.
constexpr uint64_t kMaxSinglePut = uint64_t{5} << 30;
constexpr int kMaxPartNumber = 10000;
// Write results (CopyObjectResult, CompleteMultipartUploadResult, ...) are
// under a KiB, plus the whitespace S3 sends while it works.
constexpr size_t kMaxWriteResultBody = 1 << 20;

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

// Adds Content-Type and x-amz-meta-* for attrs. A name that is not a
// lower-case HTTP token or a value outside printable ASCII cannot travel
// in a header unchanged (S3 takes user metadata as US-ASCII headers):
// InvalidArgument, before anything is sent.
Status AddAttrHeaders(const ObjectAttrs& attrs, const std::string& what,
                      std::vector<std::pair<std::string, std::string>>* headers) {
  headers->emplace_back("Content-Type",
                        attrs.content_type.empty() ? kDefaultContentType : attrs.content_type);
  for (const auto& [name, value] : attrs.meta) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return Status::InvalidArgument(what + ": metadata name '" + EscapeForLog(name) +
                                     "' is not a lower-case header token");
    }
    for (char c : value) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
        return Status::InvalidArgument(what + ": metadata '" + name +
                                       "' has a byte that is not printable ASCII");
      }
    }
    headers->emplace_back(kMetaPrefix + name, value);
  }
  for (char c : attrs.content_type) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      return Status::InvalidArgument(what +
                                     ": Content-Type has a byte that is not printable ASCII");
    }
  }
  return Status::Ok();
}

Status CheckBody(const Body& body, const std::string& what) {
  if (body.fd < 0 && body.length > 0 && body.data == nullptr) {
    return Status::InvalidArgument(what + ": body of " + std::to_string(body.length) +
                                   " bytes has no data");
  }
  if (body.length > kMaxSinglePut) {
    return Status::InvalidArgument(what + ": " + std::to_string(body.length) +
                                   " bytes is over S3's 5 GiB for one request");
  }
  return Status::Ok();
}

std::string LowerHex(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool IsHexMd5(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Upload plumbing (used by PerformOnce)

std::chrono::milliseconds S3Store::AttemptTimeout(const Call& call) const {
  if (call.slow) return std::max(config_.request_timeout, config_.slow_op_timeout);
  std::chrono::milliseconds t = config_.request_timeout;
  if (call.upload != nullptr && config_.upload_min_rate > 0) {
    t += std::chrono::milliseconds(call.upload->length * 1000 / config_.upload_min_rate);
  }
  return t;
}

size_t S3Store::OnUpload(char* buffer, size_t size, size_t nitems, void* userp) {
  auto* reply = static_cast<Reply*>(userp);
  const Body& body = *reply->call->upload;
  if (reply->stopping != nullptr && reply->stopping->load()) {
    reply->stopped = true;
    return CURL_READFUNC_ABORT;
  }
  if (IsCancelled(reply->call->cancel)) {
    reply->cancelled = true;
    return CURL_READFUNC_ABORT;
  }
  const uint64_t left = body.length - std::min(reply->sent, body.length);
  const size_t want = static_cast<size_t>(std::min<uint64_t>(size * nitems, left));
  if (want == 0) return 0;
  size_t got = 0;
  if (body.fd < 0) {
    std::memcpy(buffer, body.data + reply->sent, want);
    got = want;
  } else {
    while (true) {
      const ssize_t n = pread(body.fd, buffer, want, static_cast<off_t>(body.offset + reply->sent));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        reply->upload_error = std::string("reading the staged file: ") + std::strerror(errno);
        return CURL_READFUNC_ABORT;
      }
      if (n == 0) {
        // Shorter than when its MD5 was taken: not the bytes promised.
        reply->upload_error = "the staged file ends at " +
                              std::to_string(body.offset + reply->sent) + ", before its " +
                              std::to_string(body.length) + " bytes";
        return CURL_READFUNC_ABORT;
      }
      got = static_cast<size_t>(n);
      break;
    }
  }
  reply->sent += got;
  if (reply->sent == body.length && reply->first_byte_after_upload.count() > 0) {
    reply->first_byte_deadline = std::chrono::steady_clock::now() + reply->first_byte_after_upload;
  }
  return got;
}

int S3Store::OnSeek(void* userp, curl_off_t offset, int origin) {
  // curl rewinds a body it must send again on this attempt (a reused
  // connection that turned out dead, an auth retry).
  auto* reply = static_cast<Reply*>(userp);
  if (origin != SEEK_SET || offset < 0 ||
      static_cast<uint64_t>(offset) > reply->call->upload->length) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  reply->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

void S3Store::SetUpWrite(CURL* h, const Call& call, Reply* reply) {
  const std::string method = call.method;
  if (call.upload != nullptr) {
    const auto len = static_cast<curl_off_t>(call.upload->length);
    if (method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len);
    } else {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, len);
    }
    curl_easy_setopt(h, CURLOPT_READFUNCTION, OnUpload);
    curl_easy_setopt(h, CURLOPT_READDATA, reply);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, reply);
  } else if (method != "GET" && method != "HEAD") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method);  // DELETE
  }
}

Status S3Store::ValidateWrite(const Call& call, const Reply& reply, bool* retry) const {
  *retry = false;
  const std::string what = std::string(call.op) + " '" + call.key + "'";
  if (call.error_in_2xx) {
    if (auto err = ErrorIn2xxBody(reply.body)) {
      // S3 said 200 before the work was done, then failed it: as if it
      // had answered with the status the code names.
      Reply as_error = reply;
      as_error.status = HttpStatusOfS3Error(err->code);
      Status s = MapHttpError(call, as_error, retry);
      return Status(s.code(), s.message() + " (in a " + std::to_string(reply.status) + " reply)");
    }
  }
  if (call.result_root != nullptr) {
    auto etag = ParseResultEtag(reply.body, call.result_root);
    if (!etag.ok()) {
      *retry = true;
      return Status::Transient(what + ": malformed " + std::to_string(reply.status) +
                               " reply: " + etag.status().message());
    }
  }
  if (!call.expect_etag.empty()) {
    auto it = reply.headers.find("etag");
    const std::string got = it == reply.headers.end() ? "" : StripEtagQuotes(it->second);
    if (LowerHex(got) != call.expect_etag) {
      return Status::Corruption(what + ": the server stored other bytes: ETag '" + Scrub(got) +
                                "' is not the body's MD5 " + call.expect_etag);
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Operations

Result<PutResult> S3Store::Put(const PutRequest& request) {
  const std::string what = "PUT '" + request.key + "'";
  if (request.key.empty()) return Status::InvalidArgument("PUT: empty key");
  DSFS_RETURN_IF_ERROR(CheckBody(request.body, what));
  Call call;
  call.op = "PUT";
  call.method = "PUT";
  call.key = request.key;
  call.path = PathFor(request.key);
  call.cancel = request.cancel;
  call.upload = &request.body;
  call.payload_hash = std::string(sigv4::kUnsignedPayload);
  DSFS_RETURN_IF_ERROR(AddAttrHeaders(request.attrs, what, &call.headers));
  // The MD5 is taken from the bytes to send before the first attempt (a
  // second read of the staged range; never the whole range in memory).
  auto md5 = Md5OfBody(request.body);
  if (!md5.ok()) return md5.status().WithContext(what);
  call.headers.emplace_back("Content-MD5", Base64Of(*md5));
  call.expect_etag = HexOf(*md5);
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  if (bytes_written_ != nullptr) bytes_written_->Add(request.body.length);
  return PutResult{call.expect_etag};
}

Result<PutResult> S3Store::Copy(const CopyRequest& request) {
  const std::string what = "COPY '" + request.source_key + "' to '" + request.key + "'";
  if (request.key.empty() || request.source_key.empty()) {
    return Status::InvalidArgument("COPY: empty key");
  }
  static const Body kEmpty;
  Call call;
  call.op = "COPY";
  call.method = "PUT";
  call.key = request.key;
  call.path = PathFor(request.key);
  call.cancel = request.cancel;
  call.upload = &kEmpty;
  call.error_in_2xx = true;
  call.result_root = "CopyObjectResult";
  call.slow = true;
  call.max_body = kMaxWriteResultBody;
  call.if_match = request.source_if_match;
  call.headers.emplace_back("x-amz-copy-source", CopySource(request.source_key));
  if (!request.source_if_match.empty()) {
    call.headers.emplace_back("x-amz-copy-source-if-match", "\"" + request.source_if_match + "\"");
  }
  if (request.attrs) {
    call.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
    DSFS_RETURN_IF_ERROR(AddAttrHeaders(*request.attrs, what, &call.headers));
  } else {
    call.headers.emplace_back("x-amz-metadata-directive", "COPY");
  }
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  auto etag = ParseResultEtag(reply.body, "CopyObjectResult");
  if (!etag.ok()) {
    CountError(etag.status());
    return etag.status().WithContext(what);
  }
  return PutResult{*std::move(etag)};
}

std::string S3Store::CopySource(const std::string& key) const {
  return "/" + bucket_ + "/" + sigv4::UriEncode(key, /*encode_slash=*/false);
}

Result<std::string> S3Store::CreateMultipartUpload(const std::string& key,
                                                   const ObjectAttrs& attrs) {
  const std::string what = "CREATE MULTIPART '" + key + "'";
  if (key.empty()) return Status::InvalidArgument("CREATE MULTIPART: empty key");
  static const Body kEmpty;
  Call call;
  call.op = "CREATE MULTIPART";
  call.method = "POST";
  call.key = key;
  call.path = PathFor(key);
  call.query = {{"uploads", ""}};
  call.upload = &kEmpty;
  call.error_in_2xx = true;
  call.max_body = kMaxWriteResultBody;
  DSFS_RETURN_IF_ERROR(AddAttrHeaders(attrs, what, &call.headers));
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  auto id = ParseInitiateMultipartUpload(reply.body);
  if (!id.ok()) {
    CountError(id.status());
    return id.status().WithContext(what);
  }
  return id;
}

Result<std::string> S3Store::UploadPart(const UploadPartRequest& request) {
  const std::string what =
      "UPLOAD PART " + std::to_string(request.part_number) + " of '" + request.key + "'";
  if (request.key.empty() || request.upload_id.empty()) {
    return Status::InvalidArgument("UPLOAD PART: empty key or upload id");
  }
  if (request.part_number < 1 || request.part_number > kMaxPartNumber) {
    return Status::InvalidArgument(what + ": part numbers are 1.." +
                                   std::to_string(kMaxPartNumber));
  }
  static const Body kEmpty;
  Call call;
  call.op = "UPLOAD PART";
  call.method = "PUT";
  call.key = request.key;
  call.path = PathFor(request.key);
  call.query = {{"partNumber", std::to_string(request.part_number)},
                {"uploadId", request.upload_id}};
  call.cancel = request.cancel;
  if (!request.copy_source.empty()) {
    const ByteRange& r = request.copy_range;
    if (r.length == 0 || r.length > kMaxSinglePut) {
      return Status::InvalidArgument(what + ": copy range of " + std::to_string(r.length) +
                                     " bytes (1 byte to 5 GiB)");
    }
    call.op = "UPLOAD PART COPY";
    call.upload = &kEmpty;
    call.error_in_2xx = true;
    call.result_root = "CopyPartResult";
    call.slow = true;
    call.max_body = kMaxWriteResultBody;
    call.if_match = request.copy_source_if_match;
    call.headers.emplace_back("x-amz-copy-source", CopySource(request.copy_source));
    call.headers.emplace_back(
        "x-amz-copy-source-range",
        "bytes=" + std::to_string(r.offset) + "-" + std::to_string(r.offset + r.length - 1));
    if (!request.copy_source_if_match.empty()) {
      call.headers.emplace_back("x-amz-copy-source-if-match",
                                "\"" + request.copy_source_if_match + "\"");
    }
    Reply reply;
    DSFS_RETURN_IF_ERROR(Execute(call, &reply));
    auto etag = ParseResultEtag(reply.body, "CopyPartResult");
    if (!etag.ok()) {
      CountError(etag.status());
      return etag.status().WithContext(what);
    }
    return etag;
  }
  DSFS_RETURN_IF_ERROR(CheckBody(request.body, what));
  call.upload = &request.body;
  call.payload_hash = std::string(sigv4::kUnsignedPayload);
  auto md5 = Md5OfBody(request.body);
  if (!md5.ok()) return md5.status().WithContext(what);
  call.headers.emplace_back("Content-MD5", Base64Of(*md5));
  call.expect_etag = HexOf(*md5);
  Reply reply;
  DSFS_RETURN_IF_ERROR(Execute(call, &reply));
  if (bytes_written_ != nullptr) bytes_written_->Add(request.body.length);
  return call.expect_etag;
}

Result<PutResult> S3Store::CompleteMultipartUpload(const std::string& key,
                                                   const std::string& upload_id,
                                                   const std::vector<CompletedPart>& parts) {
  const std::string what = "COMPLETE MULTIPART '" + key + "'";
  if (key.empty() || upload_id.empty()) {
    return Status::InvalidArgument("COMPLETE MULTIPART: empty key or upload id");
  }
  if (parts.empty()) return Status::InvalidArgument(what + ": no parts");
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].part_number <= parts[i - 1].part_number) {
      return Status::InvalidArgument(what + ": parts are not in ascending order");
    }
  }
  const std::string xml = CompleteMultipartUploadXml(parts);
  const Body body{xml.data(), -1, 0, xml.size()};
  Call call;
  call.op = "COMPLETE MULTIPART";
  call.method = "POST";
  call.key = key;
  call.path = PathFor(key);
  call.query = {{"uploadId", upload_id}};
  call.upload = &body;
  call.payload_hash = sigv4::Sha256Hex(xml);
  call.error_in_2xx = true;
  call.result_root = "CompleteMultipartUploadResult";
  call.slow = true;
  call.max_body = kMaxWriteResultBody;
  call.headers.emplace_back("Content-Type", "application/xml");
  Reply reply;
  Status s = Execute(call, &reply);
  if (s.code() == StatusCode::kNotFound) {
    // A retried Complete whose first attempt did complete finds the upload
    // gone: the object is there when it has exactly these parts' ETag.
    std::string digests;
    for (const CompletedPart& p : parts) {
      if (!IsHexMd5(p.etag)) return s;
      digests += FromHex(p.etag);
    }
    const std::string expected = MultipartEtag(digests);
    auto head = Head(key);
    if (head.ok() && LowerHex(head->etag) == expected) {
      spdlog::info("s3 {}: upload {} was already completed", EscapeForLog(what),
                   EscapeForLog(upload_id));
      return PutResult{head->etag};
    }
    return s;
  }
  DSFS_RETURN_IF_ERROR(s);
  auto etag = ParseResultEtag(reply.body, "CompleteMultipartUploadResult");
  if (!etag.ok()) {
    CountError(etag.status());
    return etag.status().WithContext(what);
  }
  return PutResult{*std::move(etag)};
}

Status S3Store::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  if (key.empty() || upload_id.empty()) {
    return Status::InvalidArgument("ABORT MULTIPART: empty key or upload id");
  }
  Call call;
  call.op = "ABORT MULTIPART";
  call.method = "DELETE";
  call.key = key;
  call.path = PathFor(key);
  call.query = {{"uploadId", upload_id}};
  Reply reply;
  Status s = Execute(call, &reply);
  // NoSuchUpload: already aborted or completed; either way nothing is left.
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  return s;
}

Status S3Store::Delete(const std::string& key) {
  if (key.empty()) return Status::InvalidArgument("DELETE: empty key");
  Call call;
  call.op = "DELETE";
  call.method = "DELETE";
  call.key = key;
  call.path = PathFor(key);
  Reply reply;
  Status s = Execute(call, &reply);
  // S3 answers 204 whether or not the key existed; some servers say 404.
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  return s;
}

}  // namespace dsfs
