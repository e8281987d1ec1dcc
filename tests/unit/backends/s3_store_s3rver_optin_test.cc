// OPT-IN: S3Store against a real s3rver. Skipped unless DSFS_S3RVER_URL is set.
// (s3rver 3.7.1 checks the access key id but not V4 signatures.) Example:
//   export NODE_OPTIONS=--openssl-legacy-provider
//   node_modules/.bin/s3rver -d DIR -p 4568 -a 127.0.0.1 --configure-bucket demo --silent
// (without the legacy provider, s3rver 3.7.1 on Node >= 17 answers 500 to
// any truncated ListObjectsV2 page: its continuation tokens use DES).
//   DSFS_S3RVER_URL=http://127.0.0.1:4568 dsfs_backends_tests --gtest_filter='S3rverOptIn*'
// Optional: DSFS_S3RVER_BUCKET (default demo), DSFS_S3RVER_KEY / _SECRET
// (default S3RVER / S3RVER). The mount tests cover s3rver in CI; this one
// checks the store alone: uploads >1000 keys (signed PUTs made with our
// own signer), then Head, paginated List, ranged and whole Get.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <random>

#include "backends/s3_store.h"
#include "backends/sigv4.h"

namespace dsfs {
namespace {

std::string Env(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : def;
}

class S3rverOptInTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    if (std::getenv("DSFS_S3RVER_URL") == nullptr) {
      GTEST_SKIP() << "set DSFS_S3RVER_URL=http://127.0.0.1:PORT to run against s3rver";
    }
    cfg_.endpoint = Env("DSFS_S3RVER_URL", "");
    cfg_.path_style = true;
    cfg_.max_retries = 1;
    creds_.access_key = Env("DSFS_S3RVER_KEY", "S3RVER");
    creds_.secret_key = Env("DSFS_S3RVER_SECRET", "S3RVER");
    bucket_ = Env("DSFS_S3RVER_BUCKET", "demo");
    std::random_device rd;
    prefix_ =
        "optin-" + std::to_string(std::time(nullptr)) + "-" + std::to_string(rd() % 100000) + "/";
    auto s = S3Store::Create(cfg_, creds_, bucket_, &metrics_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // A signed PUT made with our signer (payload hash of the real body).
  long Put(const std::string& key, const std::string& body,
           std::vector<std::pair<std::string, std::string>> extra = {}) {
    auto ep = ParseEndpoint(cfg_.endpoint);
    EXPECT_TRUE(ep.ok());
    sigv4::Request r;
    r.method = "PUT";
    r.path = "/" + bucket_ + "/" + key;
    r.headers = std::move(extra);
    r.headers.emplace_back("Host", ep->host_port);
    r.payload_hash = sigv4::Sha256Hex(body);
    std::string auth = sigv4::Sign(&r, creds_, "us-east-1", std::time(nullptr));
    curl_slist* hs = nullptr;
    for (const auto& [n, v] : r.headers) hs = curl_slist_append(hs, (n + ": " + v).c_str());
    hs = curl_slist_append(hs, ("Authorization: " + auth).c_str());
    hs = curl_slist_append(hs, "Content-Type: application/octet-stream");
    hs = curl_slist_append(hs, "Expect:");
    std::string url = ep->scheme + "://" + ep->host_port + sigv4::CanonicalUri(r.path);
    if (curl_ == nullptr) curl_ = curl_easy_init();
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(
        curl_, CURLOPT_WRITEFUNCTION,
        +[](char*, size_t s, size_t n, void*) -> size_t { return s * n; });
    CURLcode rc = curl_easy_perform(curl_);
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
    return status;
  }

  void TearDown() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  S3Config cfg_;
  Credentials creds_;
  std::string bucket_;
  std::string prefix_;
  Metrics metrics_;
  std::unique_ptr<S3Store> store_;
  CURL* curl_ = nullptr;
};

TEST_F(S3rverOptInTest, HeadListGetAgainstRealServer) {
  // 1 MiB of pseudo-random bytes with metadata, and a key that needs encoding.
  std::string big(1 << 20, '\0');
  std::mt19937 gen(42);
  for (char& c : big) c = static_cast<char>(gen());
  ASSERT_EQ(Put(prefix_ + "big.safetensors", big, {{"x-amz-meta-mode", "33188"}}), 200);
  const std::string odd = prefix_ + "dir/a b+c%d&e=f.txt";
  ASSERT_EQ(Put(odd, "odd key"), 200);
  constexpr int kMany = 1100;
  for (int i = 0; i < kMany; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "many/obj-%05d", i);
    ASSERT_EQ(Put(prefix_ + name, std::to_string(i)), 200) << name;
  }

  // Head
  auto info = store_->Head(prefix_ + "big.safetensors");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, big.size());
  EXPECT_EQ(info->etag.size(), 32u);
  EXPECT_GT(info->mtime_sec, 1600000000);
  EXPECT_EQ(info->meta["mode"], "33188");
  auto odd_info = store_->Head(odd);
  ASSERT_TRUE(odd_info.ok()) << odd_info.status().ToString();
  EXPECT_EQ(odd_info->size, 7u);
  auto missing = store_->Head(prefix_ + "nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  // Paginated listing of > 1000 keys.
  ListRequest req;
  req.prefix = prefix_ + "many/";
  std::vector<std::string> keys;
  int pages = 0;
  do {
    auto page = store_->List(req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (const auto& o : page->objects) keys.push_back(o.key);
    req.continuation = page->next_continuation;
    ASSERT_LT(pages, 10);
  } while (!req.continuation.empty());
  EXPECT_EQ(pages, 2);
  ASSERT_EQ(keys.size(), static_cast<size_t>(kMany));
  EXPECT_EQ(keys.front(), prefix_ + "many/obj-00000");
  EXPECT_EQ(keys.back(), prefix_ + "many/obj-01099");

  // Delimiter listing.
  ListRequest top;
  top.prefix = prefix_;
  top.delimiter = "/";
  auto page = store_->List(top);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, prefix_ + "big.safetensors");
  EXPECT_EQ(page->objects[0].size, big.size());
  EXPECT_EQ(page->objects[0].etag, info->etag);
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{prefix_ + "dir/", prefix_ + "many/"}));
  ListRequest dir;
  dir.prefix = prefix_ + "dir/";
  auto dir_page = store_->List(dir);
  ASSERT_TRUE(dir_page.ok());
  ASSERT_EQ(dir_page->objects.size(), 1u);
  EXPECT_EQ(dir_page->objects[0].key, odd);

  // Ranged and whole GETs.
  std::string buf(200000, '\0');
  auto n = store_->Get({prefix_ + "big.safetensors", ByteRange{12345, 100000}, info->etag},
                       buf.data(), buf.size());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(n->bytes, 100000u);
  EXPECT_EQ(buf.substr(0, 100000), big.substr(12345, 100000));
  n = store_->Get({prefix_ + "big.safetensors", ByteRange{big.size() - 10, 10}, ""}, buf.data(),
                  buf.size());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(buf.substr(0, 10), big.substr(big.size() - 10));
  std::string whole(big.size(), '\0');
  n = store_->Get({prefix_ + "big.safetensors", std::nullopt, ""}, whole.data(), whole.size());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(whole, big);
  n = store_->Get({odd, std::nullopt, ""}, buf.data(), buf.size());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(buf.substr(0, n->bytes), "odd key");
  auto gone = store_->Get({prefix_ + "nope", ByteRange{0, 1}, ""}, buf.data(), buf.size());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(metrics_.CounterTotal("dsfs_s3_retries_total"), 0u);
}

// s3rver 3.7.1 checks the access key id but does not verify V4 signatures
// (and ignores If-Match): signatures are checked against AWS's published
// examples in sigv4_test, and If-Match/412 against the scripted server.
TEST_F(S3rverOptInTest, UnknownAccessKeyIsAccessDenied) {
  Credentials bad = creds_;
  bad.access_key = "NOTAKEY";
  bad.secret_key = "not-the-secret-XYZ";
  auto s = S3Store::Create(cfg_, bad, bucket_, nullptr);
  ASSERT_TRUE(s.ok());
  auto info = (*s)->Head(prefix_ + "anything");  // HEAD: mapped by status alone
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kAccessDenied) << info.status().ToString();
  auto page = (*s)->List({});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kAccessDenied);
  EXPECT_NE(page.status().message().find("InvalidAccessKeyId"), std::string::npos)
      << page.status().message();
  EXPECT_EQ(page.status().message().find("not-the-secret-XYZ"), std::string::npos);
}

TEST_F(S3rverOptInTest, MissingBucket) {
  auto s = S3Store::Create(cfg_, creds_, "no-such-bucket-dsfs", nullptr);
  ASSERT_TRUE(s.ok());
  auto page = (*s)->List({});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(page.status().message(), "bucket 'no-such-bucket-dsfs' does not exist");
}

}  // namespace
}  // namespace dsfs
