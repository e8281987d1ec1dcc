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
  struct Attempt;

  // libcurl callbacks; userp is a Reply*.
  static size_t OnHeader(char* data, size_t size, size_t nitems, void* userp);
  static size_t OnBody(char* data, size_t size, size_t nmemb, void* userp);
  static int OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

  // One HTTP exchange with retries; *reply holds the last attempt's reply.
  Status Execute(const Call& call, Reply* reply);
  // One HTTP exchange.
  Attempt PerformOnce(const Call& call, Reply* reply);
  // Maps a non-2xx reply to a Status; *retry says whether to try again.
  Status MapHttpError(const Call& call, const Reply& reply, bool* retry) const;
  // Checks a 2xx GET reply against what was asked.
  Status ValidateGet(const Call& call, const Reply& reply) const;
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

  Counter* requests_ = nullptr;    // every HTTP attempt
  Counter* retries_ = nullptr;     // attempts after the first
  Counter* errors_ = nullptr;      // operations that failed (NotFound excluded)
  Counter* bytes_read_ = nullptr;  // GET body bytes delivered

  mutable std::mutex pool_mu_;
  std::vector<CURL*> idle_;  // guarded by pool_mu_

  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_

  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;               // only pairs with stop_cv_
  std::condition_variable stop_cv_;  // wakes backoff sleeps on Stop()
};

}  // namespace dsfs
