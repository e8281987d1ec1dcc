// SigV4 against the worked examples of the Amazon S3 API reference
// ("Examples: Signature Calculations in AWS Signature Version 4",
// header-based auth): examplebucket, 20130524T000000Z, us-east-1.
#include "backends/sigv4.h"

#include <gtest/gtest.h>

namespace dsfs::sigv4 {
namespace {

constexpr std::time_t k20130524 = 1369353600;  // 2013-05-24T00:00:00Z

Credentials ExampleCreds() {
  Credentials c;
  c.access_key = "AKIAIOSFODNN7EXAMPLE";
  c.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  return c;
}

Request ExampleGet() {
  Request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  return r;
}

TEST(SigV4, AmzDate) { EXPECT_EQ(AmzDate(k20130524), "20130524T000000Z"); }

TEST(SigV4, EmptySha256) { EXPECT_EQ(Sha256Hex(""), kEmptyPayloadSha256); }

TEST(SigV4, GetObjectCanonicalRequestAndStringToSign) {
  Request r = ExampleGet();
  r.headers.emplace_back("x-amz-content-sha256", std::string(kEmptyPayloadSha256));
  r.headers.emplace_back("x-amz-date", "20130524T000000Z");
  std::string signed_headers;
  std::string canonical = CanonicalRequest(r, &signed_headers);
  EXPECT_EQ(canonical,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(StringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
}

TEST(SigV4, GetObjectWithRange) {
  Request r = ExampleGet();
  EXPECT_EQ(Sign(&r, ExampleCreds(), "us-east-1", k20130524),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // Sign() added the headers it signed, so they can be sent.
  int added = 0;
  for (const auto& [n, v] : r.headers) {
    if (n == "x-amz-date") {
      EXPECT_EQ(v, "20130524T000000Z");
      ++added;
    }
    if (n == "x-amz-content-sha256") {
      EXPECT_EQ(v, kEmptyPayloadSha256);
      ++added;
    }
  }
  EXPECT_EQ(added, 2);
}

TEST(SigV4, PutObjectWithDollarInKeyAndBody) {
  Request r;
  r.method = "PUT";
  r.path = "/test$file.text";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  r.payload_hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(r.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(Sign(&r, ExampleCreds(), "us-east-1", k20130524),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-storage-class,"
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, GetBucketLifecycleValuelessQuery) {
  Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"lifecycle", ""}};
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  EXPECT_EQ(Sign(&r, ExampleCreds(), "us-east-1", k20130524),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, ListObjectsSortedQuery) {
  Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // unsorted on purpose
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  EXPECT_EQ(CanonicalQueryString(r.query), "max-keys=2&prefix=J");
  EXPECT_EQ(Sign(&r, ExampleCreds(), "us-east-1", k20130524),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, WrongSecretGivesDifferentSignature) {
  Request r = ExampleGet();
  Credentials c = ExampleCreds();
  c.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  EXPECT_EQ(Sign(&r, c, "us-east-1", k20130524).find("f0e8bdb87c96"), std::string::npos);
}

TEST(SigV4, SessionTokenIsSignedAndAdded) {
  Request r = ExampleGet();
  Credentials c = ExampleCreds();
  c.session_token = "TOKEN/with+chars=";
  std::string auth = Sign(&r, c, "us-east-1", k20130524);
  EXPECT_NE(auth.find("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;"
                      "x-amz-security-token,"),
            std::string::npos)
      << auth;
  EXPECT_EQ(auth.find("TOKEN"), std::string::npos);
  bool found = false;
  for (const auto& [n, v] : r.headers) {
    if (n == "x-amz-security-token") found = (v == c.session_token);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(auth.find("f0e8bdb87c96"), std::string::npos);
}

TEST(SigV4, UriEncodingPerS3Rules) {
  EXPECT_EQ(UriEncode("a-b_c.d~e", true), "a-b_c.d~e");
  EXPECT_EQ(UriEncode("a b+c/d", true), "a%20b%2Bc%2Fd");
  EXPECT_EQ(UriEncode("a b+c/d", false), "a%20b%2Bc/d");
  EXPECT_EQ(UriEncode("\xc3\xa9", true), "%C3%A9");
  EXPECT_EQ(CanonicalUri("/bucket/dir/a b=c&d.txt"), "/bucket/dir/a%20b%3Dc%26d.txt");
  EXPECT_EQ(CanonicalUri(""), "/");
  EXPECT_EQ(CanonicalUri("/b/a//./../x"), "/b/a//./../x");  // no normalization
  EXPECT_EQ(CanonicalQueryString({{"prefix", "a b/"}, {"continuation-token", "x+y="}}),
            "continuation-token=x%2By%3D&prefix=a%20b%2F");
}

TEST(SigV4, HeaderValuesTrimmedAndCollapsed) {
  Request r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"Host", "h"}, {"X-Amz-Meta-A", "  one   two  "}};
  r.payload_hash = std::string(kUnsignedPayload);
  std::string signed_headers;
  std::string c = CanonicalRequest(r, &signed_headers);
  EXPECT_NE(c.find("\nx-amz-meta-a:one two\n"), std::string::npos) << c;
  EXPECT_EQ(signed_headers, "host;x-amz-meta-a");
  EXPECT_EQ(c.substr(c.size() - kUnsignedPayload.size()), kUnsignedPayload);
}

}  // namespace
}  // namespace dsfs::sigv4
