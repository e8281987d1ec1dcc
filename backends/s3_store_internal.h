// S3Store's per-request state, shared by s3_store.cc (the HTTP machinery
// and the reads) and s3_writes.cc (the writes). Private to S3Store's
// implementation: nothing outside those files includes it.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/s3_store.h"
#include "backends/sigv4.h"
#include "common/metrics.h"

namespace dsfs {

// An error body is a few hundred bytes; keep enough to parse, drop the rest.
inline constexpr size_t kS3MaxErrorBody = 64 * 1024;

struct S3Store::Call {
  const char* op = "";  // "HEAD" / "LIST" / "GET" / "PUT" / ..., for logs and messages
  const char* method = "GET";
  std::string key;   // for messages
  std::string path;  // raw (unencoded) path
  std::vector<std::pair<std::string, std::string>> query;
  // Range, If-Match, Content-MD5, x-amz-meta-*, x-amz-copy-source, ...
  std::vector<std::pair<std::string, std::string>> headers;
  bool head = false;
  size_t max_body = kS3MaxErrorBody;
  // GET sink
  char* buf = nullptr;
  size_t buf_len = 0;
  // Non-empty: the body goes into these in order instead (buf is the first
  // part's, buf_len their total).
  std::span<const GetPart> parts;
  // GetRequest::on_parts_done of a GetParts with If-Match (else null).
  const std::function<void(size_t)>* on_parts_done = nullptr;
  std::optional<ByteRange> range;
  // GET: If-Match; copies: the source's x-amz-copy-source-if-match (for
  // the 412 message).
  std::string if_match;
  CancelTokenPtr cancel;  // the caller's; may be null

  // ---- writes ----
  // The request body (PUT / POST); null: none. Re-sent from its start on
  // every attempt.
  const Body* upload = nullptr;
  // Hex SHA-256 of the body, or UNSIGNED-PAYLOAD (Content-MD5 protects it).
  std::string payload_hash = std::string(sigv4::kEmptyPayloadSha256);
  // A 2xx body may be an <Error> (CopyObject, UploadPartCopy, Complete):
  // it is then classified like the status its code names, and retried so.
  bool error_in_2xx = false;
  // Non-null: a 2xx body must be this XML result element with a non-empty
  // <ETag> (CopyObjectResult, CopyPartResult, ...). One without is a reply
  // the server did not finish: Transient and retried (the operations that
  // set it are idempotent; a retried Complete is settled by its NotFound).
  const char* result_root = nullptr;
  // Non-empty: a 2xx reply's ETag must be this (the hex MD5 of the body),
  // else the server stored other bytes: Corruption.
  std::string expect_etag;
  // Server-side work that may take minutes before and while answering
  // (Complete, copies): S3Config::slow_op_timeout, no first-byte or
  // low-speed cut.
  bool slow = false;
};

struct S3Store::Reply {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;                            // LIST, write-result and error bodies
  size_t sink_bytes = 0;                       // GET bytes written into Call::buf
  // Set by the write callback when it aborts the transfer.
  bool overflow = false;
  bool ignored_range = false;
  bool body_too_large = false;
  // A non-2xx body reached kS3MaxErrorBody: the transfer was cut there.
  bool error_body_cut = false;
  // The progress callback aborted the transfer: Stop() or the caller.
  bool stopped = false;
  bool cancelled = false;
  const std::atomic<bool>* stopping = nullptr;
  // First-byte deadline: set when any response line arrives.
  bool responded = false;
  bool first_byte_timeout = false;
  std::chrono::steady_clock::time_point first_byte_deadline;
  // For a body: the deadline starts when the last byte was handed to curl.
  std::chrono::milliseconds first_byte_after_upload{0};
  // Upload state: bytes of Call::upload handed to curl in this attempt,
  // and why the read callback aborted (the file could not be read).
  uint64_t sent = 0;
  std::string upload_error;
  const Call* call = nullptr;
  CURL* curl = nullptr;
  // Early delivery (Call::on_parts_done): the reply's ETag and
  // Content-Range were checked at its first body byte (a failure aborts the
  // transfer with that status in early_error).
  bool headers_checked = false;
  Status early_error;
  // Parts handed to on_parts_done and their bytes. Kept across attempts:
  // once a part is handed out the call is not retried.
  size_t parts_done = 0;
  uint64_t parts_done_bytes = 0;

  void Reset() {
    status = 0;
    headers.clear();
    body.clear();
    sink_bytes = 0;
    overflow = ignored_range = body_too_large = error_body_cut = false;
    responded = first_byte_timeout = stopped = cancelled = false;
    sent = 0;
    upload_error.clear();
    headers_checked = false;
    early_error = Status::Ok();
  }
};

struct S3Store::Attempt {
  Status status;
  bool retry = false;  // Throttled, Transient, or a connect failure
};

}  // namespace dsfs
