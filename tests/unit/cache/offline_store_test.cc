#include "cache/offline_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "backends/fallback_store.h"
#include "backends/memory_store.h"
#include "cache/persistent_proofs.h"
#include "cache_test_util.h"

namespace dsfs {
namespace {

using testing::TempDir;

// OBS (a MemoryStore) behind the circuit, with no share: the offline case.
class OfflineStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    offline_.reset();
    circuit_.reset();
    db_.reset();
    auto db = MetaDb::Open(dir_.path() + "/meta");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    FallbackOptions fo;
    fo.probe_interval = std::chrono::hours(1);
    circuit_ = std::make_unique<FallbackStore>(obs_, nullptr, fo, &metrics_);
    offline_ = std::make_unique<OfflineStore>(
        *circuit_, *db_, [c = circuit_.get()] { return c->circuit_open(); }, &metrics_);
  }

  void GoDown() { circuit_->OpenCircuit("test: OBS down"); }

  uint64_t Answers() { return metrics_.GetCounter("dsfs_offline_answers_total").value(); }

  TempDir dir_;
  MemoryStore obs_;
  Metrics metrics_;
  std::unique_ptr<MetaDb> db_;
  std::unique_ptr<FallbackStore> circuit_;
  std::unique_ptr<OfflineStore> offline_;
};

TEST_F(OfflineStoreTest, HeadSeenOnlineIsAnsweredOfflineAcrossARemount) {
  obs_.PutObject("m/w.safetensors", "weights", {{"mode", "33188"}, {"mtime", "1700000000.5"}});
  auto online = offline_->Head("m/w.safetensors");
  ASSERT_TRUE(online.ok());
  EXPECT_EQ(offline_->Head("m/missing").status().code(), StatusCode::kNotFound);
  Reopen();  // a remount: only the records on disk remain
  GoDown();
  obs_.ResetCounters();
  auto off = offline_->Head("m/w.safetensors");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->etag, online->etag);
  EXPECT_EQ(off->size, 7u);
  EXPECT_EQ(off->mtime_sec, online->mtime_sec);
  EXPECT_EQ(off->meta.at("mode"), "33188");
  // A name OBS said did not exist is still NotFound, not EIO.
  EXPECT_EQ(offline_->Head("m/missing").status().code(), StatusCode::kNotFound);
  // A name never asked about: the store's own error (EIO), quickly.
  EXPECT_EQ(offline_->Head("m/never").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(obs_.counters().head, 0);
  EXPECT_EQ(Answers(), 2u);
}

TEST_F(OfflineStoreTest, ListingsSeenOnlineAreReplayedPageByPage) {
  for (int i = 0; i < 7; ++i) obs_.PutObject("d/f" + std::to_string(i), "x");
  obs_.PutObject("d/sub/g", "y");
  auto walk = [&](ObjectStore& s) {
    std::vector<std::string> names;
    ListRequest req{.prefix = "d/", .delimiter = "/", .continuation = "", .max_keys = 3};
    for (int pages = 0; pages < 20; ++pages) {
      auto page = s.List(req);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      for (auto& o : page->objects) names.push_back(o.key);
      for (auto& p : page->common_prefixes) names.push_back(p);
      if (page->next_continuation.empty()) break;
      req.continuation = page->next_continuation;
    }
    return names;
  };
  auto online = walk(*offline_);
  ASSERT_EQ(online.size(), 8u);
  Reopen();
  GoDown();
  EXPECT_EQ(walk(*offline_), online);
}

TEST_F(OfflineStoreTest, ObsAnswersReplaceRecords) {
  obs_.PutObject("k", "v1");
  ASSERT_TRUE(offline_->Head("k").ok());
  obs_.RemoveObject("k");
  EXPECT_EQ(offline_->Head("k").status().code(), StatusCode::kNotFound);  // OBS says so
  GoDown();
  EXPECT_EQ(offline_->Head("k").status().code(), StatusCode::kNotFound);  // and it is remembered
  obs_.PutObject("k", "v2!");
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200 && circuit_->circuit_open(); ++i) {
      circuit_->ProbeNow();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return !circuit_->circuit_open();
  }());
  auto v2 = offline_->Head("k");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->size, 3u);
}

TEST_F(OfflineStoreTest, ShareAnswersAreNeverRecordedAsObsMetadata) {
  ObjectInfo share_info;
  share_info.key = "k";
  share_info.source = DataSource::kShare;
  // Through a fake inner store that answers as the share does.
  class ShareLike : public MemoryStore {
   public:
    Result<ObjectInfo> Head(const std::string& key) override {
      auto r = MemoryStore::Head(key);
      if (r.ok()) r->source = DataSource::kShare;
      return r;
    }
  } share;
  share.PutObject("k", "share bytes");
  OfflineStore s(share, *db_, [] { return false; }, &metrics_);
  ASSERT_TRUE(s.Head("k").ok());
  auto rec = db_->Get(OfflineStore::HeadRecordKey("k"));
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
}

TEST_F(OfflineStoreTest, MalformedRecordsReadAsAbsent) {
  ASSERT_TRUE(db_->Put(OfflineStore::HeadRecordKey("k"), "garbage").ok());
  GoDown();
  EXPECT_EQ(offline_->Head("k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(metrics_.GetCounter("dsfs_offline_record_errors_total").value(), 1u);
}

// Records the node holds for "d/f" and its listings, as a mount would.
void SeeOnline(ObjectStore& s) {
  ASSERT_TRUE(s.Head("d/f").ok());
  ASSERT_EQ(s.Head("d/new").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s.List(ListRequest{.prefix = "d/", .delimiter = "/"}).ok());
  ASSERT_TRUE(s.List(ListRequest{.prefix = "", .delimiter = "/"}).ok());
  ASSERT_TRUE(s.List(ListRequest{.prefix = "e/", .delimiter = "/"}).ok());
}

PutRequest PutOf(const std::string& key, const std::string& data) {
  PutRequest r;
  r.key = key;
  r.body = Body{data.data(), -1, 0, data.size()};
  return r;
}

TEST_F(OfflineStoreTest, AWriteForgetsWhatWasRecordedSoOfflineNeverShowsThePastAsCurrent) {
  obs_.PutObject("d/f", "old");
  obs_.PutObject("e/g", "other");
  SeeOnline(*offline_);
  const std::string old_etag = offline_->Head("d/f")->etag;
  const std::string data = "new contents";
  ASSERT_TRUE(offline_->Put(PutOf("d/f", data)).ok());
  ASSERT_TRUE(offline_->Put(PutOf("d/new", data)).ok());
  GoDown();
  // No record of the old version (or of "d/new" as missing) answers.
  auto head = offline_->Head("d/f");
  EXPECT_FALSE(head.ok() && head->etag == old_etag) << "offline HEAD shows the old version";
  EXPECT_EQ(head.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(offline_->Head("d/new").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(offline_->List(ListRequest{.prefix = "d/", .delimiter = "/"}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(offline_->List(ListRequest{.prefix = "", .delimiter = "/"}).status().code(),
            StatusCode::kUnavailable);
  // What the write did not touch still answers.
  EXPECT_TRUE(offline_->List(ListRequest{.prefix = "e/", .delimiter = "/"}).ok());
}

TEST_F(OfflineStoreTest, CopyCompleteAndDeleteForgetTheirKeys) {
  obs_.PutObject("d/f", "old");
  obs_.PutObject("d/src", "src");
  SeeOnline(*offline_);
  ASSERT_TRUE(offline_->Head("d/src").ok());
  CopyRequest copy;
  copy.source_key = "d/src";
  copy.key = "d/f";
  ASSERT_TRUE(offline_->Copy(copy).ok());
  GoDown();
  EXPECT_EQ(offline_->Head("d/f").status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(offline_->Head("d/src").ok());  // the source did not change

  Reopen();
  SeeOnline(*offline_);
  auto id = offline_->CreateMultipartUpload("d/f", {});
  ASSERT_TRUE(id.ok());
  UploadPartRequest part;
  part.key = "d/f";
  part.upload_id = *id;
  part.part_number = 1;
  const std::string data = "part one";
  part.body = Body{data.data(), -1, 0, data.size()};
  auto etag = offline_->UploadPart(part);
  ASSERT_TRUE(etag.ok());
  ASSERT_TRUE(offline_->CompleteMultipartUpload("d/f", *id, {{1, *etag}}).ok());
  GoDown();
  EXPECT_EQ(offline_->Head("d/f").status().code(), StatusCode::kUnavailable);

  Reopen();
  SeeOnline(*offline_);
  ASSERT_TRUE(offline_->Delete("d/f").ok());
  GoDown();
  // Deleted: offline it is missing, as OBS would say.
  EXPECT_EQ(offline_->Head("d/f").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(offline_->List(ListRequest{.prefix = "d/", .delimiter = "/"}).status().code(),
            StatusCode::kUnavailable);
}

TEST_F(OfflineStoreTest, AWriteThatMayHaveReachedObsForgetsOneRefusedKeepsTheRecords) {
  obs_.PutObject("d/f", "old");
  SeeOnline(*offline_);
  // Refused before anything was sent: the records stay true.
  GoDown();
  EXPECT_EQ(offline_->Put(PutOf("d/f", "x")).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(offline_->Head("d/f").ok());
  // A timeout after sending: OBS may hold the new version.
  Reopen();
  SeeOnline(*offline_);
  obs_.FailNext(StoreOp::kPut, Status::Transient("timed out"));
  EXPECT_EQ(offline_->Put(PutOf("d/f", "x")).status().code(), StatusCode::kTransient);
  GoDown();
  EXPECT_EQ(offline_->Head("d/f").status().code(), StatusCode::kUnavailable);
}

TEST(PersistentProofBook, SurvivesReopenAndIgnoresGarbage) {
  TempDir dir;
  {
    auto db = MetaDb::Open(dir.path() + "/meta");
    ASSERT_TRUE(db.ok());
    PersistentProofBook book(**db);
    book.Record("k", "sfs-1-2-3", ProofRecord{"abc", ProofVerdict::kProven});
    ASSERT_TRUE((*db)->Put(std::string("p") + '\0' + "bad" + '\0' + "sfs-x", "junk").ok());
  }
  auto db = MetaDb::Open(dir.path() + "/meta");
  ASSERT_TRUE(db.ok());
  PersistentProofBook book(**db);
  auto r = book.Find("k", "sfs-1-2-3");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->obs_etag, "abc");
  EXPECT_EQ(r->verdict, ProofVerdict::kProven);
  EXPECT_FALSE(book.Find("k", "sfs-1-2-4").has_value());
  EXPECT_FALSE(book.Find("bad", "sfs-x").has_value());
}

}  // namespace
}  // namespace dsfs
