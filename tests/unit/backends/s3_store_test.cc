// S3Store against a scripted HTTP server on 127.0.0.1 (no network mock
// library): request shapes, error mapping, retries, short bodies, timeouts.
#include "backends/s3_store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "backends/sigv4.h"
#include "scripted_http_server.h"

namespace dsfs {
namespace {

using testing::ScriptedHttpServer;

constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kToken[] = "FwoGZXIvYXdzEXAMPLETOKEN";

class S3StoreTest : public ::testing::Test {
 protected:
  // S3Store requires curl_global_init by its user (the daemon's main).
  static void SetUpTestSuite() { ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  S3Config Config() const {
    S3Config c;
    c.endpoint = server_.url();
    c.path_style = true;
    c.region = "us-east-1";
    c.max_retries = 2;
    c.retry_base = std::chrono::milliseconds(1);
    c.retry_cap = std::chrono::milliseconds(5);
    c.connect_timeout = std::chrono::milliseconds(2000);
    c.request_timeout = std::chrono::milliseconds(5000);
    return c;
  }
  static Credentials Creds(bool token = false) {
    Credentials c;
    c.access_key = "AKIAIOSFODNN7EXAMPLE";
    c.secret_key = kSecret;
    if (token) c.session_token = kToken;
    return c;
  }
  std::unique_ptr<S3Store> Store(const S3Config& config, bool token = false) {
    auto s = S3Store::Create(config, Creds(token), "bkt", &metrics_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<S3Store> Store() { return Store(Config()); }
  uint64_t Metric(const char* name) { return metrics_.CounterTotal(name); }

  static void ExpectNoSecrets(const Status& s) {
    EXPECT_EQ(s.message().find(kSecret), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(kToken), std::string::npos) << s.message();
  }

  ScriptedHttpServer server_;
  Metrics metrics_;
};

// Recomputes the signature of a request as the server received it.
std::string ExpectedAuthorization(const ScriptedHttpServer::Request& r, const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& query,
                                  const Credentials& creds) {
  sigv4::Request s;
  s.method = r.method;
  s.path = path;
  s.query = query;
  for (const char* h : {"host", "range", "if-match"}) {
    auto it = r.headers.find(h);
    if (it != r.headers.end()) s.headers.emplace_back(h, it->second);
  }
  s.payload_hash = r.headers.at("x-amz-content-sha256");
  std::tm tm{};
  strptime(r.headers.at("x-amz-date").c_str(), "%Y%m%dT%H%M%SZ", &tm);
  return sigv4::Sign(&s, creds, "us-east-1", timegm(&tm));
}

TEST_F(S3StoreTest, HeadParsesHeadersAndSignsWhatItSends) {
  server_.Push(ScriptedHttpServer::Reply(200, std::string(1234, 'x'),
                                         {{"ETag", "\"d41d8cd98f00b204e9800998ecf8427e\""},
                                          {"Last-Modified", "Wed, 12 Oct 2009 17:50:30 GMT"},
                                          {"Content-Type", "application/octet-stream"},
                                          {"x-amz-meta-mode", "33188"},
                                          {"X-Amz-Meta-UID", "1000"},
                                          {"x-amz-meta-mtime", "1700000000"},
                                          {"x-amz-request-id", "R1"}},
                                         /*head=*/true));
  auto store = Store(Config(), /*token=*/true);
  auto info = store->Head("dir/a b+c.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, "dir/a b+c.bin");
  EXPECT_EQ(info->size, 1234u);
  EXPECT_EQ(info->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(info->mtime_sec, 1255369830);
  EXPECT_EQ(info->content_type, "application/octet-stream");
  EXPECT_EQ(info->meta.size(), 3u);
  EXPECT_EQ(info->meta["mode"], "33188");
  EXPECT_EQ(info->meta["uid"], "1000");
  EXPECT_EQ(info->meta["mtime"], "1700000000");

  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "HEAD");
  EXPECT_EQ(reqs[0].target, "/bkt/dir/a%20b%2Bc.bin");
  EXPECT_EQ(reqs[0].headers["host"], "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_EQ(reqs[0].headers["x-amz-security-token"], kToken);
  EXPECT_EQ(reqs[0].headers["authorization"],
            ExpectedAuthorization(reqs[0], "/bkt/dir/a b+c.bin", {}, Creds(true)));
  EXPECT_NE(reqs[0].headers["authorization"].find("x-amz-security-token"), std::string::npos);
  EXPECT_EQ(store->region(), "us-east-1");
}

TEST_F(S3StoreTest, HeadNotFoundIsNotRetried) {
  server_.Push(ScriptedHttpServer::Reply(404, "", {}, true));
  auto info = Store()->Head("missing");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound);
  EXPECT_NE(info.status().message().find("'missing'"), std::string::npos);
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(Metric("dsfs_s3_errors_total"), 0u);  // NotFound is not an error
}

TEST_F(S3StoreTest, Retries503ThenSucceeds) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(503, "SlowDown", "Please reduce your rate"));
  server_.Push(ScriptedHttpServer::Reply(200, "0123456789"));
  char buf[10];
  auto n = Store()->Get({"k", std::nullopt, ""}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 10u);
  EXPECT_EQ(std::string(buf, 10), "0123456789");
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(Metric("dsfs_s3_requests_total"), 2u);
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 1u);
  EXPECT_EQ(metrics_.GetCounter("dsfs_s3_retries_total", "", {{"kind", "throttled"}}).value(), 1u);
  EXPECT_EQ(metrics_.GetCounter("dsfs_s3_requests_total", "", {{"op", "GET"}}).value(), 2u);
  // Each attempt timed, under its operation.
  EXPECT_EQ(metrics_.GetHistogram("dsfs_s3_request_seconds", "", {{"op", "GET"}}).Read().count, 2u);
  EXPECT_EQ(Metric("dsfs_s3_errors_total"), 0u);
  EXPECT_EQ(Metric("dsfs_s3_bytes_read_total"), 10u);
}

TEST_F(S3StoreTest, ThrottledAfterRetriesAreExhausted) {
  for (int i = 0; i < 3; ++i) {
    server_.Push(ScriptedHttpServer::S3ErrorReply(i == 1 ? 429 : 503, "SlowDown", "slow down"));
  }
  auto info = Store()->Head("k");  // HEAD: no body, mapped by status
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kThrottled);
  EXPECT_EQ(server_.request_count(), 3u);  // 1 + max_retries
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 2u);
  EXPECT_EQ(Metric("dsfs_s3_errors_total"), 1u);
  EXPECT_EQ(metrics_.GetCounter("dsfs_s3_errors_total", "", {{"kind", "throttled"}}).value(), 1u);
  EXPECT_EQ(metrics_.GetCounter("dsfs_s3_requests_total", "", {{"op", "HEAD"}}).value(), 3u);
}

TEST_F(S3StoreTest, Other5xxIsTransient) {
  for (int i = 0; i < 3; ++i) {
    server_.Push(ScriptedHttpServer::S3ErrorReply(500, "InternalError", "We encountered"));
  }
  char buf[4];
  auto n = Store()->Get({"k", ByteRange{0, 4}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
  EXPECT_NE(n.status().message().find("500 InternalError"), std::string::npos)
      << n.status().message();
  EXPECT_EQ(server_.request_count(), 3u);
}

TEST_F(S3StoreTest, NoSuchBucket) {
  server_.Push(
      ScriptedHttpServer::S3ErrorReply(404, "NoSuchBucket", "The specified bucket does not exist"));
  auto page = Store()->List({});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(page.status().message(), "bucket 'bkt' does not exist");
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, NoSuchKeyGetIsNotRetried) {
  server_.Push(
      ScriptedHttpServer::S3ErrorReply(404, "NoSuchKey", "The specified key does not exist."));
  char buf[8];
  auto n = Store()->Get({"gone", ByteRange{0, 8}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 0u);
}

TEST_F(S3StoreTest, Forbidden403KeepsCodeButNeverTheSecret) {
  // A hostile or buggy server echoing the secret: it must be scrubbed.
  server_.Push(ScriptedHttpServer::S3ErrorReply(
      403, "SignatureDoesNotMatch",
      std::string("The request signature we calculated does not match; key ") + kSecret +
          " token " + kToken));
  char buf[8];
  auto n = Store(Config(), true)->Get({"k", ByteRange{0, 8}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kAccessDenied);
  EXPECT_NE(n.status().message().find("403 SignatureDoesNotMatch"), std::string::npos)
      << n.status().message();
  EXPECT_NE(n.status().message().find("<redacted>"), std::string::npos);
  ExpectNoSecrets(n.status());
  EXPECT_EQ(server_.request_count(), 1u);

  server_.Push(ScriptedHttpServer::S3ErrorReply(403, "InvalidAccessKeyId", "x", true));
  auto info = Store()->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kAccessDenied);
  EXPECT_NE(info.status().message().find("403"), std::string::npos);
}

TEST_F(S3StoreTest, IfMatchAnd412) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(412, "PreconditionFailed", "At least one..."));
  char buf[8];
  auto n = Store()->Get({"k", ByteRange{0, 8}, "abc123"}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kPreconditionFailed);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["if-match"], "\"abc123\"");
}

TEST_F(S3StoreTest, GetReportsTheVersionItReturned) {
  server_.Push(ScriptedHttpServer::Reply(206, "abcd", {{"Content-Range", "bytes 0-3/10"},
                                                        {"ETag", "\"v1\""}}));
  char buf[8];
  auto n = Store()->Get({"k", ByteRange{0, 4}, "v1"}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 4u);
  EXPECT_EQ(n->etag, "v1");
  EXPECT_EQ(n->source, DataSource::kObjectStore);
}

// GetParts: one request, the body split over the parts in order (one
// ranged GET fills several cache blocks, each its own buffer).
TEST_F(S3StoreTest, GetPartsFillsEachPartFromOneRequest) {
  const std::string body = "0123456789abcdefghij";
  server_.Push(ScriptedHttpServer::Reply(206, body, {{"Content-Range", "bytes 100-119/1000"},
                                                      {"ETag", "\"v1\""}}));
  char a[7], b[3], c[10];
  const GetPart parts[] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
  auto n = Store()->GetParts({"k", ByteRange{100, 20}, "v1"}, parts);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 20u);
  EXPECT_EQ(n->etag, "v1");
  EXPECT_EQ(std::string(a, 7) + std::string(b, 3) + std::string(c, 10), body);
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(server_.requests()[0].headers["range"], "bytes=100-119");
  // Parts that do not hold the range exactly are refused before any request.
  auto bad = Store()->GetParts({"k", ByteRange{100, 21}, "v1"}, parts);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 1u);
}

// on_parts_done: each part goes to the caller as soon as its bytes are in,
// while the reply goes on (here it never ends: the callback cancels it).
TEST_F(S3StoreTest, GetPartsHandsOutEachPartAsItsBytesArrive) {
  const std::string body = "0123456789abcdefghij";
  const auto full = ScriptedHttpServer::Reply(
      206, body, {{"Content-Range", "bytes 100-119/1000"}, {"ETag", "\"v1\""}});
  // The headers and the first 10 body bytes (parts 0 and 1), then silence.
  server_.Push(ScriptedHttpServer::RespondThenHang(full, full.raw.size() - 10));
  char a[7], b[3], c[10];
  const GetPart parts[] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
  auto cancel = std::make_shared<CancelToken>();
  std::vector<size_t> calls;
  std::string seen;
  GetRequest req{"k", ByteRange{100, 20}, "v1", cancel};
  req.on_parts_done = [&](size_t n) {
    calls.push_back(n);
    seen = std::string(a, 7) + std::string(b, 3);
    cancel->Cancel();
  };
  auto n = Store()->GetParts(req, parts);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kCancelled) << n.status().ToString();
  EXPECT_EQ(calls, std::vector<size_t>{2});
  EXPECT_EQ(seen, body.substr(0, 10));
  EXPECT_EQ(server_.request_count(), 1u);
}

// A reply cut after a part went out is not retried (a retry would write
// into the part the caller holds): the call fails, the caller fetches the
// rest. Without on_parts_done the same reply is retried.
TEST_F(S3StoreTest, GetPartsIsNotRetriedOncePartsAreOut) {
  const std::string body = "0123456789abcdefghij";
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Range", "bytes 100-119/1000"}, {"ETag", "\"v1\""}};
  auto cut = [&] {
    auto step = ScriptedHttpServer::Reply(206, body.substr(0, 10), headers, false, 20);
    step.action = ScriptedHttpServer::Action::kRespondAndClose;
    return step;
  };
  char a[7], b[3], c[10];
  const GetPart parts[] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
  {
    server_.Push(cut());  // a retry would find the script exhausted (500)
    std::vector<size_t> calls;
    GetRequest req{"k", ByteRange{100, 20}, "v1"};
    req.on_parts_done = [&](size_t n) { calls.push_back(n); };
    auto n = Store()->GetParts(req, parts);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), StatusCode::kTransient) << n.status().ToString();
    EXPECT_EQ(calls, std::vector<size_t>{2});
    EXPECT_EQ(std::string(a, 7) + std::string(b, 3), body.substr(0, 10));
    EXPECT_EQ(server_.request_count(), 1u);
  }
  {
    server_.Push(cut());
    server_.Push(ScriptedHttpServer::Reply(206, body, headers));
    auto n = Store()->GetParts({"k", ByteRange{100, 20}, "v1"}, parts);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(server_.request_count(), 3u);
  }
}

// Nothing is handed out of a reply of another version or another range, nor
// without If-Match (no version to bind the parts to), nor from a 5xx body.
TEST_F(S3StoreTest, GetPartsHandsOutNothingUnbound) {
  const std::string body = "0123456789abcdefghij";
  char a[7], b[3], c[10];
  const GetPart parts[] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
  int calls = 0;
  auto req = [&](const std::string& if_match) {
    GetRequest r{"k", ByteRange{100, 20}, if_match};
    r.on_parts_done = [&](size_t) { ++calls; };
    return r;
  };
  server_.Push(ScriptedHttpServer::Reply(206, body, {{"Content-Range", "bytes 100-119/1000"},
                                                     {"ETag", "\"v2\""}}));
  auto other_version = Store()->GetParts(req("v1"), parts);
  ASSERT_FALSE(other_version.ok());
  EXPECT_EQ(other_version.status().code(), StatusCode::kPreconditionFailed);

  S3Config once = Config();
  once.max_retries = 0;
  server_.Push(ScriptedHttpServer::Reply(206, body, {{"Content-Range", "bytes 0-19/1000"},
                                                     {"ETag", "\"v1\""}}));
  auto other_range = Store(once)->GetParts(req("v1"), parts);
  ASSERT_FALSE(other_range.ok());
  EXPECT_EQ(other_range.status().code(), StatusCode::kTransient);

  server_.Push(ScriptedHttpServer::S3ErrorReply(500, "InternalError", "busy"));
  auto error = Store(once)->GetParts(req("v1"), parts);
  ASSERT_FALSE(error.ok());

  server_.Push(ScriptedHttpServer::Reply(206, body, {{"Content-Range", "bytes 100-119/1000"},
                                                     {"ETag", "\"v1\""}}));
  auto unpinned = Store()->GetParts(req(""), parts);
  ASSERT_TRUE(unpinned.ok()) << unpinned.status().ToString();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(server_.request_count(), 4u);
}

TEST_F(S3StoreTest, ReplyOfAnotherVersionIsPreconditionFailedNotRetried) {
  // A server that ignores If-Match (s3rver does) answers with the new version.
  server_.Push(ScriptedHttpServer::Reply(206, "abcd", {{"Content-Range", "bytes 0-3/10"},
                                                        {"ETag", "\"v2\""}}));
  char buf[8];
  std::memset(buf, 0, sizeof(buf));
  auto n = Store()->Get({"k", ByteRange{0, 4}, "v1"}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kPreconditionFailed) << n.status().ToString();
  EXPECT_EQ(ToErrno(n.status()), ESTALE);
  EXPECT_NE(n.status().message().find("'v2'"), std::string::npos) << n.status().message();
  EXPECT_EQ(server_.request_count(), 1u);
  // A reply without an ETag cannot prove its version either.
  server_.Push(ScriptedHttpServer::Reply(206, "abcd", {{"Content-Range", "bytes 0-3/10"}}));
  n = Store()->Get({"k", ByteRange{0, 4}, "v1"}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kPreconditionFailed);
}

TEST_F(S3StoreTest, ContentRangeWithAnotherEndIsRetriedThenTransient) {
  for (int i = 0; i < 3; ++i) {
    server_.Push(
        ScriptedHttpServer::Reply(206, "abcdefghij", {{"Content-Range", "bytes 100-119/1000"}}));
  }
  char buf[16];
  auto n = Store()->Get({"k", ByteRange{100, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
  EXPECT_NE(n.status().message().find("is not bytes 100-109"), std::string::npos)
      << n.status().message();
  EXPECT_EQ(server_.request_count(), 3u);
}

TEST_F(S3StoreTest, BadRequestIsInvalidArgument) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(400, "InvalidArgument", "bad"));
  char buf[8];
  auto n = Store()->Get({"k", ByteRange{0, 8}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, RangedGetSendsRangeAndChecksContentRange) {
  server_.Push(
      ScriptedHttpServer::Reply(206, "abcdefghij", {{"Content-Range", "bytes 100-109/1000"}}));
  char buf[16];
  auto store = Store();
  auto n = store->Get({"big/shard", ByteRange{100, 10}, ""}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 10u);
  EXPECT_EQ(std::string(buf, 10), "abcdefghij");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/bkt/big/shard");
  EXPECT_EQ(reqs[0].headers["range"], "bytes=100-109");
  EXPECT_EQ(reqs[0].headers["authorization"],
            ExpectedAuthorization(reqs[0], "/bkt/big/shard", {}, Creds()));

  // Wrong start in Content-Range: never accepted, retried, then Transient.
  for (int i = 0; i < 3; ++i) {
    server_.Push(
        ScriptedHttpServer::Reply(206, "abcdefghij", {{"Content-Range", "bytes 0-9/1000"}}));
  }
  n = store->Get({"big/shard", ByteRange{100, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
  EXPECT_NE(n.status().message().find("Content-Range"), std::string::npos);
}

TEST_F(S3StoreTest, ShortBodyWithResetIsRetriedThenSucceeds) {
  // Promises 10 bytes, sends 4, closes: curl reports a partial file.
  server_.Push(
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n"
       "Content-Length: 10\r\n\r\nabcd",
       ScriptedHttpServer::Action::kRespondAndClose});
  server_.Push(ScriptedHttpServer::CloseNow());  // and a reset before any reply
  server_.Push(ScriptedHttpServer::Reply(206, "0123456789", {{"Content-Range", "bytes 0-9/10"}}));
  char buf[10];
  auto n = Store()->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(buf, 10), "0123456789");
  EXPECT_EQ(server_.request_count(), 3u);
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 2u);
}

TEST_F(S3StoreTest, ShortBodyIsTransientNeverAShortSuccess) {
  // A well-formed reply that is simply shorter than the range asked for.
  for (int i = 0; i < 3; ++i) {
    server_.Push(ScriptedHttpServer::Reply(206, "01234", {{"Content-Range", "bytes 0-4/5"}}));
  }
  char buf[10];
  auto n = Store()->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
  // The reply says it holds 5 bytes of a 5-byte object: not the range asked for.
  EXPECT_NE(n.status().message().find("Content-Range 'bytes 0-4/5' is not bytes 0-9"),
            std::string::npos)
      << n.status().message();
  EXPECT_EQ(server_.request_count(), 3u);
}

TEST_F(S3StoreTest, WholeObjectGetChecksContentLengthAndBuffer) {
  server_.Push(ScriptedHttpServer::Reply(200, "hello"));
  char buf[8];
  auto store = Store();
  auto n = store->Get({"k", std::nullopt, ""}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 5u);
  // Larger than the buffer: refused, not retried, nothing written past it.
  server_.Push(ScriptedHttpServer::Reply(200, std::string(100, 'z')));
  char small[9] = {0};
  n = store->Get({"k", std::nullopt, ""}, small, 8);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(n.status().message().find("larger than the 8-byte buffer"), std::string::npos);
  EXPECT_EQ(small[8], 0);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(S3StoreTest, RangedGetAnsweredWithWholeObjectIsRefused) {
  server_.Push(ScriptedHttpServer::Reply(200, std::string(1000, 'a')));
  char buf[10];
  auto n = Store()->Get({"k", ByteRange{10, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(n.status().message().find("Range"), std::string::npos);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, BufferTooSmallForRangeFailsBeforeAnyRequest) {
  char buf[4];
  auto n = Store()->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  n = Store()->Get({"k", ByteRange{0, 0}, ""}, buf, sizeof(buf));
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(S3StoreTest, ListQueryEncodingAndDecodedKeys) {
  server_.Push(ScriptedHttpServer::Reply(200, R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>bkt</Name><Prefix>dir%2Fa+b%2Bc</Prefix><EncodingType>url</EncodingType>
<IsTruncated>true</IsTruncated><NextContinuationToken>next/+=</NextContinuationToken>
<Contents><Key>dir/a+b%2Bc%20x</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>
<ETag>"e1"</ETag><Size>7</Size></Contents>
<CommonPrefixes><Prefix>dir/a+b%2Bc/sub/</Prefix></CommonPrefixes></ListBucketResult>)"));
  ListRequest req;
  req.prefix = "dir/a b+c";
  req.delimiter = "/";
  req.continuation = "tok/+=";
  req.max_keys = 5;
  auto page = Store()->List(req);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "dir/a b+c x");
  EXPECT_EQ(page->objects[0].size, 7u);
  EXPECT_EQ(page->objects[0].etag, "e1");
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"dir/a b+c/sub/"});
  EXPECT_EQ(page->next_continuation, "next/+=");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target,
            "/bkt?continuation-token=tok%2F%2B%3D&delimiter=%2F&encoding-type=url&"
            "list-type=2&max-keys=5&prefix=dir%2Fa%20b%2Bc");
  EXPECT_EQ(reqs[0].headers["authorization"],
            ExpectedAuthorization(reqs[0], "/bkt",
                                  {{"list-type", "2"},
                                   {"encoding-type", "url"},
                                   {"prefix", "dir/a b+c"},
                                   {"delimiter", "/"},
                                   {"continuation-token", "tok/+="},
                                   {"max-keys", "5"}},
                                  Creds()));
}

TEST_F(S3StoreTest, ListGarbageIsInvalidArgument) {
  server_.Push(ScriptedHttpServer::Reply(200, "<ListBucketResult><Contents><Key>a</Key>"));
  auto page = Store()->List({});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("malformed"), std::string::npos);
}

TEST_F(S3StoreTest, ConnectionsAreReused) {
  for (int i = 0; i < 5; ++i) server_.Push(ScriptedHttpServer::Reply(200, "", {}, true));
  auto store = Store();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Head("k" + std::to_string(i)).ok());
  EXPECT_EQ(server_.connections(), 1);
  EXPECT_EQ(store->idle_handles(), 1u);
}

TEST_F(S3StoreTest, ConcurrentRequestsShareThePool) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 10;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    server_.Push(ScriptedHttpServer::Reply(200, "", {{"ETag", "\"e\""}}, true));
  }
  S3Config cfg = Config();
  cfg.max_connections = 4;
  auto store = Store(cfg);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) ok += store->Head("k").ok() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_LE(store->idle_handles(), 4u);
  EXPECT_LE(server_.connections(), kThreads);
}

TEST_F(S3StoreTest, ConnectionRefusedIsUnavailable) {
  // A port that was free a moment ago: nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  S3Config cfg = Config();
  cfg.endpoint = "http://127.0.0.1:" + std::to_string(port);
  auto store = Store(cfg);
  auto info = store->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(info.status().message().rfind(
                "cannot connect to 127.0.0.1:" + std::to_string(port) + ": ", 0),
            0u)
      << info.status().message();
  EXPECT_EQ(Metric("dsfs_s3_requests_total"), 3u);  // retried like a transient error
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 2u);
}

// A listener whose accept queue is full drops new SYNs, like a black-holed
// endpoint: the connect timeout must end it, as Unavailable.
TEST_F(S3StoreTest, BlackHoledEndpointHitsConnectTimeout) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 0), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  // Fill the queue; a second probe tells whether SYNs are now dropped.
  std::vector<int> fillers;
  bool black_hole = false;
  for (int i = 0; i < 4 && !black_hole; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    fillers.push_back(c);
    ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    pollfd p{c, POLLOUT, 0};
    black_hole = ::poll(&p, 1, 300) == 0;  // still connecting after 300 ms
  }
  if (!black_hole) {
    for (int c : fillers) ::close(c);
    ::close(lfd);
    GTEST_SKIP() << "this kernel completes connections to a full listener";
  }
  S3Config cfg = Config();
  cfg.endpoint = "http://127.0.0.1:" + std::to_string(port);
  cfg.connect_timeout = std::chrono::milliseconds(200);
  cfg.max_retries = 1;
  auto info = Store(cfg)->Head("k");
  for (int c : fillers) ::close(c);
  ::close(lfd);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kUnavailable) << info.status().ToString();
  EXPECT_EQ(info.status().message().rfind("cannot connect to 127.0.0.1:" + std::to_string(port), 0),
            0u)
      << info.status().message();
  EXPECT_EQ(Metric("dsfs_s3_requests_total"), 2u);
}

TEST_F(S3StoreTest, SilentServerHitsRequestTimeout) {
  server_.Push(ScriptedHttpServer::Hang());
  server_.Push(ScriptedHttpServer::Hang());
  S3Config cfg = Config();
  cfg.request_timeout = std::chrono::milliseconds(200);
  cfg.max_retries = 1;
  auto info = Store(cfg)->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kTransient);
  // Client-side count: the server may record a request only after the
  // client gave up on it, so its own count is racy here.
  EXPECT_EQ(Metric("dsfs_s3_requests_total"), 2u);
}

TEST_F(S3StoreTest, FirstByteStallIsCutAndRetried) {
  // The first attempt is never answered; the request deadline is far away
  // (60 s), so only the first-byte deadline can end it. The retry succeeds.
  server_.Push(ScriptedHttpServer::Hang());
  server_.Push(ScriptedHttpServer::Reply(206, "0123456789",
                                         {{"Content-Range", "bytes 0-9/10"}}));
  S3Config cfg = Config();
  cfg.request_timeout = std::chrono::milliseconds(60000);
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.first_byte_timeout = std::chrono::milliseconds(300);
  cfg.max_retries = 1;
  char buf[10];
  auto n = Store(cfg)->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(buf, 10), "0123456789");
  EXPECT_EQ(Metric("dsfs_s3_requests_total"), 2u);
  EXPECT_EQ(Metric("dsfs_s3_retries_total"), 1u);
}

TEST_F(S3StoreTest, FirstByteStallFailsWithItsOwnReasonWhenNoRetryIsLeft) {
  server_.Push(ScriptedHttpServer::Hang());
  S3Config cfg = Config();
  cfg.request_timeout = std::chrono::milliseconds(60000);
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.first_byte_timeout = std::chrono::milliseconds(300);
  cfg.max_retries = 0;
  auto info = Store(cfg)->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kTransient);
  EXPECT_NE(info.status().message().find("timed out: no response within 300 ms"), std::string::npos)
      << info.status().message();
}

TEST_F(S3StoreTest, GetHasAWallClockDeadline) {
  // Headers and a trickle that satisfies the low-speed rule would go on
  // for ever; the request deadline ends the attempt.
  server_.Push(
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n"
       "Content-Length: 10\r\n\r\nab",
       ScriptedHttpServer::Action::kRespond});
  S3Config cfg = Config();
  cfg.max_retries = 0;
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.request_timeout = std::chrono::milliseconds(500);
  char buf[10];
  auto n = Store(cfg)->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
}

TEST_F(S3StoreTest, StalledBodyHitsLowSpeedLimit) {
  // Headers, 2 bytes, then silence: the low-speed rule (1 s) ends it.
  server_.Push(
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n"
       "Content-Length: 10\r\n\r\nab",
       ScriptedHttpServer::Action::kRespond});
  S3Config cfg = Config();
  cfg.max_retries = 0;
  cfg.low_speed_limit = 1000;
  cfg.low_speed_time = std::chrono::milliseconds(1000);
  char buf[10];
  auto n = Store(cfg)->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
}

TEST_F(S3StoreTest, VirtualHostedAddressing) {
  server_.Push(ScriptedHttpServer::Reply(200, "", {}, true));
  S3Config cfg = Config();
  cfg.endpoint = "http://localhost:" + std::to_string(server_.port());
  cfg.path_style = false;
  auto store = Store(cfg);
  auto info = store->Head("a/b");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/a/b");
  EXPECT_EQ(reqs[0].headers["host"], "bkt.localhost:" + std::to_string(server_.port()));
  EXPECT_EQ(store->Describe(), "s3://bkt@localhost:" + std::to_string(server_.port()));
}

TEST_F(S3StoreTest, DotSegmentsAreSentAsIs) {
  server_.Push(ScriptedHttpServer::Reply(200, "", {}, true));
  ASSERT_TRUE(Store()->Head("a/../b/./c").ok());
  EXPECT_EQ(server_.requests().at(0).target, "/bkt/a/../b/./c");
}

TEST_F(S3StoreTest, RedirectMeansWrongEndpointOrRegion) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(301, "PermanentRedirect",
                                                "The bucket you are attempting to access must be "
                                                "addressed using the specified endpoint."));
  auto page = Store()->List({});
  ASSERT_FALSE(page.ok());
  // EIO with a message that says what to fix, not EINVAL.
  EXPECT_EQ(page.status().code(), StatusCode::kIoError);
  EXPECT_EQ(ToErrno(page.status()), EIO);
  EXPECT_NE(page.status().message().find("redirected (301 PermanentRedirect"), std::string::npos)
      << page.status().message();
  EXPECT_NE(page.status().message().find("region or addressing (path style) is wrong"),
            std::string::npos)
      << page.status().message();
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, ErrorBodyThatNeverEndsIsCutAndClassifiedByStatus) {
  // A 500 announcing 100 GB and sending 256 KiB, then nothing: only the
  // first 64 KiB are read; the request and low-speed deadlines (60 s)
  // never come into it.
  std::string raw =
      "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
      "Content-Length: 100000000000\r\n\r\n<Error><Code>InternalError</Code>";
  raw.append(256 * 1024, 'x');
  server_.Push({raw, ScriptedHttpServer::Action::kRespond});
  S3Config cfg = Config();
  cfg.max_retries = 0;
  cfg.request_timeout = std::chrono::milliseconds(60000);
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  const auto start = std::chrono::steady_clock::now();
  char buf[10];
  auto n = Store(cfg)->Get({"k", ByteRange{0, 10}, ""}, buf, sizeof(buf));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient) << n.status().ToString();
  EXPECT_NE(n.status().message().find("500"), std::string::npos) << n.status().message();
  EXPECT_EQ(n.status().message().find("timed out"), std::string::npos) << n.status().message();
  EXPECT_LT(took, std::chrono::seconds(20));  // a hang until the deadline would break it
}

TEST_F(S3StoreTest, HeadSizeOverS3MaximumIsABadReply) {
  server_.Push(ScriptedHttpServer::Reply(200, "", {{"ETag", "\"e\""}}, true, 1L << 62));
  auto info = Store()->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ToErrno(info.status()), EIO);
  EXPECT_NE(info.status().message().find("5 TiB"), std::string::npos) << info.status().message();
  EXPECT_EQ(server_.request_count(), 1u);  // not retried
}

TEST_F(S3StoreTest, StopAbortsARequestInFlightAndFailsLaterOnes) {
  server_.Push(ScriptedHttpServer::Hang());
  S3Config cfg = Config();
  cfg.request_timeout = std::chrono::milliseconds(60000);
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.first_byte_timeout = std::chrono::milliseconds(0);
  auto store = Store(cfg);
  const auto start = std::chrono::steady_clock::now();
  Status got;
  std::thread t([&] { got = store->Head("k").status(); });
  while (server_.request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  store->Stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(got.code(), StatusCode::kCancelled) << got.ToString();
  EXPECT_NE(got.message().find("shutting down"), std::string::npos) << got.message();
  auto later = store->List({});
  EXPECT_EQ(later.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, StopCutsABackoffSleep) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(503, "SlowDown", "slow down"));
  S3Config cfg = Config();
  cfg.max_retries = 3;
  cfg.retry_base = std::chrono::milliseconds(60000);
  cfg.retry_cap = std::chrono::milliseconds(60000);
  auto store = Store(cfg);
  const auto start = std::chrono::steady_clock::now();
  Status got;
  std::thread t([&] { got = store->Head("k").status(); });
  while (server_.request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  store->Stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(got.code(), StatusCode::kCancelled) << got.ToString();
}

TEST_F(S3StoreTest, CancelTokenAbortsAListOrAGetInFlight) {
  S3Config cfg = Config();
  cfg.request_timeout = std::chrono::milliseconds(60000);
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.first_byte_timeout = std::chrono::milliseconds(0);
  auto store = Store(cfg);
  for (const bool get : {false, true}) {
    server_.Push(ScriptedHttpServer::Hang());
    const size_t before = server_.request_count();
    auto token = std::make_shared<CancelToken>();
    const auto start = std::chrono::steady_clock::now();
    Status got;
    std::thread t([&] {
      if (get) {
        char buf[10];
        GetRequest req{"k", ByteRange{0, 10}, ""};
        req.cancel = token;
        got = store->Get(req, buf, sizeof(buf)).status();
      } else {
        ListRequest req;
        req.cancel = token;
        got = store->List(req).status();
      }
    });
    while (server_.request_count() == before) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    token->Cancel();
    t.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    EXPECT_EQ(got.code(), StatusCode::kCancelled) << got.ToString();
    EXPECT_NE(got.message().find("cancelled by the caller"), std::string::npos) << got.message();
    EXPECT_FALSE(store->stopped());
  }
}

TEST_F(S3StoreTest, RequestTimeout400IsRetried) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(400, "RequestTimeout", "Your socket connection"));
  server_.Push(ScriptedHttpServer::Reply(200, "<ListBucketResult/>"));
  auto page = Store()->List({});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(S3StoreTest, HeadWithoutContentLengthIsRejected) {
  server_.Push({"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nConnection: close\r\n\r\n",
                ScriptedHttpServer::Action::kRespondAndClose});
  auto info = Store()->Head("k");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("Content-Length"), std::string::npos);
}

TEST_F(S3StoreTest, PartialContentWithoutContentRangeIsRefused) {
  for (int i = 0; i < 3; ++i) server_.Push(ScriptedHttpServer::Reply(206, "abcd"));
  char buf[4];
  auto n = Store()->Get({"k", ByteRange{0, 4}, ""}, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kTransient);
  EXPECT_NE(n.status().message().find("Content-Range"), std::string::npos);
}

TEST_F(S3StoreTest, OversizedListBodyIsRefused) {
  std::string body = "<ListBucketResult>" + std::string(33u << 20, ' ') + "</ListBucketResult>";
  server_.Push(ScriptedHttpServer::Reply(200, body));
  auto page = Store()->List({});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("larger than"), std::string::npos);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3StoreTest, EmptyKeyAndNullBufferAreRefusedLocally) {
  auto store = Store();
  EXPECT_EQ(store->Head("").status().code(), StatusCode::kInvalidArgument);
  char buf[1];
  EXPECT_EQ(store->Get({"", std::nullopt, ""}, buf, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get({"k", std::nullopt, ""}, nullptr, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST(S3StoreConfig, ResolveRegion) {
  S3Config c;
  c.endpoint = "https://obs.cn-north-4.myhuaweicloud.com";
  EXPECT_EQ(ResolveRegion(c), "cn-north-4");
  c.endpoint = "https://deepseek-model-weights.obs.cn-southwest-2.myhuaweicloud.com:443/";
  EXPECT_EQ(ResolveRegion(c), "cn-southwest-2");
  c.endpoint = "https://s3.eu-west-1.amazonaws.com";
  EXPECT_EQ(ResolveRegion(c), "eu-west-1");
  c.endpoint = "http://127.0.0.1:9000";
  EXPECT_EQ(ResolveRegion(c), "us-east-1");
  c.endpoint = "https://s3.amazonaws.com";
  EXPECT_EQ(ResolveRegion(c), "us-east-1");
  c.endpoint = "not a url";
  EXPECT_EQ(ResolveRegion(c), "us-east-1");
  c.endpoint = "https://obs.cn-north-4.myhuaweicloud.com";
  c.region = "ap-southeast-1";
  EXPECT_EQ(ResolveRegion(c), "ap-southeast-1");
}

TEST(S3StoreConfig, ParseEndpoint) {
  auto e = ParseEndpoint("https://OBS.cn-north-4.myhuaweicloud.com/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->scheme, "https");
  EXPECT_EQ(e->host, "obs.cn-north-4.myhuaweicloud.com");
  EXPECT_EQ(e->host_port, "obs.cn-north-4.myhuaweicloud.com");
  e = ParseEndpoint("http://127.0.0.1:8000");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host_port, "127.0.0.1:8000");
  e = ParseEndpoint("http://[::1]:9000");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host_port, "[::1]:9000");
  for (const char* bad :
       {"", "obs.example.com", "ftp://h", "http://", "http://h:0", "http://h:99999", "http://h:x",
        "http://h/path", "http://u@h", "http://h:"}) {
    auto r = ParseEndpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(S3StoreConfig, CreateValidates) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:1";
  Credentials creds{"AK", "SK", ""};
  EXPECT_TRUE(S3Store::Create(c, creds, "bkt", nullptr).ok());
  EXPECT_FALSE(S3Store::Create(c, creds, "", nullptr).ok());
  EXPECT_FALSE(S3Store::Create(c, creds, "a/b", nullptr).ok());
  EXPECT_FALSE(S3Store::Create(c, Credentials{}, "bkt", nullptr).ok());
  c.endpoint = "127.0.0.1:1";
  auto bad = S3Store::Create(c, creds, "bkt", nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  // The constructor path reports the same error from every operation.
  S3Store direct(c, creds, "bkt", nullptr);
  auto h = direct.Head("k");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsfs
