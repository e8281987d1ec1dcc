#include "backends/s3_xml.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

constexpr char kTruncatedPage[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>deepseek-model-weights</Name>
  <Prefix>models/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>2</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>models/config.json</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>models/model-00001-of-00002.safetensors</Key>
    <LastModified>2024-01-02T03:04:05Z</LastModified>
    <ETag>"9b2cf535f27731c974343645a3985328-40"</ETag>
    <Size>4999999999</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <CommonPrefixes><Prefix>models/tokenizer/</Prefix></CommonPrefixes>
</ListBucketResult>)";

TEST(S3Xml, ParsesTruncatedPage) {
  auto page = ParseListObjectsV2(kTruncatedPage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "models/config.json");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(page->objects[0].mtime_sec, 1255369830);
  EXPECT_EQ(page->objects[1].size, 4999999999u);
  EXPECT_EQ(page->objects[1].etag, "9b2cf535f27731c974343645a3985328-40");
  EXPECT_EQ(page->objects[1].mtime_sec, 1704164645);
  ASSERT_EQ(page->common_prefixes.size(), 1u);
  EXPECT_EQ(page->common_prefixes[0], "models/tokenizer/");
  EXPECT_EQ(page->next_continuation, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, LastPageHasNoContinuation) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->next_continuation.empty());
}

TEST(S3Xml, UrlEncodedKeysAreDecodedOnlyWhenTheReplySaysSo) {
  const std::string encoded = R"(<ListBucketResult>
    <EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
    <Contents><Key>dir/a+b%2Bc%25d%E2%82%AC%01</Key><Size>1</Size></Contents>
    <CommonPrefixes><Prefix>sp+ace%2F/</Prefix></CommonPrefixes>
  </ListBucketResult>)";
  auto page = ParseListObjectsV2(encoded);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects[0].key, "dir/a b+c%d\xE2\x82\xAC\x01");
  EXPECT_EQ(page->common_prefixes[0], "sp ace//");

  // Same key, no EncodingType: a server that ignored encoding-type=url.
  const std::string raw = R"(<ListBucketResult><IsTruncated>false</IsTruncated>
    <Contents><Key>a+b%2B</Key><Size>1</Size></Contents></ListBucketResult>)";
  auto raw_page = ParseListObjectsV2(raw);
  ASSERT_TRUE(raw_page.ok());
  EXPECT_EQ(raw_page->objects[0].key, "a+b%2B");
}

TEST(S3Xml, BadEscapeInEncodedKeyIsInvalidArgument) {
  for (const char* key : {"a%2", "a%zz", "%", "a%G1"}) {
    std::string body = std::string(
                           "<ListBucketResult><EncodingType>url</EncodingType>"
                           "<Contents><Key>") +
                       key + "</Key><Size>1</Size></Contents></ListBucketResult>";
    auto page = ParseListObjectsV2(body);
    ASSERT_FALSE(page.ok()) << key;
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(page.status().message().find("%-escape"), std::string::npos);
  }
}

TEST(S3Xml, TruncatedWithoutTokenIsRejected) {
  auto page =
      ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("NextContinuationToken"), std::string::npos);
}

TEST(S3Xml, GarbageIsInvalidArgumentNotACrash) {
  const std::string cases[] = {
      "",
      "garbage",
      "<html><body>502 Bad Gateway</body></html>",
      // A page cut off in the middle (connection dropped under a proxy).
      std::string(kTruncatedPage).substr(0, 400),
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>"
      "<LastModified>yesterday</LastModified></Contents></ListBucketResult>",
      "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
      "<ListBucketResult><CommonPrefixes/></ListBucketResult>",
      std::string("<ListBucketResult>\0</ListBucketResult>", 37),
  };
  for (const auto& body : cases) {
    auto page = ParseListObjectsV2(body);
    ASSERT_FALSE(page.ok()) << body;
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_FALSE(page.status().message().empty());
  }
  auto page = ParseListObjectsV2("garbage");
  EXPECT_NE(page.status().message().find("malformed ListObjectsV2 XML"), std::string::npos)
      << page.status().message();
}

TEST(S3Xml, ParsesErrorBody) {
  auto e = ParseS3Error(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>
<BucketName>nope</BucketName><Resource>/nope/k</Resource><RequestId>4442587FB7D0A2F9</RequestId>
</Error>)");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->message, "The specified bucket does not exist");
  EXPECT_EQ(e->resource, "/nope/k");
  EXPECT_EQ(e->request_id, "4442587FB7D0A2F9");
}

TEST(S3Xml, BadErrorBodies) {
  for (const char* body : {"", "<Error>", "<NotAnError/>", "<Error><Message>x</Message></Error>",
                           "Service Unavailable"}) {
    auto e = ParseS3Error(body);
    ASSERT_FALSE(e.ok()) << body;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(S3Xml, Dates) {
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2009-10-12T17:50:30.123Z"), 1255369830);
  EXPECT_EQ(*ParseHttpDate("Wed, 12 Oct 2009 17:50:30 GMT"), 1255369830);
  EXPECT_EQ(*ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT"), 1369353600);
  for (const char* bad : {"", "2009-10-12 17:50:30Z", "2009-13-12T17:50:30Z", "2009-10-12T17:50:30",
                          "2009-10-12T17:50:30.Z", "2009-1x-12T17:50:30Z"}) {
    EXPECT_FALSE(ParseIso8601(bad).ok()) << bad;
  }
  for (const char* bad : {"", "Wed, 12 Foo 2009 17:50:30 GMT", "Wed, 12 Oct 2009 17:50:30 UTC",
                          "Wednesday, 12-Oct-09 17:50:30 GMT", "Wed, 12 Oct 2009 25:50:30 GMT"}) {
    EXPECT_FALSE(ParseHttpDate(bad).ok()) << bad;
  }
}

TEST(S3Xml, EtagQuotes) {
  EXPECT_EQ(StripEtagQuotes("\"abc\""), "abc");
  EXPECT_EQ(StripEtagQuotes("abc"), "abc");
  EXPECT_EQ(StripEtagQuotes("\""), "\"");
}

TEST(S3Xml, FormDecode) {
  EXPECT_EQ(*UrlFormDecode("a+b%20c%2b"), "a b c+");
  EXPECT_FALSE(UrlFormDecode("%").ok());
}

}  // namespace
}  // namespace dsfs
