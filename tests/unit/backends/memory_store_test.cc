// MemoryStore's write operations behave as S3's: the core and filesystem
// tests of the write path rely on these ETags, counters and failure plans.
#include "backends/memory_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <string>

#include "backends/md5.h"
#include "tests/unit/temp_dir.h"

namespace dsfs {
namespace {

// An independent MD5 (not backends/md5.h) so the helper is checked too.
std::string RawMd5(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

Body MemBody(const std::string& s) { return Body{s.data(), -1, 0, s.size()}; }

std::string GetAll(MemoryStore& store, const std::string& key) {
  std::string buf(1 << 20, '\0');
  auto r = store.Get(GetRequest{key, std::nullopt, "", nullptr}, buf.data(), buf.size());
  if (!r.ok()) return "<" + r.status().ToString() + ">";
  buf.resize(r->bytes);
  return buf;
}

TEST(Md5Test, KnownVectors) {
  EXPECT_EQ(HexOf(Md5Binary("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(HexOf(Md5Binary("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Base64Of(Md5Binary("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Base64Of("f"), "Zg==");
  EXPECT_EQ(Base64Of("fo"), "Zm8=");
  EXPECT_EQ(Base64Of("foo"), "Zm9v");
}

TEST(Md5Test, FileRangeIsReadExactly) {
  testing::TempDir dir;
  dir.Write("f", "0123456789abcdef");
  int fd = ::open(dir.Sub("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto md5 = Md5OfBody(Body{nullptr, fd, 3, 7});
  ASSERT_TRUE(md5.ok()) << md5.status().ToString();
  EXPECT_EQ(*md5, RawMd5("3456789"));
  auto past_end = Md5OfBody(Body{nullptr, fd, 10, 7});
  EXPECT_EQ(past_end.status().code(), StatusCode::kIoError);
  ::close(fd);
}

TEST(MemoryStoreWriteTest, PutStoresBytesAttrsAndMd5Etag) {
  MemoryStore store;
  const std::string body = "hello world";
  PutRequest put{"a/b", MemBody(body), {{{"mode", "33188"}, {"uid", "7"}}, ""}, nullptr};
  auto r = store.Put(put);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, HexOf(RawMd5(body)));
  auto head = store.Head("a/b");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, r->etag);
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->meta.at("mode"), "33188");
  EXPECT_EQ(head->meta.at("uid"), "7");
  EXPECT_EQ(head->content_type, "application/octet-stream");
  EXPECT_EQ(GetAll(store, "a/b"), body);

  put.attrs = {{}, "application/x-directory"};
  put.key = "dir/";
  put.body = Body{};
  ASSERT_TRUE(store.Put(put).ok());
  EXPECT_EQ(store.Head("dir/")->content_type, "application/x-directory");
  EXPECT_EQ(store.Head("dir/")->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(store.counters().put, 2);
  EXPECT_EQ(store.counters().put_bytes, body.size());
}

TEST(MemoryStoreWriteTest, PutFromFileRange) {
  testing::TempDir dir;
  dir.Write("staged", "xxxxPAYLOADyyyy");
  int fd = ::open(dir.Sub("staged").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  MemoryStore store;
  auto r = store.Put(PutRequest{"k", Body{nullptr, fd, 4, 7}, {}, nullptr});
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(GetAll(store, "k"), "PAYLOAD");
}

TEST(MemoryStoreWriteTest, FailNextAndCancelLeaveNoObject) {
  MemoryStore store;
  const std::string body = "data";
  store.FailNext(StoreOp::kPut, Status::Transient("503"));
  EXPECT_EQ(store.Put(PutRequest{"k", MemBody(body), {}, nullptr}).status().code(),
            StatusCode::kTransient);
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  auto token = std::make_shared<CancelToken>();
  token->Cancel();
  EXPECT_EQ(store.Put(PutRequest{"k", MemBody(body), {}, token}).status().code(),
            StatusCode::kCancelled);
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.counters().put, 2);
}

TEST(MemoryStoreWriteTest, MultipartEtagAndAttrs) {
  MemoryStore store;
  const std::string p1(1000, 'a'), p2(1000, 'b'), p3(17, 'c');
  auto id = store.CreateMultipartUpload("big", {{{"mode", "33261"}}, "text/plain"});
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(store.PendingUploads().size(), 1u);
  EXPECT_EQ(store.PendingUploads()[0].key, "big");
  std::vector<CompletedPart> parts;
  // Uploaded out of order, as parallel uploads finish.
  for (auto [n, data] : {std::pair{2, &p2}, std::pair{1, &p1}, std::pair{3, &p3}}) {
    UploadPartRequest req;
    req.key = "big";
    req.upload_id = *id;
    req.part_number = n;
    req.body = MemBody(*data);
    auto etag = store.UploadPart(req);
    ASSERT_TRUE(etag.ok()) << etag.status().ToString();
    EXPECT_EQ(*etag, HexOf(RawMd5(*data)));
  }
  // Nothing is visible before Complete.
  EXPECT_EQ(store.Head("big").status().code(), StatusCode::kNotFound);
  parts = {{1, HexOf(RawMd5(p1))}, {2, HexOf(RawMd5(p2))}, {3, HexOf(RawMd5(p3))}};
  auto done = store.CompleteMultipartUpload("big", *id, parts);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->etag, HexOf(RawMd5(RawMd5(p1) + RawMd5(p2) + RawMd5(p3))) + "-3");
  EXPECT_EQ(GetAll(store, "big"), p1 + p2 + p3);
  auto head = store.Head("big");
  EXPECT_EQ(head->etag, done->etag);
  EXPECT_EQ(head->meta.at("mode"), "33261");
  EXPECT_EQ(head->content_type, "text/plain");
  EXPECT_TRUE(store.PendingUploads().empty());
  auto c = store.counters();
  EXPECT_EQ(c.create_multipart, 1);
  EXPECT_EQ(c.upload_part, 3);
  EXPECT_EQ(c.complete, 1);
}

TEST(MemoryStoreWriteTest, CompleteRefusesWrongEtagsOrderAndSmallParts) {
  MemoryStore store;
  auto id = store.CreateMultipartUpload("k", {});
  ASSERT_TRUE(id.ok());
  const std::string a = "aaaa", b = "bb";
  for (auto [n, data] : {std::pair{1, &a}, std::pair{2, &b}}) {
    UploadPartRequest req;
    req.key = "k";
    req.upload_id = *id;
    req.part_number = n;
    req.body = MemBody(*data);
    ASSERT_TRUE(store.UploadPart(req).ok());
  }
  const CompletedPart pa{1, HexOf(RawMd5(a))}, pb{2, HexOf(RawMd5(b))};
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {pb, pa}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {pa, {2, "0000"}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {}).status().code(),
            StatusCode::kInvalidArgument);
  store.SetMinPartSize(5);
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {pa, pb}).status().code(),
            StatusCode::kInvalidArgument);
  store.SetMinPartSize(4);
  ASSERT_TRUE(store.CompleteMultipartUpload("k", *id, {pa, pb}).ok());
  EXPECT_EQ(GetAll(store, "k"), "aaaabb");
  // The upload is gone once completed.
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {pa, pb}).status().code(),
            StatusCode::kNotFound);
}

TEST(MemoryStoreWriteTest, AbortDropsPartsAndIsIdempotent) {
  MemoryStore store;
  auto id = store.CreateMultipartUpload("k", {});
  ASSERT_TRUE(id.ok());
  UploadPartRequest req;
  req.key = "k";
  req.upload_id = *id;
  req.part_number = 1;
  const std::string a = "aaaa";
  req.body = MemBody(a);
  ASSERT_TRUE(store.UploadPart(req).ok());
  EXPECT_EQ(store.PendingUploads().at(0).parts, 1);
  ASSERT_TRUE(store.AbortMultipartUpload("k", *id).ok());
  EXPECT_TRUE(store.PendingUploads().empty());
  EXPECT_TRUE(store.AbortMultipartUpload("k", *id).ok());
  EXPECT_EQ(store.UploadPart(req).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.CompleteMultipartUpload("k", *id, {{1, HexOf(RawMd5(a))}}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.counters().abort, 2);
}

TEST(MemoryStoreWriteTest, FailedUploadPartIsCountedAndPlanned) {
  MemoryStore store;
  auto id = store.CreateMultipartUpload("k", {});
  ASSERT_TRUE(id.ok());
  store.FailNext(StoreOp::kUploadPart, Status::Transient("reset"));
  UploadPartRequest req;
  req.key = "k";
  req.upload_id = *id;
  req.part_number = 1;
  const std::string a = "aaaa";
  req.body = MemBody(a);
  EXPECT_EQ(store.UploadPart(req).status().code(), StatusCode::kTransient);
  EXPECT_EQ(store.PendingUploads().at(0).parts, 0);
  EXPECT_TRUE(store.UploadPart(req).ok());
  EXPECT_EQ(store.counters().upload_part, 2);
}

TEST(MemoryStoreWriteTest, UploadPartCopy) {
  MemoryStore store;
  store.PutObject("src", "0123456789");
  const std::string src_etag = store.Head("src")->etag;
  auto id = store.CreateMultipartUpload("dst", {});
  ASSERT_TRUE(id.ok());
  UploadPartRequest req;
  req.key = "dst";
  req.upload_id = *id;
  req.part_number = 1;
  req.copy_source = "src";
  req.copy_range = {2, 5};
  req.copy_source_if_match = "other";
  EXPECT_EQ(store.UploadPart(req).status().code(), StatusCode::kPreconditionFailed);
  req.copy_source_if_match = src_etag;
  auto etag = store.UploadPart(req);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, HexOf(RawMd5("23456")));
  req.copy_range = {8, 5};
  EXPECT_EQ(store.UploadPart(req).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store.CompleteMultipartUpload("dst", *id, {{1, *etag}}).ok());
  EXPECT_EQ(GetAll(store, "dst"), "23456");
}

TEST(MemoryStoreWriteTest, CopyKeepsOrReplacesAttrs) {
  MemoryStore store;
  store.PutObject("src", "payload", {{"mode", "33188"}}, "text/plain");
  const std::string src_etag = store.Head("src")->etag;
  CopyRequest copy;
  copy.source_key = "src";
  copy.source_if_match = "stale";
  copy.key = "dst";
  EXPECT_EQ(store.Copy(copy).status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(store.Head("dst").status().code(), StatusCode::kNotFound);
  copy.source_if_match = src_etag;
  auto r = store.Copy(copy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->etag, HexOf(RawMd5("payload")));
  EXPECT_EQ(store.Head("dst")->meta.at("mode"), "33188");
  EXPECT_EQ(store.Head("dst")->content_type, "text/plain");
  // REPLACE onto itself: chmod.
  copy.source_key = "dst";
  copy.source_if_match = "";
  copy.attrs = ObjectAttrs{{{"mode", "33261"}}, ""};
  ASSERT_TRUE(store.Copy(copy).ok());
  EXPECT_EQ(store.Head("dst")->meta.at("mode"), "33261");
  EXPECT_EQ(store.Head("dst")->content_type, "application/octet-stream");
  EXPECT_EQ(GetAll(store, "dst"), "payload");
  copy.source_key = "missing";
  EXPECT_EQ(store.Copy(copy).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.counters().copy, 4);
}

TEST(MemoryStoreWriteTest, DeleteIsIdempotent) {
  MemoryStore store;
  store.PutObject("k", "x");
  EXPECT_TRUE(store.Delete("k").ok());
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.Delete("k").ok());
  store.FailNext(StoreOp::kDelete, Status::Unavailable("down"));
  EXPECT_EQ(store.Delete("k").code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.counters().del, 3);
}

TEST(MemoryStoreWriteTest, HookSeesWrites) {
  MemoryStore store;
  std::vector<StoreOp> seen;
  store.SetHook([&](StoreOp op, const std::string&) { seen.push_back(op); });
  const std::string b = "b";
  ASSERT_TRUE(store.Put(PutRequest{"k", MemBody(b), {}, nullptr}).ok());
  ASSERT_TRUE(store.Delete("k").ok());
  EXPECT_EQ(seen, (std::vector<StoreOp>{StoreOp::kPut, StoreOp::kDelete}));
}

}  // namespace
}  // namespace dsfs
