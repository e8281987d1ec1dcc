// S3Store: ObjectStore over the S3 REST API (AWS S3, Huawei OBS, s3rver),
// with libcurl easy handles and SigV4.
//
// REQUIREMENT: the process calls curl_global_init(CURL_GLOBAL_DEFAULT)
// once, before the first S3Store is created and while no other thread
// runs (the daemon does it in main; tests in a gtest Environment).
// S3Store never calls it: it is not thread-safe and belongs to main.
//
// Connections: finished easy handles go back to a free list (at most
// S3Config::max_connections idle ones) and are reused, so the TCP/TLS
// connection stays alive across requests and threads. More concurrent
// requests than that still run; their extra handles are closed after use.
//
// Retries: Throttled (429, 503), Transient (other 5xx, reset, stall,
// timeout, short body) and connect failures are retried up to
// S3Config::max_retries times with full-jitter exponential backoff
// (uniform in [0, min(retry_cap, retry_base * 2^n)]). Nothing else is.
// A connect failure that outlasts the retries is Unavailable:
// "cannot connect to <host:port>: <curl error>".
//
// Bounds: a non-2xx body is read up to 64 KiB and the transfer is cut
// there (an error body that never ends costs nothing); the reply is then
// classified by its HTTP status. A 3xx is an IoError naming the endpoint,
// region or addressing as wrong. A size over S3's 5 TiB maximum is a bad
// reply (Corruption).
//
// Cancellation: Stop() aborts every transfer in flight (within ~1 s: curl
// polls the progress callback about once a second while idle) and makes
// every later request fail at once with Cancelled, backoff sleeps
// included; the daemon calls it on shutdown so no thread waits for a
// black-holed origin. A request's cancel token (ListRequest/GetRequest)
// aborts that one request the same way (a FUSE interrupt, a closed file).
//
// Writes (s3_writes.cc), all signed with SigV4 (query parameters in the
// canonical request) and retried like reads; a body is re-sent from its
// start on every attempt (the read callback restarts at body.offset; curl
// rewinds through the seek callback):
//   PutObject      PUT /key, Content-Length, Content-MD5 (base64 MD5 of the
//                  body, read from the staged range before the first
//                  attempt), Content-Type (application/octet-stream when
//                  unset), x-amz-meta-<name> per ObjectAttrs::meta,
//                  x-amz-content-sha256: UNSIGNED-PAYLOAD (Content-MD5 is
//                  what protects the body: S3 refuses bytes that do not
//                  match it, and hashing a 5 GiB part twice for the
//                  signature would cost a third read). The reply's ETag
//                  must be the body's hex MD5, else Corruption.
//   CopyObject     PUT /key, x-amz-copy-source: /bucket/<URI-encoded key>,
//                  x-amz-copy-source-if-match: "etag" (when set),
//                  x-amz-metadata-directive: REPLACE + Content-Type and
//                  x-amz-meta-* (attrs set) or COPY; <CopyObjectResult>.
//   Create         POST /key?uploads=, Content-Type, x-amz-meta-*;
//                  <InitiateMultipartUploadResult><UploadId>.
//   UploadPart     PUT /key?partNumber=N&uploadId=ID, as PutObject without
//                  attrs (ETag = the part's MD5, else Corruption); or, with
//                  a copy source (UploadPartCopy), x-amz-copy-source,
//                  x-amz-copy-source-range: bytes=a-b and
//                  x-amz-copy-source-if-match; <CopyPartResult>.
//   Complete       POST /key?uploadId=ID, Content-Type: application/xml,
//                  <CompleteMultipartUpload> of <Part><PartNumber>,<ETag>,
//                  its SHA-256 signed. A retry that finds the upload gone
//                  (NoSuchUpload) is a success when the object has the
//                  parts' multipart ETag.
//   Abort          DELETE /key?uploadId=ID; NoSuchUpload (404) is OK.
//   DeleteObject   DELETE /key; 204 and 404 are OK.
// Copies and Complete may answer 200 and then fail in the body: an <Error>
// in a 2xx body is classified like the status its code names (InternalError
// 500: Transient, retried). They run under S3Config::slow_op_timeout with
// no first-byte or low-speed cut (S3 may work for minutes, sending
// whitespace); an attempt with a body gets request_timeout plus
// length / upload_min_rate, and its first-byte deadline starts when the
// body has been sent. A staged file that cannot be read is IoError, not
// retried. Metrics: dsfs_s3_requests_total{op="PUT"} etc. (attempts, like
// every request) and dsfs_s3_bytes_written_total.
//
// Secrets: no log line or Status carries the secret key, the session
// token, the Authorization header or a signature (no CURLOPT_VERBOSE;
// server-provided text is scrubbed of the secret and token).
//
// Lock order: pool_mu_, rng_mu_ and stop_mu_ are leaves and never held
// together.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backends/object_store.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"

namespace dsfs {

// S3Config::region when set; else the <region> of an OBS host
// "obs.<region>.myhuaweicloud.com" (also "<bucket>.obs.<region>...") or of
// an AWS host "s3.<region>.amazonaws.com"; else "us-east-1".
[[nodiscard]] std::string ResolveRegion(const S3Config& config);

struct S3Endpoint {
  std::string scheme;     // "http" or "https"
  std::string host;       // "obs.cn-north-4.myhuaweicloud.com", "127.0.0.1", "[::1]"
  std::string host_port;  // host, plus ":port" when the URL named a port
};

// "scheme://host[:port][/]" -> S3Endpoint. InvalidArgument for another
// scheme, a missing host, a bad port or a path.
[[nodiscard]] Result<S3Endpoint> ParseEndpoint(const std::string& url);

class S3Store : public ObjectStore {
 public:
  // Validates the endpoint, the bucket name and the credentials.
  [[nodiscard]] static Result<std::unique_ptr<S3Store>> Create(const S3Config& config,
                                                               Credentials creds,
                                                               std::string bucket,
                                                               Metrics* metrics);

  // Prefer Create(). With an invalid endpoint every operation fails with
  // the InvalidArgument that Create() would have returned.
  // metrics may be null; it must outlive the store.
  S3Store(const S3Config& config, Credentials creds, std::string bucket, Metrics* metrics);
  ~S3Store() override;
  S3Store(const S3Store&) = delete;
  S3Store& operator=(const S3Store&) = delete;

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  // The body is written straight into the parts (no copy).
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override;
  Result<PutResult> Put(const PutRequest& request) override;
  Result<PutResult> Copy(const CopyRequest& request) override;
  Result<std::string> CreateMultipartUpload(const std::string& key,
                                            const ObjectAttrs& attrs) override;
  Result<std::string> UploadPart(const UploadPartRequest& request) override;
  Result<PutResult> CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                            const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override;
  Status Delete(const std::string& key) override;
  // "s3://bucket@host:port"
  std::string Describe() const override;

  // Aborts every request in flight and fails every later one with
  // Cancelled ("shutting down"). Idempotent; thread-safe.
  void Stop();
  bool stopped() const { return stopping_.load(); }

  // Region used in signatures (ResolveRegion of the config).
  const std::string& region() const { return region_; }
  // Idle pooled handles, for tests of connection reuse.
  size_t idle_handles() const;

 private:
  struct Call;
  struct Reply;
  // Get and GetParts (parts empty: into buf).
  Result<GetResult> GetInto(const GetRequest& request, char* buf, size_t buf_len,
                            std::span<const GetPart> parts);
  struct Attempt;

  // libcurl callbacks; userp is a Reply*.
  static size_t OnHeader(char* data, size_t size, size_t nitems, void* userp);
  static size_t OnBody(char* data, size_t size, size_t nmemb, void* userp);
  static int OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
  // Request bodies (s3_writes.cc): reads Call::upload from Reply::sent.
  static size_t OnUpload(char* buffer, size_t size, size_t nitems, void* userp);
  static int OnSeek(void* userp, curl_off_t offset, int origin);

  // One HTTP exchange with retries; *reply holds the last attempt's reply.
  Status Execute(const Call& call, Reply* reply);
  // One HTTP exchange.
  Attempt PerformOnce(const Call& call, Reply* reply);
  // Maps a non-2xx reply to a Status; *retry says whether to try again.
  Status MapHttpError(const Call& call, const Reply& reply, bool* retry) const;
  // Checks a 2xx GET reply against what was asked.
  Status ValidateGet(const Call& call, const Reply& reply) const;
  // The part of ValidateGet that the headers decide: the version
  // (If-Match) and the Content-Range.
  static Status CheckGetHeaders(const Call& call, const Reply& reply);
  // Checks a 2xx reply to a write: an <Error> body, the ETag of a body.
  Status ValidateWrite(const Call& call, const Reply& reply, bool* retry) const;
  // Sets the method and body options of a write on a handle.
  void SetUpWrite(CURL* h, const Call& call, Reply* reply);
  // The wall-clock deadline of one attempt.
  std::chrono::milliseconds AttemptTimeout(const Call& call) const;
  // dsfs_s3_errors_total{kind}: an operation failed (NotFound excluded).
  void CountError(const Status& status);
  // x-amz-copy-source of a key of this bucket.
  std::string CopySource(const std::string& key) const;
  // Removes the secret and token from server-provided text.
  std::string Scrub(std::string text) const;
  std::string PathFor(const std::string& key) const;
  std::string HostHeader() const;
  std::chrono::milliseconds BackoffDelay(int retry);
  // Sleeps `delay` unless Stop() or the call's cancel check comes first;
  // false when it was cut short.
  bool SleepUnlessCancelled(const Call& call, std::chrono::milliseconds delay);
  // The Cancelled status for a stopped store or a cancelled call, or OK.
  Status CancelStatus(const Call& call) const;

  CURL* AcquireHandle();
  void ReleaseHandle(CURL* handle);

  const S3Config config_;
  const Credentials creds_;
  const std::string bucket_;
  const std::string region_;
  Status endpoint_status_;  // not OK when the endpoint URL is invalid
  S3Endpoint endpoint_;

  // Null when the store was made without metrics. Requests, latencies,
  // retries and errors are series split by op (Call::op) or by kind (the
  // StatusCode), looked up per request: a map lookup is nothing next to an
  // HTTP round trip, and the set of ops and kinds stays the registry's.
  Metrics* metrics_ = nullptr;
  Counter* bytes_read_ = nullptr;     // GET body bytes delivered
  Counter* bytes_written_ = nullptr;  // PUT and part bodies of successful writes

  mutable std::mutex pool_mu_;
  std::vector<CURL*> idle_;  // guarded by pool_mu_

  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_

  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;               // only pairs with stop_cv_
  std::condition_variable stop_cv_;  // wakes backoff sleeps on Stop()
};

}  // namespace dsfs
