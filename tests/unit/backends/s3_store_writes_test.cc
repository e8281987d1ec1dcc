// S3Store's writes against the scripted HTTP server: the requests on the
// wire (headers, bodies, signatures), retries that re-send the body, S3's
// "200 with an <Error> body", ETag checks, idempotent deletes and aborts,
// cancellation part-way through an upload.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>

#include "backends/md5.h"
#include "backends/s3_store.h"
#include "backends/sigv4.h"
#include "scripted_http_server.h"
#include "tests/unit/temp_dir.h"

namespace dsfs {
namespace {

using testing::ScriptedHttpServer;
using Req = ScriptedHttpServer::Request;

// An MD5 independent of backends/md5.h.
std::string Md5HexOf(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kDigits[md[i] >> 4];
    hex += kDigits[md[i] & 15];
  }
  return hex;
}

std::string Md5Base64Of(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string Pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

ScriptedHttpServer::Step EtagReply(int status, const std::string& etag,
                                   const std::string& body = "") {
  return ScriptedHttpServer::Reply(status, body, {{"ETag", "\"" + etag + "\""}});
}

std::string Header(const Req& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "<none>" : it->second;
}

// Recomputes the signature over exactly the headers the request says it
// signed, with the path and query as received.
std::string Resign(const Req& r, const std::string& raw_path,
                   const std::vector<std::pair<std::string, std::string>>& query,
                   const Credentials& creds) {
  const std::string auth = r.headers.at("authorization");
  const size_t sh = auth.find("SignedHeaders=");
  const size_t end = auth.find(',', sh);
  std::stringstream names(auth.substr(sh + 14, end - sh - 14));
  sigv4::Request s;
  s.method = r.method;
  s.path = raw_path;
  s.query = query;
  for (std::string name; std::getline(names, name, ';');) {
    if (name == "x-amz-date" || name == "x-amz-content-sha256") continue;
    s.headers.emplace_back(name, r.headers.at(name));
  }
  s.payload_hash = r.headers.at("x-amz-content-sha256");
  std::tm tm{};
  strptime(r.headers.at("x-amz-date").c_str(), "%Y%m%dT%H%M%SZ", &tm);
  return sigv4::Sign(&s, creds, "us-east-1", timegm(&tm));
}

class S3WritesTest : public ::testing::Test {
 protected:
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
  static Credentials Creds() {
    Credentials c;
    c.access_key = "AKIAIOSFODNN7EXAMPLE";
    c.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    return c;
  }
  std::unique_ptr<S3Store> Store(const S3Config& config) {
    auto s = S3Store::Create(config, Creds(), "bkt", &metrics_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<S3Store> Store() { return Store(Config()); }
  uint64_t Metric(const char* name) { return metrics_.CounterTotal(name); }
  // Attempts of one operation (dsfs_s3_requests_total{op}).
  uint64_t Requests(const char* op) {
    return metrics_.GetCounter("dsfs_s3_requests_total", "", {{"op", op}}).value();
  }

  ScriptedHttpServer server_;
  Metrics metrics_;
};

Body MemBody(const std::string& s) { return Body{s.data(), -1, 0, s.size()}; }

TEST_F(S3WritesTest, PutSendsBodyMd5MetaAndContentTypeSigned) {
  const std::string body = "hello, bucket";
  server_.Push(EtagReply(200, Md5HexOf(body)));
  auto store = Store();
  PutRequest put;
  put.key = "dir/a b.bin";
  put.body = MemBody(body);
  put.attrs.meta = {{"mode", "33188"}, {"uid", "1000"}, {"mtime", "1700000000.5"}};
  auto r = store->Put(put);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, Md5HexOf(body));
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const Req& q = reqs[0];
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bkt/dir/a%20b.bin");
  EXPECT_EQ(q.body, body);
  EXPECT_EQ(Header(q, "content-length"), std::to_string(body.size()));
  EXPECT_EQ(Header(q, "content-md5"), Md5Base64Of(body));
  EXPECT_EQ(Header(q, "content-type"), "application/octet-stream");
  EXPECT_EQ(Header(q, "x-amz-meta-mode"), "33188");
  EXPECT_EQ(Header(q, "x-amz-meta-uid"), "1000");
  EXPECT_EQ(Header(q, "x-amz-meta-mtime"), "1700000000.5");
  EXPECT_EQ(Header(q, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  const std::string auth = Header(q, "authorization");
  EXPECT_NE(auth.find("content-md5;content-type;host;"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-meta-mode"), std::string::npos) << auth;
  EXPECT_EQ(auth, Resign(q, "/bkt/dir/a b.bin", {}, Creds()));
  EXPECT_EQ(Requests("PUT"), 1u);
  EXPECT_EQ(Metric("dsfs_s3_bytes_written_total"), body.size());
}

TEST_F(S3WritesTest, PutGivenContentTypeAndEmptyBody) {
  server_.Push(EtagReply(200, "d41d8cd98f00b204e9800998ecf8427e"));
  PutRequest put;
  put.key = "dir/";
  put.attrs.content_type = "application/x-directory";
  auto r = Store()->Put(put);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto q = server_.requests().at(0);
  EXPECT_EQ(Header(q, "content-type"), "application/x-directory");
  EXPECT_EQ(Header(q, "content-length"), "0");
  EXPECT_EQ(Header(q, "content-md5"), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(q.body, "");
}

TEST_F(S3WritesTest, PutFromAFileRangeSendsExactlyThatRange) {
  testing::TempDir dir;
  const std::string data = Pattern(3 << 20);
  dir.Write("staged", data);
  const int fd = ::open(dir.Sub("staged").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const uint64_t off = 12345;
  const uint64_t len = (2 << 20) + 7;
  const std::string range = data.substr(off, len);
  server_.Push(EtagReply(200, Md5HexOf(range)));
  PutRequest put;
  put.key = "big";
  put.body = Body{nullptr, fd, off, len};
  auto r = Store()->Put(put);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.body.size(), len);
  EXPECT_TRUE(q.body == range);
  EXPECT_EQ(Header(q, "content-md5"), Md5Base64Of(range));
}

TEST_F(S3WritesTest, RetryAfter503ResendsTheWholeBody) {
  testing::TempDir dir;
  const std::string data = Pattern(1 << 20, 7);
  dir.Write("staged", data);
  const int fd = ::open(dir.Sub("staged").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const std::string range = data.substr(100);
  server_.Push(ScriptedHttpServer::S3ErrorReply(503, "SlowDown", "slow down"));
  server_.Push(ScriptedHttpServer::S3ErrorReply(500, "InternalError", "oops"));
  server_.Push(EtagReply(200, Md5HexOf(range)));
  PutRequest put;
  put.key = "k";
  put.body = Body{nullptr, fd, 100, range.size()};
  auto r = Store()->Put(put);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const Req& q : reqs) {
    EXPECT_EQ(q.body.size(), range.size());
    EXPECT_TRUE(q.body == range);
    EXPECT_EQ(Header(q, "content-md5"), Md5Base64Of(range));
  }
  EXPECT_EQ(Requests("PUT"), 3u);
  EXPECT_EQ(Metric("dsfs_s3_bytes_written_total"), range.size());
}

TEST_F(S3WritesTest, EtagOtherThanTheBodyMd5IsCorruption) {
  const std::string body = "payload";
  server_.Push(EtagReply(200, Md5HexOf("other bytes")));
  PutRequest put;
  put.key = "k";
  put.body = MemBody(body);
  auto r = Store()->Put(put);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_EQ(server_.request_count(), 1u);
  // No ETag at all is not the body's MD5 either.
  server_.Push(ScriptedHttpServer::Reply(200));
  EXPECT_EQ(Store()->Put(put).status().code(), StatusCode::kCorruption);
}

TEST_F(S3WritesTest, BadDigestIsRetried) {
  const std::string body = "payload";
  server_.Push(ScriptedHttpServer::S3ErrorReply(400, "BadDigest", "Content-MD5 mismatch"));
  server_.Push(EtagReply(200, Md5HexOf(body)));
  PutRequest put;
  put.key = "k";
  put.body = MemBody(body);
  EXPECT_TRUE(Store()->Put(put).ok());
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(S3WritesTest, HeaderInjectionAndShortFilesFailBeforeSending) {
  auto store = Store();
  PutRequest put;
  put.key = "k";
  const std::string body = "x";
  put.body = MemBody(body);
  put.attrs.meta = {{"mode", "33188\r\nx-amz-acl: public-read"}};
  EXPECT_EQ(store->Put(put).status().code(), StatusCode::kInvalidArgument);
  put.attrs.meta = {{"Bad Name", "1"}};
  EXPECT_EQ(store->Put(put).status().code(), StatusCode::kInvalidArgument);
  testing::TempDir dir;
  dir.Write("short", "12345");
  const int fd = ::open(dir.Sub("short").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  put.attrs = {};
  put.body = Body{nullptr, fd, 0, 10};
  auto r = store->Put(put);
  ::close(fd);
  EXPECT_EQ(r.status().code(), StatusCode::kIoError) << r.status().ToString();
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(S3WritesTest, CancelMidUploadIsCancelled) {
  server_.Push(ScriptedHttpServer::StallBody());
  S3Config cfg = Config();
  cfg.low_speed_time = std::chrono::milliseconds(60000);
  cfg.request_timeout = std::chrono::milliseconds(60000);
  auto store = Store(cfg);
  const std::string body = Pattern(32 << 20, 3);  // far more than the socket buffers
  auto token = std::make_shared<CancelToken>();
  PutRequest put;
  put.key = "k";
  put.body = MemBody(body);
  put.cancel = token;
  const auto start = std::chrono::steady_clock::now();
  Status got;
  std::thread t([&] { got = store->Put(put).status(); });
  while (server_.request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  token->Cancel();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(got.code(), StatusCode::kCancelled) << got.ToString();
  EXPECT_EQ(server_.request_count(), 1u);

  // Stop() cuts an upload part-way the same way.
  server_.Push(ScriptedHttpServer::StallBody());
  put.cancel = nullptr;
  std::thread t2([&] { got = store->Put(put).status(); });
  while (server_.request_count() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  store->Stop();
  t2.join();
  EXPECT_EQ(got.code(), StatusCode::kCancelled) << got.ToString();
}

TEST_F(S3WritesTest, CopyEncodesTheSourceAndReplacesMetadata) {
  server_.Push(ScriptedHttpServer::Reply(
      200,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>"
      "2009-10-28T22:32:00Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;"
      "</ETag></CopyObjectResult>"));
  CopyRequest copy;
  copy.source_key = "dir/a b/\xc3\xbc+x.bin";
  copy.source_if_match = "0123456789abcdef0123456789abcdef";
  copy.key = "new/name";
  copy.attrs = ObjectAttrs{{{"mode", "33261"}}, "text/plain"};
  auto r = Store()->Copy(copy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, "9b2cf535f27731c974343645a3985328");
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bkt/new/name");
  EXPECT_EQ(Header(q, "x-amz-copy-source"), "/bkt/dir/a%20b/%C3%BC%2Bx.bin");
  EXPECT_EQ(Header(q, "x-amz-copy-source-if-match"), "\"0123456789abcdef0123456789abcdef\"");
  EXPECT_EQ(Header(q, "x-amz-metadata-directive"), "REPLACE");
  EXPECT_EQ(Header(q, "x-amz-meta-mode"), "33261");
  EXPECT_EQ(Header(q, "content-type"), "text/plain");
  EXPECT_EQ(Header(q, "content-length"), "0");
  EXPECT_EQ(q.body, "");
  EXPECT_EQ(Header(q, "authorization"), Resign(q, "/bkt/new/name", {}, Creds()));
  EXPECT_EQ(Requests("COPY"), 1u);
}

TEST_F(S3WritesTest, CopyWithoutAttrsKeepsTheSources) {
  server_.Push(
      ScriptedHttpServer::Reply(200, "<CopyObjectResult><ETag>\"abc\"</ETag></CopyObjectResult>"));
  CopyRequest copy;
  copy.source_key = "a";
  copy.key = "b";
  ASSERT_TRUE(Store()->Copy(copy).ok());
  auto q = server_.requests().at(0);
  EXPECT_EQ(Header(q, "x-amz-metadata-directive"), "COPY");
  EXPECT_EQ(Header(q, "x-amz-copy-source-if-match"), "<none>");
  for (const auto& [name, value] : q.headers) {
    EXPECT_NE(name.rfind("x-amz-meta-", 0), 0u) << name;
  }
}

TEST_F(S3WritesTest, CopyAnswered200WithAnErrorBodyIsAnError) {
  const std::string internal =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>"
      "<Message>We encountered an internal error. Please try again.</Message></Error>";
  // Retried like a 500, then succeeds.
  server_.Push(ScriptedHttpServer::Reply(200, internal));
  server_.Push(
      ScriptedHttpServer::Reply(200, "<CopyObjectResult><ETag>\"e2\"</ETag></CopyObjectResult>"));
  CopyRequest copy;
  copy.source_key = "a";
  copy.key = "b";
  auto store = Store();
  auto r = store->Copy(copy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, "e2");
  EXPECT_EQ(server_.request_count(), 2u);
  // Every attempt answered so: Transient, never a success.
  for (int i = 0; i < 3; ++i) server_.Push(ScriptedHttpServer::Reply(200, internal));
  r = store->Copy(copy);
  EXPECT_EQ(r.status().code(), StatusCode::kTransient) << r.status().ToString();
  EXPECT_EQ(server_.request_count(), 5u);
  // A code that is not retryable is not retried.
  server_.Push(ScriptedHttpServer::Reply(
      200, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>"));
  EXPECT_EQ(store->Copy(copy).status().code(), StatusCode::kAccessDenied);
  EXPECT_EQ(server_.request_count(), 6u);
  // A 200 with neither result nor error is a reply the server did not
  // finish: retried, and Transient when every attempt is so.
  for (int i = 0; i < 3; ++i) server_.Push(ScriptedHttpServer::Reply(200, "<Other/>"));
  r = store->Copy(copy);
  EXPECT_EQ(r.status().code(), StatusCode::kTransient) << r.status().ToString();
  EXPECT_EQ(server_.request_count(), 9u);
}

TEST_F(S3WritesTest, CopyResultWithoutAnEtagIsRetried) {
  // s3rver, when a HEAD rewrites the object's .md5 file meanwhile, answers
  // a copy with <ETag>""</ETag>: the copy is retried, never a bad identity.
  server_.Push(ScriptedHttpServer::Reply(
      200, "<CopyObjectResult><LastModified>2026-12-02T14:13:47.000Z</LastModified>"
           "<ETag>\"\"</ETag></CopyObjectResult>"));
  server_.Push(
      ScriptedHttpServer::Reply(200, "<CopyObjectResult><ETag>\"e3\"</ETag></CopyObjectResult>"));
  CopyRequest copy;
  copy.source_key = "a";
  copy.key = "a";
  copy.attrs = ObjectAttrs{{{"mode", "33188"}}, ""};
  auto r = Store()->Copy(copy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, "e3");
  EXPECT_EQ(server_.request_count(), 2u);
  // The same for a part copy's and a Complete's result.
  server_.Push(ScriptedHttpServer::Reply(200, "<CopyPartResult></CopyPartResult>"));
  server_.Push(ScriptedHttpServer::Reply(200, "<CopyPartResult><ETag>\"p1\"</ETag></CopyPartResult>"));
  UploadPartRequest part;
  part.key = "b";
  part.upload_id = "u";
  part.part_number = 1;
  part.copy_source = "a";
  part.copy_range = ByteRange{0, 10};
  auto p = Store()->UploadPart(part);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, "p1");
  server_.Push(ScriptedHttpServer::Reply(200, "<CompleteMultipartUploadResult/>"));
  server_.Push(ScriptedHttpServer::Reply(
      200, "<CompleteMultipartUploadResult><ETag>\"c-1\"</ETag></CompleteMultipartUploadResult>"));
  auto c = Store()->CompleteMultipartUpload("b", "u", {{1, "p1"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->etag, "c-1");
  EXPECT_EQ(server_.request_count(), 6u);
}

TEST_F(S3WritesTest, CopyOfAChangedSourceIsPreconditionFailed) {
  server_.Push(ScriptedHttpServer::S3ErrorReply(412, "PreconditionFailed", "At least one"));
  CopyRequest copy;
  copy.source_key = "a";
  copy.source_if_match = "old";
  copy.key = "b";
  EXPECT_EQ(Store()->Copy(copy).status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(S3WritesTest, CreateMultipartUpload) {
  server_.Push(ScriptedHttpServer::Reply(
      200,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>bkt"
      "</Bucket><Key>big</Key><UploadId>VXBsb2FkIElE+/x=</UploadId>"
      "</InitiateMultipartUploadResult>"));
  auto id = Store()->CreateMultipartUpload("big", ObjectAttrs{{{"mode", "33188"}}, ""});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "VXBsb2FkIElE+/x=");
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.target, "/bkt/big?uploads=");
  EXPECT_EQ(Header(q, "content-type"), "application/octet-stream");
  EXPECT_EQ(Header(q, "x-amz-meta-mode"), "33188");
  EXPECT_EQ(Header(q, "content-length"), "0");
  EXPECT_EQ(Header(q, "authorization"), Resign(q, "/bkt/big", {{"uploads", ""}}, Creds()));
  EXPECT_EQ(Requests("CREATE MULTIPART"), 1u);

  server_.Push(ScriptedHttpServer::Reply(200, "<InitiateMultipartUploadResult/>"));
  EXPECT_EQ(Store()->CreateMultipartUpload("big", {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(S3WritesTest, UploadPartSendsTheBodyWithItsMd5) {
  const std::string part = Pattern(100000, 9);
  server_.Push(EtagReply(200, Md5HexOf(part)));
  UploadPartRequest req;
  req.key = "big";
  req.upload_id = "VXBsb2FkIElE+/x=";
  req.part_number = 3;
  req.body = MemBody(part);
  auto store = Store();
  auto etag = store->UploadPart(req);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, Md5HexOf(part));
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bkt/big?partNumber=3&uploadId=VXBsb2FkIElE%2B%2Fx%3D");
  EXPECT_TRUE(q.body == part);
  EXPECT_EQ(Header(q, "content-md5"), Md5Base64Of(part));
  EXPECT_EQ(
      Header(q, "authorization"),
      Resign(q, "/bkt/big", {{"partNumber", "3"}, {"uploadId", "VXBsb2FkIElE+/x="}}, Creds()));
  // The part the server kept is not ours.
  server_.Push(EtagReply(200, Md5HexOf("x")));
  EXPECT_EQ(store->UploadPart(req).status().code(), StatusCode::kCorruption);
  req.part_number = 10001;
  EXPECT_EQ(store->UploadPart(req).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(S3WritesTest, UploadPartCopy) {
  server_.Push(ScriptedHttpServer::Reply(
      200,
      "<CopyPartResult><LastModified>2011-04-11T20:34:56.000Z</LastModified>"
      "<ETag>\"b0c6f0e7e054ab8fa2536a2677f8734d\"</ETag></CopyPartResult>"));
  UploadPartRequest req;
  req.key = "dst";
  req.upload_id = "ID";
  req.part_number = 2;
  req.copy_source = "src dir/f";
  req.copy_range = {10, 10};
  req.copy_source_if_match = "srcetag";
  auto store = Store();
  auto etag = store->UploadPart(req);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "b0c6f0e7e054ab8fa2536a2677f8734d");
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bkt/dst?partNumber=2&uploadId=ID");
  EXPECT_EQ(Header(q, "x-amz-copy-source"), "/bkt/src%20dir/f");
  EXPECT_EQ(Header(q, "x-amz-copy-source-range"), "bytes=10-19");
  EXPECT_EQ(Header(q, "x-amz-copy-source-if-match"), "\"srcetag\"");
  EXPECT_EQ(Header(q, "content-md5"), "<none>");
  EXPECT_EQ(Requests("UPLOAD PART COPY"), 1u);
  // 200 with an error.
  for (int i = 0; i < 3; ++i) {
    server_.Push(ScriptedHttpServer::Reply(
        200, "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"));
  }
  EXPECT_EQ(store->UploadPart(req).status().code(), StatusCode::kThrottled);
  server_.Push(ScriptedHttpServer::S3ErrorReply(412, "PreconditionFailed", "changed"));
  EXPECT_EQ(store->UploadPart(req).status().code(), StatusCode::kPreconditionFailed);
}

TEST_F(S3WritesTest, CompleteSendsThePartListAndParsesTheEtag) {
  server_.Push(ScriptedHttpServer::Reply(
      200,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n   \n<CompleteMultipartUploadResult>"
      "<Location>http://x/bkt/big</Location><Bucket>bkt</Bucket><Key>big</Key>"
      "<ETag>\"3858f62230ac3c915f300c664312c11f-2\"</ETag></CompleteMultipartUploadResult>"));
  const std::vector<CompletedPart> parts = {{1, "aaa"}, {2, "bbb"}};
  auto r = Store()->CompleteMultipartUpload("big", "ID", parts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, "3858f62230ac3c915f300c664312c11f-2");
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.target, "/bkt/big?uploadId=ID");
  const std::string xml =
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Part><PartNumber>1</PartNumber><ETag>\"aaa\"</ETag></Part>"
      "<Part><PartNumber>2</PartNumber><ETag>\"bbb\"</ETag></Part>"
      "</CompleteMultipartUpload>";
  EXPECT_EQ(q.body, xml);
  EXPECT_EQ(Header(q, "content-type"), "application/xml");
  EXPECT_EQ(Header(q, "x-amz-content-sha256"), sigv4::Sha256Hex(xml));
  EXPECT_EQ(Header(q, "authorization"), Resign(q, "/bkt/big", {{"uploadId", "ID"}}, Creds()));
}

TEST_F(S3WritesTest, CompleteAnswered200WithAnErrorBodyIsAnError) {
  const std::string internal =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>"
      "<Message>We encountered an internal error.</Message></Error>";
  for (int i = 0; i < 3; ++i) server_.Push(ScriptedHttpServer::Reply(200, internal));
  auto store = Store();
  auto r = store->CompleteMultipartUpload("big", "ID", {{1, "aaa"}});
  EXPECT_EQ(r.status().code(), StatusCode::kTransient) << r.status().ToString();
  EXPECT_EQ(server_.request_count(), 3u);
  server_.Push(ScriptedHttpServer::Reply(
      200, "<Error><Code>InvalidPart</Code><Message>One or more parts</Message></Error>"));
  EXPECT_EQ(store->CompleteMultipartUpload("big", "ID", {{1, "aaa"}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 4u);
  // Parts out of order never leave the node.
  EXPECT_EQ(store->CompleteMultipartUpload("big", "ID", {{2, "b"}, {1, "a"}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.request_count(), 4u);
}

TEST_F(S3WritesTest, CompleteThatFindsItsUploadDoneChecksTheObject) {
  const std::string p1 = Md5HexOf("one"), p2 = Md5HexOf("two");
  std::string digests;
  for (const std::string& h : {p1, p2}) {
    for (size_t i = 0; i < h.size(); i += 2) {
      digests.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    }
  }
  const std::string expected = Md5HexOf(digests) + "-2";
  auto store = Store();
  // The first attempt completed but its answer was lost; the retry finds
  // no upload. The object has exactly our parts: success.
  server_.Push(ScriptedHttpServer::CloseNow());
  server_.Push(ScriptedHttpServer::S3ErrorReply(404, "NoSuchUpload", "gone"));
  server_.Push(ScriptedHttpServer::Reply(200, "", {{"ETag", "\"" + expected + "\""}}, true, 5));
  auto r = store->CompleteMultipartUpload("big", "ID", {{1, p1}, {2, p2}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, expected);
  // Another object there: the upload is simply gone.
  server_.Push(ScriptedHttpServer::S3ErrorReply(404, "NoSuchUpload", "gone"));
  server_.Push(ScriptedHttpServer::Reply(200, "", {{"ETag", "\"other\""}}, true, 5));
  EXPECT_EQ(store->CompleteMultipartUpload("big", "ID", {{1, p1}, {2, p2}}).status().code(),
            StatusCode::kNotFound);
}

TEST_F(S3WritesTest, AbortIsIdempotent) {
  auto store = Store();
  server_.Push(ScriptedHttpServer::Reply(204));
  EXPECT_TRUE(store->AbortMultipartUpload("big", "ID").ok());
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "DELETE");
  EXPECT_EQ(q.target, "/bkt/big?uploadId=ID");
  EXPECT_EQ(Header(q, "authorization"), Resign(q, "/bkt/big", {{"uploadId", "ID"}}, Creds()));
  server_.Push(ScriptedHttpServer::S3ErrorReply(404, "NoSuchUpload", "The specified upload"));
  EXPECT_TRUE(store->AbortMultipartUpload("big", "ID").ok());
  server_.Push(ScriptedHttpServer::S3ErrorReply(403, "AccessDenied", "no"));
  EXPECT_EQ(store->AbortMultipartUpload("big", "ID").code(), StatusCode::kAccessDenied);
  EXPECT_EQ(Requests("ABORT MULTIPART"), 3u);
}

TEST_F(S3WritesTest, DeleteIsIdempotentAndRetried) {
  auto store = Store();
  server_.Push(ScriptedHttpServer::Reply(204));
  EXPECT_TRUE(store->Delete("dir/a b").ok());
  auto q = server_.requests().at(0);
  EXPECT_EQ(q.method, "DELETE");
  EXPECT_EQ(q.target, "/bkt/dir/a%20b");
  server_.Push(ScriptedHttpServer::S3ErrorReply(404, "NoSuchKey", "no"));
  EXPECT_TRUE(store->Delete("k").ok());
  server_.Push(ScriptedHttpServer::S3ErrorReply(503, "SlowDown", "slow"));
  server_.Push(ScriptedHttpServer::Reply(204));
  EXPECT_TRUE(store->Delete("k").ok());
  for (int i = 0; i < 3; ++i) {
    server_.Push(ScriptedHttpServer::S3ErrorReply(503, "SlowDown", "slow"));
  }
  EXPECT_EQ(store->Delete("k").code(), StatusCode::kThrottled);
  EXPECT_EQ(Requests("DELETE"), 7u);
}

}  // namespace
}  // namespace dsfs
