// cache_maintenance: du, fsck (each corruption found, named, repaired), gc
// in LRU order, clear, refusal while the lock is held, not-a-cache-dir.
#include "cache/cache_maintenance.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using namespace dsfs::testing;  // NOLINT

constexpr uint64_t kBlock = 50000;

// A closed cache of `n` blocks of two objects; returns their keys.
std::vector<BlockKey> Fill(const std::string& dir, int n) {
  std::vector<BlockKey> keys;
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, kBlock), &m);
  EXPECT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
  for (int i = 0; i < n; ++i) {
    BlockKey k = Key(i % 2 ? "odd" : "even", i / 2, "\"e1\"", 10 * kBlock);
    EXPECT_TRUE(c->Put(k, Bytes(kBlock, i)).ok());
    keys.push_back(k);
  }
  return keys;
}

bool Has(const FsckReport& r, CacheProblemKind kind, const std::string& path) {
  for (const auto& p : r.problems) {
    if (p.kind == kind && p.path == path) return true;
  }
  return false;
}

TEST(CacheMaintenance, DuCountsBlocksBytesObjects) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  Fill(dir, 5);
  auto u = CacheUsageOf(dir);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->blocks, 5u);
  EXPECT_EQ(u->bytes, BlockFilesOnDisk(dir).first);
  EXPECT_EQ(u->objects, 2u);
  EXPECT_TRUE(u->clean);
}

TEST(CacheMaintenance, CleanCacheFsckOk) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  Fill(dir, 4);
  auto r = FsckCache(dir, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blocks_checked, 4u);
  EXPECT_EQ(r->entries_checked, 4u);
  EXPECT_TRUE(r->problems.empty());
}

// fsck verifies every chunk of a block: a flip in a middle chunk (one a
// small read may never have touched) is found, and the chunk is named.
TEST(CacheMaintenance, FsckChecksEveryChunk) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  const uint64_t bs = 4 * kVerifyChunk;
  BlockKey k = Key("big", 0, "\"e1\"", 10 * bs);
  {
    Metrics m;
    auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), &m);
    ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
    ASSERT_TRUE(c->Put(k, Bytes(bs, 5)).ok());
  }
  std::string path = LayoutPath(dir, k, bs);
  auto info = ReadBlockFileHeader(path);
  ASSERT_TRUE(info.ok());
  std::string data = ReadFileBytes(path);
  data[info->header_length + 2 * kVerifyChunk + 77] ^= 0x5a;
  WriteFileBytes(path, data);
  auto r = FsckCache(dir, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(Has(*r, CacheProblemKind::kBadChecksum, path));
  for (const auto& p : r->problems) {
    if (p.kind == CacheProblemKind::kBadChecksum) {
      EXPECT_NE(p.detail.find("chunk 2"), std::string::npos) << p.detail;
    }
  }
}

TEST(CacheMaintenance, FsckFindsEachCorruptionAndRepairs) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  auto keys = Fill(dir, 6);
  std::string flipped = LayoutPath(dir, keys[0], kBlock);
  std::string truncated = LayoutPath(dir, keys[1], kBlock);
  std::string version = LayoutPath(dir, keys[2], kBlock);
  std::string fifo = LayoutPath(dir, keys[3], kBlock);
  std::string gone = LayoutPath(dir, keys[4], kBlock);
  std::string data = ReadFileBytes(flipped);
  data[data.size() - 10] ^= 0x5a;
  WriteFileBytes(flipped, data);
  ASSERT_EQ(::truncate(truncated.c_str(), 1000), 0);
  data = ReadFileBytes(version);
  data[8] = 2;  // format version 2
  WriteFileBytes(version, data);
  ASSERT_EQ(::unlink(fifo.c_str()), 0);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // A valid block the index does not know: the gone one, moved to a new name.
  std::string orphan_src = ReadFileBytes(gone);
  ASSERT_EQ(::unlink(gone.c_str()), 0);
  BlockKey extra = Key("other", 0, "\"e2\"", kBlock);
  {
    Metrics m;
    auto c = MustOpen(DiskOpts(tmp.Sub("side"), 64 << 20, kBlock), &m);
    ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
    ASSERT_TRUE(c->Put(extra, Bytes(kBlock, 99)).ok());
  }
  std::string unindexed = LayoutPath(dir, extra, kBlock);
  std::filesystem::create_directories(std::filesystem::path(unindexed).parent_path());
  std::filesystem::copy_file(LayoutPath(tmp.Sub("side"), extra, kBlock), unindexed);

  std::string temp = dir + "/tmp/left.tmp";
  WriteFileBytes(temp, "half a block");

  auto r = FsckCache(dir, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->corrupt());
  EXPECT_TRUE(Has(*r, CacheProblemKind::kTempFile, temp));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kBadChecksum, flipped));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kWrongSize, truncated));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kOldVersion, version));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kNotRegular, fifo));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kNoBlock, gone));
  EXPECT_TRUE(Has(*r, CacheProblemKind::kNoEntry, unindexed));
  // The fifo's entry and the bad files' entries are stale too.
  EXPECT_TRUE(Has(*r, CacheProblemKind::kNoBlock, flipped));

  auto fixed = FsckCache(dir, true);
  ASSERT_TRUE(fixed.ok());
  EXPECT_TRUE(fixed->repaired);
  auto again = FsckCache(dir, false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->problems.empty()) << CacheProblemName(again->problems[0].kind) << " "
                                       << again->problems[0].path;
  EXPECT_EQ(again->blocks_checked, 2u);  // keys[5] and extra
  EXPECT_FALSE(std::filesystem::exists(temp));
  // A mount serves the good blocks and misses the removed ones.
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, kBlock), &m);
  ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
  EXPECT_EQ(Lookup(*c, keys[5], Bytes(kBlock, 5)), 1);
  EXPECT_EQ(Lookup(*c, extra, Bytes(kBlock, 99)), 1);
  EXPECT_EQ(Lookup(*c, keys[0], Bytes(kBlock, 0)), 0);
  EXPECT_EQ(Lookup(*c, keys[1], Bytes(kBlock, 1)), 0);
}

TEST(CacheMaintenance, GcEvictsLeastRecentlyUsedFirst) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  auto keys = Fill(dir, 6);
  {
    Metrics m;
    auto c = MustOpen(DiskOpts(dir, 64 << 20, kBlock), &m);
    ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
    EXPECT_EQ(Lookup(*c, keys[0], Bytes(kBlock, 0)), 1);  // now the most recent
  }
  // Room for exactly the two most recent: keys[0] (just read) and keys[5].
  uint64_t keep = std::filesystem::file_size(LayoutPath(dir, keys[0], kBlock)) +
                  std::filesystem::file_size(LayoutPath(dir, keys[5], kBlock));
  auto r = GcCache(dir, keep);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->evicted_blocks, 4u);
  EXPECT_EQ(r->remaining_bytes, keep);
  EXPECT_EQ(BlockFilesOnDisk(dir).second, 2u);
  EXPECT_TRUE(std::filesystem::exists(LayoutPath(dir, keys[0], kBlock)));
  EXPECT_TRUE(std::filesystem::exists(LayoutPath(dir, keys[5], kBlock)));
  auto f = FsckCache(dir, false);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->problems.empty());
  EXPECT_EQ(CacheUsageOf(dir)->bytes, keep);
}

TEST(CacheMaintenance, ClearLeavesAnEmptyValidCache) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  auto keys = Fill(dir, 3);
  ASSERT_TRUE(ClearCache(dir).ok());
  EXPECT_EQ(BlockFilesOnDisk(dir).second, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/index"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/FORMAT"));
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, kBlock), &m);
  ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
  EXPECT_EQ(c->state(), DiskCacheState::kReady);
  EXPECT_EQ(Lookup(*c, keys[0], Bytes(kBlock, 0)), 0);
  EXPECT_TRUE(c->Put(keys[0], Bytes(kBlock, 0)).ok());
}

TEST(CacheMaintenance, RefusedWhileAMountHoldsTheLock) {
  TempDir tmp;
  std::string dir = tmp.Sub("c");
  auto keys = Fill(dir, 2);
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, kBlock), &m);
  ASSERT_TRUE(c && c->WaitForStartup(std::chrono::seconds(10)));
  Status clear = ClearCache(dir);
  EXPECT_EQ(clear.code(), StatusCode::kUnavailable);
  EXPECT_NE(clear.message().find("in use"), std::string::npos) << clear.message();
  EXPECT_EQ(FsckCache(dir, true).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(GcCache(dir, 0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(BlockFilesOnDisk(dir).second, 2u);
  EXPECT_TRUE(CacheUsageOf(dir).ok());  // du only reads headers
  EXPECT_EQ(Lookup(*c, keys[1], Bytes(kBlock, 1)), 1);
}

TEST(CacheMaintenance, NotACacheDirIsLeftAlone) {
  TempDir tmp;
  std::string dir = tmp.Sub("random");
  std::filesystem::create_directories(dir);
  WriteFileBytes(dir + "/notes.txt", "hello");
  ::chmod(dir.c_str(), 0755);
  for (Status st : {ClearCache(dir), FsckCache(dir, true).status(), GcCache(dir, 0).status(),
                    CacheUsageOf(dir).status(), ClearCache(tmp.Sub("missing"))}) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("not a dsfs cache"), std::string::npos) << st.message();
  }
  EXPECT_EQ(CountEntries(dir), 1u);  // no LOCK, nothing else
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("missing")));
}

}  // namespace
}  // namespace dsfs
