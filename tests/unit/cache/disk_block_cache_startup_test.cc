// DiskBlockCache: block identity across block sizes, the start-up states
// (a cache always reaches kReady or kOff), and a cache_dir that holds
// things it should not (symlinks, an index in use, a full disk).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "cache/cache_index.h"
#include "cache/disk_block_cache.h"
#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using namespace dsfs::testing;  // NOLINT
using std::chrono::seconds;

// The bytes of block `index` of `object` for block_size (a slice of `all`).
BlockData Slice(const BlockData& all, const BlockKey& key, uint64_t block_size) {
  BlockExtent e = ExtentOf(key, block_size);
  return Buffer::Copy(std::string_view(all->data() + e.offset, e.length));
}

// One cache_dir used with block sizes 4K, 8K, 4K, 1K: every hit has exactly
// the object's bytes at that offset; a block is reused only where offset
// and length are the same.
TEST(DiskBlockCacheIdentity, AnotherBlockSizeNeverServesWrongBytes) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  const uint64_t kib = 1024;
  std::vector<std::pair<ObjectId, BlockData>> objects;
  for (uint64_t size : {4 * kib - 1, 4 * kib, 4 * kib + 1, 12 * kib, 12 * kib + 1, 20 * kib - 1}) {
    objects.push_back({ObjectId{"o" + std::to_string(size), "\"e\"", size}, Bytes(size, size)});
  }
  int reused = 0;
  for (uint64_t bs : {4 * kib, 8 * kib, 4 * kib, 1 * kib}) {
    Metrics m;
    auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), &m);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->WaitForStartup(seconds(10)));
    for (const auto& [obj, all] : objects) {
      for (uint64_t i = 0; i * bs < obj.size; ++i) {
        BlockKey k{obj, i};
        BlockData want = Slice(all, k, bs);
        int got = Lookup(*c, k, want);
        ASSERT_GE(got, 0) << obj.key << " block " << i << " with block size " << bs;
        reused += got;
        if (got == 0) {
          ASSERT_TRUE(c->Put(k, want).ok());
        }
        ASSERT_EQ(Lookup(*c, k, want), 1);
      }
    }
    EXPECT_EQ(CounterValue(m, "dsfs_cache_corrupt_blocks_total"), 0u);
  }
  // 4K after 8K: the first 8K blocks of each object were not reusable, but
  // the second 4K pass finds its own blocks again, and objects smaller than
  // 4K are one extent for every block size >= 4K.
  EXPECT_GT(reused, 0);
}

// A block written under one block size, asked for under another at the
// same index: a miss, never the other block's bytes.
TEST(DiskBlockCacheIdentity, SameIndexOtherBlockSizeIsAMiss) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  ObjectId obj{"big", "\"e\"", 12 << 10};
  BlockData all = Bytes(12 << 10, 1);
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 4 << 10), nullptr);
    for (uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(c->Put({obj, i}, Slice(all, {obj, i}, 4 << 10)).ok());
    }
  }
  auto c = MustOpen(DiskOpts(dir, 64 << 20, 8 << 10), nullptr);
  auto r = c->Get({obj, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());  // 8K at 0: not the 4K block at 0
  r = c->Get({obj, 1});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());  // [8K, 12K): the same extent as 4K block 2
  EXPECT_TRUE(***r == *Slice(all, {obj, 1}, 8 << 10));
}

// An index written before block format 3 is rebuilt from the files; the
// format 1/2 files are deleted, format 3 and 4 files are kept.
TEST(DiskBlockCacheIdentity, IndexOfOldBlockFormatIsRebuiltAndOldFilesDeleted) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  const uint64_t bs = 100;
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), nullptr);
    for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(bs, i)).ok());
  }
  // What an older dsfs left: its index meta (no block format) and a file
  // of format 2 (same layout, the block index where the offset is now).
  std::string old_path = LayoutPath(dir, Key("old", 0), bs);
  std::filesystem::create_directories(std::filesystem::path(old_path).parent_path());
  ASSERT_TRUE(WriteBlockFile(old_path, ExtentOf(Key("old", 0), bs), *Bytes(bs, 9)).ok());
  std::string bytes = ReadFileBytes(old_path);
  bytes[8] = 2;
  WriteFileBytes(old_path, bytes);
  {
    IndexOpenOutcome outcome;
    auto index = CacheIndex::Open(dir + "/index", &outcome);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    CacheIndex::Batch b;
    b.SetMeta(IndexMeta{(*index)->ReadMeta()->used_bytes, 10, 0});
    ASSERT_TRUE((*index)->Write(b).ok());
  }
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), &m);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  EXPECT_EQ(c->state(), DiskCacheState::kReady);
  EXPECT_FALSE(std::filesystem::exists(old_path));
  EXPECT_EQ(CounterValue(m, "dsfs_cache_old_format_files_removed_total"), 1u);
  EXPECT_EQ(c->block_count(), 5u);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(Lookup(*c, Key("f", i), Bytes(bs, i)), 1);
}

// CLEAN present, index deleted: the files are counted again and the cap holds.
TEST(DiskBlockCacheStartup, DeletedIndexWithCleanMarkerIsReconciled) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  const uint64_t bs = 1000;
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), nullptr);
    for (uint64_t i = 0; i < 40; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(bs, i)).ok());
  }
  ASSERT_TRUE(std::filesystem::exists(dir + "/CLEAN"));
  std::filesystem::remove_all(dir + "/index");
  const uint64_t cap = 10 * BlockFileSize(ExtentOf(Key("f", 0), bs));
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, cap, bs), &m);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  EXPECT_EQ(c->state(), DiskCacheState::kReady);
  auto [bytes, files] = BlockFilesOnDisk(dir);
  EXPECT_LE(bytes, cap);
  EXPECT_EQ(files, 10u);
  EXPECT_EQ(c->UsedBytes(), bytes);
  EXPECT_EQ(CounterValue(m, "dsfs_cache_orphan_files_total"), 40u);
}

// The reconcile cannot finish (tmp/ is a file): the tier turns off, Put
// fails at once instead of waiting ready_wait, and CLEAN is not written.
TEST(DiskBlockCacheStartup, FailedReconcileTurnsTheTierOffAndNobodyWaits) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr);
    for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(10, i)).ok());
  }
  ASSERT_EQ(::unlink((dir + "/CLEAN").c_str()), 0);
  std::filesystem::remove_all(dir + "/tmp");
  WriteFileBytes(dir + "/tmp", "not a directory");
  Metrics m;
  auto o = DiskOpts(dir, 64 << 20, 10);
  o.ready_wait = std::chrono::milliseconds(30000);
  {
    auto c = MustOpen(o, &m);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->WaitForStartup(seconds(30)));
    EXPECT_EQ(c->state(), DiskCacheState::kOff);
    EXPECT_EQ(CounterValue(m, "dsfs_cache_disk_off_total"), 1u);
    EXPECT_EQ(m.GetGauge("dsfs_cache_disk_on").value(), 0);
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < 20; ++i) {
      EXPECT_EQ(c->Put(Key("g", i), Bytes(10, i)).code(), StatusCode::kUnavailable);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(5));  // not 20 x 30 s
    EXPECT_EQ(Lookup(*c, Key("f", 1), Bytes(10, 1)), 0);
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/CLEAN"));
  // With tmp/ repaired the next open reconciles and serves again.
  ::unlink((dir + "/tmp").c_str());
  auto c = MustOpen(o, nullptr);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  EXPECT_EQ(c->state(), DiskCacheState::kReady);
  EXPECT_EQ(Lookup(*c, Key("f", 1), Bytes(10, 1)), 1);
}

// A Put already waiting when the start-up fails is released at once.
TEST(DiskBlockCacheStartup, WaitingPutIsReleasedWhenTheTierTurnsOff) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr);
    ASSERT_TRUE(c->Put(Key("f", 0), Bytes(10, 0)).ok());
  }
  ASSERT_EQ(::unlink((dir + "/CLEAN").c_str()), 0);
  auto o = DiskOpts(dir, 64 << 20, 10);
  o.background = false;
  o.ready_wait = std::chrono::milliseconds(60000);
  auto c = MustOpen(o, nullptr);
  ASSERT_TRUE(c->LoadIndex().ok());
  EXPECT_EQ(c->state(), DiskCacheState::kReconciling);
  std::filesystem::remove_all(dir + "/blocks");
  WriteFileBytes(dir + "/blocks", "x");
  EXPECT_FALSE(c->Reconcile().ok());
  EXPECT_EQ(c->state(), DiskCacheState::kOff);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c->Put(Key("f", 1), Bytes(10, 1)).code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(5));
}

// Symlinks under tmp/ and blocks/ are removed as links by the reconcile;
// what they point at is neither read (not adopted as a block) nor touched.
TEST(DiskBlockCacheStartup, ReconcileNeverFollowsSymlinks) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  const uint64_t bs = 100;
  { auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), nullptr); }
  ASSERT_EQ(::unlink((dir + "/CLEAN").c_str()), 0);
  // Outside: a file, a directory with a file, and a valid block file.
  std::string out = tmp.Sub("outside");
  std::filesystem::create_directories(out + "/dir");
  WriteFileBytes(out + "/file", "precious");
  WriteFileBytes(out + "/dir/inner", "precious too");
  BlockKey k = Key("planted", 0);
  ASSERT_TRUE(WriteBlockFile(out + "/block", ExtentOf(k, bs), *Bytes(bs, 5)).ok());
  ASSERT_EQ(::symlink((out + "/file").c_str(), (dir + "/tmp/x.tmp").c_str()), 0);
  ASSERT_EQ(::symlink((out + "/dir").c_str(), (dir + "/tmp/d").c_str()), 0);
  ASSERT_EQ(::symlink((out + "/dir").c_str(), (dir + "/blocks/zz").c_str()), 0);
  std::string link = LayoutPath(dir, k, bs);
  std::filesystem::create_directories(std::filesystem::path(link).parent_path());
  ASSERT_EQ(::symlink((out + "/block").c_str(), link.c_str()), 0);
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, bs), &m);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  EXPECT_EQ(c->state(), DiskCacheState::kReady);
  struct stat st;
  for (const char* p : {"/tmp/x.tmp", "/tmp/d", "/blocks/zz"}) {
    EXPECT_NE(::lstat((dir + p).c_str(), &st), 0) << p << " still there";
  }
  EXPECT_NE(::lstat(link.c_str(), &st), 0);
  EXPECT_EQ(ReadFileBytes(out + "/file"), "precious");
  EXPECT_EQ(ReadFileBytes(out + "/dir/inner"), "precious too");
  EXPECT_TRUE(std::filesystem::exists(out + "/block"));
  EXPECT_EQ(c->block_count(), 0u);  // the planted block was not adopted
  EXPECT_EQ(Lookup(*c, k, Bytes(bs, 5)), 0);
}

// blocks/ (or blocks/XX) as a symlink at Open: replaced, never written through.
TEST(DiskBlockCacheStartup, SymlinkedBlocksDirIsReplacedNotWrittenThrough) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  { auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr); }
  std::string out = tmp.Sub("outside");
  std::filesystem::create_directories(out);
  std::string out_index = tmp.Sub("outside-index");
  std::filesystem::create_directories(out_index);
  std::filesystem::remove_all(dir + "/blocks");
  ASSERT_EQ(::symlink(out.c_str(), (dir + "/blocks").c_str()), 0);
  std::filesystem::remove_all(dir + "/index");
  ASSERT_EQ(::symlink(out_index.c_str(), (dir + "/index").c_str()), 0);
  auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(10, i)).ok());
  EXPECT_EQ(CountEntries(out), 0u);
  EXPECT_EQ(CountEntries(out_index), 0u);
  struct stat st;
  for (const char* d : {"/blocks", "/index"}) {
    ASSERT_EQ(::lstat((dir + d).c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
  }
}

// An index that is not corrupt but cannot be opened (RocksDB's lock is
// held) fails Open with a clear message and is left as it is.
TEST(DiskBlockCacheStartup, IndexInUseIsAnErrorNeverAWipe) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr);
    for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(10, i)).ok());
  }
  IndexOpenOutcome outcome;
  auto holder = CacheIndex::Open(dir + "/index", &outcome);  // holds RocksDB's LOCK
  ASSERT_TRUE(holder.ok());
  auto r = DiskBlockCache::Open(DiskOpts(dir, 64 << 20, 10), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("index cannot be opened"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir + "/index.broken"));
  holder->reset();
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, 10), &m);
  ASSERT_TRUE(c->WaitForStartup(seconds(30)));
  EXPECT_EQ(c->block_count(), 5u);
  EXPECT_EQ(CounterValue(m, "dsfs_cache_orphan_files_total"), 0u);  // not rebuilt
}

// Mounts a tmpfs for the test's lifetime (root only).
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, const char* opts) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

void FillUp(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  std::string chunk(64 << 10, 'x');
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  std::string one(1, 'x');
  while (::write(fd, one.data(), 1) > 0) {
  }
  ::close(fd);
}

// A full disk at Open: the cache opens with the tier off (new or existing
// cache_dir), Put fails at once.
TEST(DiskBlockCacheStartup, FullDiskAtOpenTurnsTheTierOff) {
  TempDir tmp;
  Tmpfs fs(tmp.Sub("full"), "size=1m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  std::string used = tmp.Sub("full/used");
  { ASSERT_TRUE(MustOpen(DiskOpts(used, 64 << 20, 4096), nullptr)); }
  FillUp(tmp.Sub("full/filler"));
  for (const std::string& dir : {used, tmp.Sub("full/new")}) {
    Metrics m;
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 4096), &m);
    ASSERT_TRUE(c) << dir;
    EXPECT_EQ(c->state(), DiskCacheState::kOff) << dir;
    EXPECT_TRUE(c->WaitForStartup(seconds(1)));
    EXPECT_EQ(CounterValue(m, "dsfs_cache_disk_off_total"), 1u);
    EXPECT_EQ(c->Put(Key("f", 0), Bytes(4096, 0)).code(), StatusCode::kUnavailable);
    EXPECT_EQ(Lookup(*c, Key("f", 0), Bytes(4096, 0)), 0);
  }
}

TEST(CacheDir, CleanMarkerIsTakenOnce) {
  TempDir tmp;
  auto d = CacheDir::Open(tmp.Sub("c"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  bool suspect;
  ASSERT_TRUE(d->PrepareLayout(&suspect).ok());
  EXPECT_FALSE(*d->TakeCleanMarker());
  ASSERT_TRUE(d->MarkClean().ok());
  EXPECT_TRUE(std::filesystem::exists(tmp.Sub("c/CLEAN")));
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("c/CLEAN.tmp")));
  EXPECT_TRUE(*d->TakeCleanMarker());
  EXPECT_FALSE(*d->TakeCleanMarker());
}

}  // namespace
}  // namespace dsfs
