#include "cache/cache_index.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using testing::TempDir;

BlockId Id(uint64_t n) { return BlockId{n * 7, n}; }

TEST(CacheIndex, WriteReadIterateReopen) {
  TempDir dir;
  std::string path = dir.Sub("index");
  {
    IndexOpenOutcome outcome;
    auto index = CacheIndex::Open(path, &outcome);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    EXPECT_EQ(outcome, IndexOpenOutcome::kCreated);
    EXPECT_TRUE(*(*index)->Empty());
    auto meta = (*index)->ReadMeta();
    ASSERT_TRUE(meta.ok());
    EXPECT_EQ(meta->used_bytes, 0u);
    CacheIndex::Batch b;
    for (uint64_t i = 1; i <= 100; ++i) b.Put(Id(i), IndexRecord{i * 10, i});
    b.Delete(Id(50));
    b.SetMeta(IndexMeta{12345, 100, 3});
    ASSERT_TRUE((*index)->Write(b).ok());
  }
  IndexOpenOutcome outcome;
  auto index = CacheIndex::Open(path, &outcome);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(outcome, IndexOpenOutcome::kExisting);
  EXPECT_FALSE(*(*index)->Empty());
  auto rec = (*index)->Get(Id(7));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(rec->has_value());
  EXPECT_EQ(**rec, (IndexRecord{70, 7}));
  EXPECT_FALSE((*index)->Get(Id(50))->has_value());
  auto meta = (*index)->ReadMeta();
  EXPECT_EQ(meta->used_bytes, 12345u);
  EXPECT_EQ(meta->max_seq, 100u);
  EXPECT_EQ(meta->block_format, 3u);
  size_t n = 0;
  ASSERT_TRUE((*index)
                  ->ForEach([&](const BlockId&, const IndexRecord&) {
                    ++n;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(n, 99u);  // meta keys are not block records
  n = 0;
  ASSERT_TRUE((*index)->ForEach([&](const BlockId&, const IndexRecord&) { return ++n < 5; }).ok());
  EXPECT_EQ(n, 5u);
}

TEST(CacheIndex, GarbageFilesAreMovedAsideAndRecreated) {
  TempDir dir;
  std::string path = dir.Sub("index");
  {
    IndexOpenOutcome outcome;
    auto index = CacheIndex::Open(path, &outcome);
    ASSERT_TRUE(index.ok());
    CacheIndex::Batch b;
    b.Put(Id(1), IndexRecord{1, 1});
    ASSERT_TRUE((*index)->Write(b).ok());
    ASSERT_TRUE((*index)->Flush().ok());
  }
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    std::ofstream out(e.path(), std::ios::binary | std::ios::trunc);
    out << "this is not a rocksdb file \x01\x02\x03";
  }
  IndexOpenOutcome outcome;
  auto index = CacheIndex::Open(path, &outcome);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(outcome, IndexOpenOutcome::kRecreated);
  EXPECT_TRUE(std::filesystem::exists(path + ".broken"));
  EXPECT_FALSE((*index)->Get(Id(1))->has_value());
  // The new index works.
  CacheIndex::Batch b;
  b.Put(Id(2), IndexRecord{2, 2});
  EXPECT_TRUE((*index)->Write(b).ok());
}

TEST(CacheIndex, OpenFailsWhenNothingCanBeCreated) {
  TempDir dir;
  // The index path's parent is a regular file: neither open nor recreate works.
  std::ofstream(dir.Sub("file")) << "x";
  IndexOpenOutcome outcome;
  auto index = CacheIndex::Open(dir.Sub("file/index"), &outcome);
  EXPECT_FALSE(index.ok());
}

// Held by another opener (RocksDB's LOCK): an error, and the index is
// neither moved aside nor emptied.
TEST(CacheIndex, IndexInUseIsAnErrorAndLeftAlone) {
  TempDir dir;
  std::string path = dir.Sub("index");
  IndexOpenOutcome outcome;
  auto first = CacheIndex::Open(path, &outcome);
  ASSERT_TRUE(first.ok());
  CacheIndex::Batch b;
  b.Put(Id(1), IndexRecord{1, 1});
  ASSERT_TRUE((*first)->Write(b).ok());
  auto second = CacheIndex::Open(path, &outcome);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError) << second.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(path + ".broken"));
  EXPECT_TRUE((*first)->Get(Id(1))->has_value());
}

TEST(CacheIndex, RecordAndKeyEncoding) {
  IndexRecord rec{0x0102030405060708ULL, 42};
  IndexRecord back;
  ASSERT_TRUE(CacheIndex::DecodeRecord(CacheIndex::EncodeRecord(rec), &back));
  EXPECT_EQ(back, rec);
  EXPECT_FALSE(CacheIndex::DecodeRecord("short", &back));
  std::string bad_version = CacheIndex::EncodeRecord(rec);
  bad_version[0] = 9;
  EXPECT_FALSE(CacheIndex::DecodeRecord(bad_version, &back));
  BlockId id{0xdeadbeef, 0xfeed}, id_back;
  ASSERT_TRUE(CacheIndex::DecodeKey(CacheIndex::EncodeKey(id), &id_back));
  EXPECT_EQ(id_back, id);
  EXPECT_FALSE(CacheIndex::DecodeKey("m:used", &id_back));
}

}  // namespace
}  // namespace dsfs
