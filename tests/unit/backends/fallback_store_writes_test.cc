// FallbackStore's writes: the primary only, refused at once while the
// circuit is open, and counted towards the circuit like reads.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "backends/fallback_store.h"
#include "backends/memory_store.h"

namespace dsfs {
namespace {

class FallbackWritesTest : public ::testing::Test {
 protected:
  std::unique_ptr<FallbackStore> Make() {
    FallbackOptions opts;
    opts.probe_interval = std::chrono::hours(1);  // probes only on ProbeNow()
    return std::make_unique<FallbackStore>(primary_, &share_, opts, &metrics_);
  }
  static int Total(const StoreCounters& c) {
    return c.head + c.list + c.get + c.put + c.copy + c.create_multipart + c.upload_part +
           c.complete + c.abort + c.del;
  }
  PutRequest Put(const std::string& key) {
    PutRequest r;
    r.key = key;
    r.body = Body{body_.data(), -1, 0, body_.size()};
    return r;
  }

  const std::string body_ = "bytes";
  MemoryStore primary_;
  MemoryStore share_;  // stands in for the share: counts what reaches it
  Metrics metrics_;
};

TEST_F(FallbackWritesTest, WritesGoToThePrimaryOnly) {
  auto fb = Make();
  ASSERT_TRUE(fb->Put(Put("a")).ok());
  CopyRequest copy;
  copy.source_key = "a";
  copy.key = "b";
  ASSERT_TRUE(fb->Copy(copy).ok());
  auto id = fb->CreateMultipartUpload("c", {});
  ASSERT_TRUE(id.ok());
  UploadPartRequest part;
  part.key = "c";
  part.upload_id = *id;
  part.part_number = 1;
  part.body = Put("c").body;
  auto etag = fb->UploadPart(part);
  ASSERT_TRUE(etag.ok());
  ASSERT_TRUE(fb->CompleteMultipartUpload("c", *id, {{1, *etag}}).ok());
  auto id2 = fb->CreateMultipartUpload("d", {});
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(fb->AbortMultipartUpload("d", *id2).ok());
  ASSERT_TRUE(fb->Delete("a").ok());
  EXPECT_EQ(primary_.Head("b")->size, body_.size());
  EXPECT_EQ(primary_.Head("c")->size, body_.size());
  EXPECT_EQ(primary_.Head("a").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(primary_.PendingUploads().empty());
  EXPECT_EQ(Total(share_.counters()), 0);
}

TEST_F(FallbackWritesTest, WhileTheCircuitIsOpenWritesFailAtOnceWithoutTouchingTheShare) {
  auto fb = Make();
  fb->OpenCircuit("test: OBS down");
  primary_.ResetCounters();
  auto put = fb->Put(Put("a"));
  EXPECT_EQ(put.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(put.status().message().find("OBS is unreachable: writes need it"), std::string::npos)
      << put.status().message();
  CopyRequest copy;
  copy.source_key = "a";
  copy.key = "b";
  EXPECT_EQ(fb->Copy(copy).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(fb->CreateMultipartUpload("c", {}).status().code(), StatusCode::kUnavailable);
  UploadPartRequest part;
  part.key = "c";
  part.upload_id = "x";
  part.part_number = 1;
  EXPECT_EQ(fb->UploadPart(part).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(fb->CompleteMultipartUpload("c", "x", {{1, "e"}}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(fb->AbortMultipartUpload("c", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(fb->Delete("a").code(), StatusCode::kUnavailable);
  EXPECT_EQ(Total(primary_.counters()), 0);
  EXPECT_EQ(Total(share_.counters()), 0);
  // Once the probe sees OBS again, writes go through.
  fb->ProbeNow();
  for (int i = 0; i < 500 && fb->circuit_open(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(fb->circuit_open());
  EXPECT_TRUE(fb->Put(Put("a")).ok());
}

TEST_F(FallbackWritesTest, WriteFailuresOpenTheCircuitLikeReadFailures) {
  auto fb = Make();
  // Two failed writes and an answer: the count starts again.
  primary_.FailNext(StoreOp::kPut, Status::Transient("503"), 2);
  EXPECT_FALSE(fb->Put(Put("a")).ok());
  EXPECT_FALSE(fb->Put(Put("a")).ok());
  EXPECT_TRUE(fb->Put(Put("a")).ok());
  primary_.FailNext(StoreOp::kUploadPart, Status::Throttled("slow down"), 2);
  UploadPartRequest part;
  part.key = "a";
  part.upload_id = "none";
  part.part_number = 1;
  EXPECT_FALSE(fb->UploadPart(part).ok());
  EXPECT_FALSE(fb->UploadPart(part).ok());
  EXPECT_FALSE(fb->circuit_open());
  // The third in a row opens it; an answer that is an error (NotFound)
  // does not count.
  primary_.FailNext(StoreOp::kDelete, Status::Transient("reset"));
  EXPECT_EQ(fb->Delete("a").code(), StatusCode::kTransient);
  EXPECT_TRUE(fb->circuit_open());
  EXPECT_EQ(Total(share_.counters()), 0);

  auto fb2 = Make();
  primary_.FailNext(StoreOp::kComplete, Status::Unavailable("connect refused"));
  EXPECT_EQ(fb2->CompleteMultipartUpload("a", "x", {{1, "e"}}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_TRUE(fb2->circuit_open());
}

TEST_F(FallbackWritesTest, WriteErrorsThatAreAnswersDoNotOpenTheCircuit) {
  auto fb = Make();
  for (int i = 0; i < 5; ++i) {
    primary_.FailNext(StoreOp::kCopy, Status::PreconditionFailed("changed"));
    CopyRequest copy;
    copy.source_key = "a";
    copy.key = "b";
    EXPECT_EQ(fb->Copy(copy).status().code(), StatusCode::kPreconditionFailed);
  }
  EXPECT_FALSE(fb->circuit_open());
}

}  // namespace
}  // namespace dsfs
