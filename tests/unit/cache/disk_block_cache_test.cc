// DiskBlockCache: round trips, verification on read, eviction, directory
// checks and write errors. Restart/recovery behaviour is in
// disk_block_cache_recovery_test.cc.
#include "cache/disk_block_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using namespace dsfs::testing;  // NOLINT

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(DiskBlockCache, PutGetAndPermissions) {
  TempDir tmp;
  std::string dir = tmp.Sub("a/b/cache");  // parents are created too
  Metrics m;
  auto c = MustOpen(DiskOpts(dir, 64 << 20, 50000), &m);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->WaitForStartup(std::chrono::seconds(10)));
  BlockKey k = Key("models/x.safetensors", 3);
  BlockData d = Bytes(50000, 3);
  EXPECT_EQ(Lookup(*c, k, d), 0);
  EXPECT_FALSE(c->Contains(k));
  ASSERT_TRUE(c->Put(k, d).ok());
  EXPECT_TRUE(c->Contains(k));
  EXPECT_FALSE(c->Contains(Key("models/x.safetensors", 4)));
  EXPECT_FALSE(c->Contains(Key("models/x.safetensors", 3, "\"e2\"")));
  EXPECT_EQ(Lookup(*c, k, d), 1);
  EXPECT_EQ(Lookup(*c, Key("models/x.safetensors", 3, "\"e2\""), d), 0);  // new ETag: miss
  EXPECT_EQ(c->BlockPath(k), LayoutPath(dir, k, 50000));
  EXPECT_EQ(c->UsedBytes(), BlockFileSize(c->ExtentOf(k)));
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(c->BlockPath(k)), 0600u);
  EXPECT_EQ(ModeOf(dir + "/FORMAT"), 0600u);
  EXPECT_EQ(ReadFileBytes(dir + "/FORMAT"), "dsfs-cache-format 1\n");
  EXPECT_EQ(CounterValue(m, "dsfs_cache_disk_hits_total"), 1u);
  EXPECT_EQ(CounterValue(m, "dsfs_cache_disk_misses_total"), 2u);
  EXPECT_EQ(CounterValue(m, "dsfs_cache_disk_bytes_read_total"), 50000u);  // the disk tier
  EXPECT_EQ(m.GetGauge("dsfs_cache_disk_on").value(), 1);
  // Replacing a block keeps one copy.
  BlockData d2 = Bytes(50000, 9);
  ASSERT_TRUE(c->Put(k, d2).ok());
  EXPECT_EQ(Lookup(*c, k, d2), 1);
  EXPECT_EQ(c->block_count(), 1u);
  EXPECT_EQ(c->UsedBytes(), BlockFileSize(c->ExtentOf(k)));
  EXPECT_EQ(CountEntries(dir + "/tmp"), 0u);
}

TEST(DiskBlockCache, ExistingDirIsMadePrivate) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  auto c = MustOpen(DiskOpts(dir), nullptr);
  ASSERT_TRUE(c);
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(DiskBlockCache, PersistsAcrossReopen) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  uint64_t used;
  {
    auto c = MustOpen(DiskOpts(dir, 64 << 20, 1000), nullptr);
    ASSERT_TRUE(c);
    for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(c->Put(Key("f", i), Bytes(1000, i)).ok());
    used = c->UsedBytes();
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/CLEAN"));
  auto c = MustOpen(DiskOpts(dir, 64 << 20, 1000), nullptr);
  ASSERT_TRUE(c);
  EXPECT_FALSE(std::filesystem::exists(dir + "/CLEAN"));  // until the next clean close
  EXPECT_EQ(c->UsedBytes(), used);                        // known at Open, before any load
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(Lookup(*c, Key("f", i), Bytes(1000, i)), 1);
  ASSERT_TRUE(c->WaitForStartup(std::chrono::seconds(10)));
  EXPECT_EQ(c->block_count(), 10u);
}

// Corruptions of a stored file; each must be a miss that drops the block.
class DiskCorruptionTest : public ::testing::TestWithParam<int> {};

TEST_P(DiskCorruptionTest, IsMissDroppedAndCounted) {
  TempDir tmp;
  Metrics m;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache"), 64 << 20, 5000), &m);
  ASSERT_TRUE(c);
  BlockKey a = Key("f", 1), b = Key("f", 2);
  BlockData da = Bytes(5000, 1), db = Bytes(5000, 2);
  ASSERT_TRUE(c->Put(a, da).ok());
  ASSERT_TRUE(c->Put(b, db).ok());
  std::string path = c->BlockPath(a);
  std::string bytes = ReadFileBytes(path);
  switch (GetParam()) {
    case 0:
      bytes[bytes.size() - 10] ^= 1;
      break;  // data bit flip
    case 1:
      bytes.resize(bytes.size() - 1);
      break;  // short file
    case 2:
      bytes[0] = 'X';
      break;  // bad magic
    case 3:
      bytes = ReadFileBytes(c->BlockPath(b));
      break;  // another block's file
    case 4:
      bytes[20] ^= 1;
      break;  // header field (object size)
    case 5:
      bytes.clear();
      break;  // empty file
  }
  WriteFileBytes(path, bytes);
  EXPECT_EQ(Lookup(*c, a, da), 0);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(CounterValue(m, "dsfs_cache_corrupt_blocks_total"), 1u);
  EXPECT_EQ(c->block_count(), 1u);
  EXPECT_EQ(c->UsedBytes(), BlockFileSize(c->ExtentOf(b)));
  EXPECT_EQ(Lookup(*c, b, db), 1);  // the other block is untouched
  // The block can be cached again.
  ASSERT_TRUE(c->Put(a, da).ok());
  EXPECT_EQ(Lookup(*c, a, da), 1);
}

INSTANTIATE_TEST_SUITE_P(Kinds, DiskCorruptionTest, ::testing::Range(0, 6));

TEST(DiskBlockCache, DeletedFileIsAMissAndDropsTheEntry) {
  TempDir tmp;
  Metrics m;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache"), 64 << 20, 10), &m);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Put(Key("f", 1), Bytes(10, 1)).ok());
  ASSERT_EQ(::unlink(c->BlockPath(Key("f", 1)).c_str()), 0);
  EXPECT_EQ(Lookup(*c, Key("f", 1), Bytes(10, 1)), 0);
  EXPECT_EQ(c->block_count(), 0u);
  EXPECT_EQ(c->UsedBytes(), 0u);
  EXPECT_EQ(CounterValue(m, "dsfs_cache_orphan_index_entries_total"), 1u);
}

// A FIFO, a directory or a symlink where a block file should be is a miss
// at once (never opened blocking, never followed) and is removed; what a
// symlink points at is left alone.
TEST(DiskBlockCache, NonRegularFileAtABlockPathIsAMissAndRemoved) {
  TempDir tmp;
  Metrics m;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache"), 64 << 20, 10), &m);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->WaitForStartup(std::chrono::seconds(10)));
  WriteFileBytes(tmp.Sub("outside"), "precious");
  for (int kind = 0; kind < 3; ++kind) {
    BlockKey k = Key("f", static_cast<uint64_t>(kind));
    ASSERT_TRUE(c->Put(k, Bytes(10, 1)).ok());
    std::string path = c->BlockPath(k);
    ASSERT_EQ(::unlink(path.c_str()), 0);
    if (kind == 0) {
      ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    }
    if (kind == 1) {
      ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
    }
    if (kind == 2) {
      ASSERT_EQ(::symlink(tmp.Sub("outside").c_str(), path.c_str()), 0);
    }
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(Lookup(*c, k, Bytes(10, 1)), 0) << kind;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10)) << kind;
    struct stat st;
    EXPECT_NE(::lstat(path.c_str(), &st), 0) << kind << ": not removed";
    ASSERT_TRUE(c->Put(k, Bytes(10, 1)).ok());  // and cached again
    EXPECT_EQ(Lookup(*c, k, Bytes(10, 1)), 1) << kind;
  }
  EXPECT_EQ(ReadFileBytes(tmp.Sub("outside")), "precious");
  EXPECT_EQ(CounterValue(m, "dsfs_cache_corrupt_blocks_total"), 3u);
}

TEST(DiskBlockCache, EvictsLeastRecentlyUsedWithinCap) {
  TempDir tmp;
  const uint64_t bs = 1024;
  const uint64_t file = BlockFileSize(ExtentOf(Key("f", 0), bs));
  const uint64_t cap = 5 * file + 10;
  Metrics m;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache"), cap, bs), &m);
  ASSERT_TRUE(c);
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(c->Put(Key("f", i), Bytes(bs, i)).ok());
    EXPECT_LE(c->UsedBytes(), cap + bs);
    EXPECT_LE(c->UsedBytes(), cap);                       // evicted before the new block lands
    EXPECT_EQ(Lookup(*c, Key("f", 0), Bytes(bs, 0)), 1);  // keep 0 hot
  }
  for (uint64_t i = 1; i <= 5; ++i) EXPECT_EQ(Lookup(*c, Key("f", i), Bytes(bs, i)), 0) << i;
  for (uint64_t i : {0, 6, 7, 8, 9}) EXPECT_EQ(Lookup(*c, Key("f", i), Bytes(bs, i)), 1) << i;
  EXPECT_EQ(CounterValue(m, "dsfs_cache_evictions_total"), 5u);
  auto [bytes, n] = BlockFilesOnDisk(tmp.Sub("cache"));
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(bytes, c->UsedBytes());
}

TEST(DiskBlockCache, RejectsBadArguments) {
  TempDir tmp;
  EXPECT_EQ(DiskBlockCache::Open(DiskOpts(""), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  auto small = DiskBlockCache::Open(DiskOpts(tmp.Sub("c1"), 100, 4096), nullptr);
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("smaller than one block"), std::string::npos);
  EXPECT_EQ(DiskBlockCache::Open(DiskOpts(tmp.Sub("c2"), 100, 0), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  auto c = MustOpen(DiskOpts(tmp.Sub("c3"), 1 << 20, 1024), nullptr);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->Put(Key("f", 0), Bytes(1025, 0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Put(Key("f", 0), nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Put(Key("f", 0), Bytes(1000, 0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Put(Key(std::string(9000, 'k'), 0), Bytes(1024, 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c->block_count(), 0u);
}

TEST(DiskBlockCache, UnknownFormatVersionIsRefused) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  { ASSERT_TRUE(MustOpen(DiskOpts(dir), nullptr)); }
  WriteFileBytes(dir + "/FORMAT", "dsfs-cache-format 7\n");
  auto r = DiskBlockCache::Open(DiskOpts(dir), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "cache_dir " + dir +
                                      " has format version 7, this dsfs understands 1; remove "
                                      "it or choose another cache_dir");
  WriteFileBytes(dir + "/FORMAT", "garbage");
  r = DiskBlockCache::Open(DiskOpts(dir), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unreadable FORMAT"), std::string::npos);
}

TEST(DiskBlockCache, ForeignNonEmptyDirIsRefusedAndLeftAlone) {
  TempDir tmp;
  std::string dir = tmp.Sub("home");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  WriteFileBytes(dir + "/thesis.tex", "precious");
  auto r = DiskBlockCache::Open(DiskOpts(dir), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a dsfs cache"), std::string::npos);
  EXPECT_EQ(CountEntries(dir), 1u);
}

TEST(DiskBlockCache, SecondOpenOfSameDirFails) {
  TempDir tmp;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache")), nullptr);
  ASSERT_TRUE(c);
  auto r = DiskBlockCache::Open(DiskOpts(tmp.Sub("cache")), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cache_dir " + tmp.Sub("cache") +
                                      " is in use by another dsfs (pid " +
                                      std::to_string(::getpid()) + ")"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(Lookup(*c, Key("f", 0), Bytes(1, 0)), 0);  // the first one is untouched
}

TEST(DiskBlockCache, DirOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 12345, 12345), 0);
  auto r = DiskBlockCache::Open(DiskOpts(dir), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kAccessDenied);
  EXPECT_NE(r.status().message().find("owned by uid 12345"), std::string::npos)
      << r.status().message();
}

TEST(DiskBlockCache, NotADirectoryIsRefused) {
  TempDir tmp;
  WriteFileBytes(tmp.Sub("file"), "x");
  auto r = DiskBlockCache::Open(DiskOpts(tmp.Sub("file")), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

// Mounts a tmpfs for the test's lifetime (root only).
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const char* opts, unsigned long flags) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", flags, opts) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(DiskBlockCache, ReadOnlyFilesystemIsRefused) {
  TempDir tmp;
  TmpfsMount mnt(tmp.Sub("ro"), "size=1m", MS_RDONLY);
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  auto r = DiskBlockCache::Open(DiskOpts(tmp.Sub("ro")), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kReadOnly);
  EXPECT_NE(r.status().message().find("read-only"), std::string::npos);
  r = DiskBlockCache::Open(DiskOpts(tmp.Sub("ro/cache")), nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot create cache_dir"), std::string::npos);
}

TEST(DiskBlockCache, DiskFullFailsPutButKeepsServingReads) {
  TempDir tmp;
  TmpfsMount mnt(tmp.Sub("small"), "size=2m", 0);
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  Metrics m;
  const uint64_t bs = 256 << 10;
  std::string dir = tmp.Sub("small/cache");
  {
    auto c = MustOpen(DiskOpts(dir, 100 << 20, bs), &m);  // cap far above the disk
    ASSERT_TRUE(c);
    int stored = 0;
    Status failure;
    for (uint64_t i = 0; i < 20 && failure.ok(); ++i) {
      Status st = c->Put(Key("f", i), Bytes(bs, i));
      if (st.ok())
        ++stored;
      else
        failure = st;
    }
    ASSERT_FALSE(failure.ok()) << "a 2 MiB tmpfs held 20 blocks of 256 KiB";
    EXPECT_EQ(failure.code(), StatusCode::kIoError) << failure.ToString();
    EXPECT_GE(CounterValue(m, "dsfs_cache_write_errors_total"), 1u);
    ASSERT_GT(stored, 0);
    // Everything that was stored is still served; nothing half-written is.
    for (int i = 0; i < stored; ++i) {
      EXPECT_EQ(Lookup(*c, Key("f", static_cast<uint64_t>(i)), Bytes(bs, static_cast<uint64_t>(i))),
                1)
          << i;
    }
    EXPECT_EQ(Lookup(*c, Key("f", static_cast<uint64_t>(stored)), Bytes(bs, 0)), 0);
    EXPECT_EQ(CountEntries(dir + "/tmp"), 0u);  // the failed temp file was removed
  }
}

TEST(DiskBlockCache, PutWaitsForIndexThenGivesUp) {
  TempDir tmp;
  std::string dir = tmp.Sub("cache");
  {
    ASSERT_TRUE(
        MustOpen(DiskOpts(dir, 64 << 20, 10), nullptr)->Put(Key("f", 1), Bytes(10, 1)).ok());
  }
  auto o = DiskOpts(dir, 64 << 20, 10);
  o.background = false;  // nothing loads the index
  o.ready_wait = std::chrono::milliseconds(20);
  auto c = MustOpen(o, nullptr);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->ready());
  EXPECT_EQ(c->Put(Key("f", 2), Bytes(10, 2)).code(), StatusCode::kUnavailable);
  EXPECT_EQ(Lookup(*c, Key("f", 1), Bytes(10, 1)), 1);  // reads work meanwhile
  ASSERT_TRUE(c->LoadIndex().ok());
  EXPECT_TRUE(c->ready());
  EXPECT_TRUE(c->Put(Key("f", 2), Bytes(10, 2)).ok());
}

TEST(DiskBlockCache, ConcurrentReadersAndWritersNeverSeeWrongBytes) {
  TempDir tmp;
  const uint64_t bs = 4096;
  const uint64_t cap = 40 * BlockFileSize(ExtentOf(Key("f", 0), bs));
  Metrics m;
  auto c = MustOpen(DiskOpts(tmp.Sub("cache"), cap, bs), &m);
  ASSERT_TRUE(c);
  std::atomic<int> bad{0};
  std::atomic<uint64_t> max_used{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 600; ++i) {
        uint64_t idx = static_cast<uint64_t>((i * 13 + t * 7) % 100);
        if (t < 2) {  // writers
          if (!c->Put(Key("f", idx), Bytes(bs, idx)).ok()) ++bad;
          uint64_t u = c->UsedBytes();
          uint64_t prev = max_used.load();
          while (u > prev && !max_used.compare_exchange_weak(prev, u)) {
          }
        } else if (Lookup(*c, Key("f", idx), Bytes(bs, idx)) < 0) {
          ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(max_used.load(), cap + 2 * bs);  // two writers
  auto [bytes, n] = BlockFilesOnDisk(tmp.Sub("cache"));
  EXPECT_EQ(bytes, c->UsedBytes());
  EXPECT_EQ(n, c->block_count());
  EXPECT_EQ(CounterValue(m, "dsfs_cache_corrupt_blocks_total"), 0u);
}

// Not a test: prints throughput for 4 MiB blocks on this disk.
// Run with --gtest_also_run_disabled_tests --gtest_filter=*Throughput*.
TEST(DiskBlockCacheBench, DISABLED_Throughput4MiB) {
  const char* where = std::getenv("DSFS_BENCH_DIR");
  TempDir tmp;
  std::string dir = (where ? std::string(where) : tmp.path()) + "/bench-cache";
  const uint64_t bs = 4 << 20;
  const int n = 256;  // 1 GiB
  auto c = MustOpen(DiskOpts(dir, 64ull << 30, bs), nullptr);
  ASSERT_TRUE(c);
  std::vector<BlockData> data;
  for (int i = 0; i < 8; ++i) data.push_back(Bytes(bs, static_cast<uint64_t>(i)));
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(c->Put(Key("bench", static_cast<uint64_t>(i)), data[i % 8]).ok());
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    auto r = c->Get(Key("bench", static_cast<uint64_t>(i)));
    ASSERT_TRUE(r.ok() && r->has_value());
  }
  auto t2 = std::chrono::steady_clock::now();
  // Push the files out of the page cache (only these files) for cold reads.
  for (int i = 0; i < n; ++i) {
    int fd = ::open(c->BlockPath(Key("bench", static_cast<uint64_t>(i))).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  auto t2c = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) (void)c->Get(Key("bench", static_cast<uint64_t>(i)));
  auto t2d = std::chrono::steady_clock::now();
  std::cout << "Get (1 thread, cold) " << n * 4.0 / std::chrono::duration<double>(t2d - t2c).count()
            << " MiB/s\n";
  for (int i = 0; i < n; ++i) {
    int fd = ::open(c->BlockPath(Key("bench", static_cast<uint64_t>(i))).c_str(), O_RDONLY);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  auto t2e = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < n; i += 4) (void)c->Get(Key("bench", static_cast<uint64_t>(i)));
    });
  }
  for (auto& th : threads) th.join();
  auto t3 = std::chrono::steady_clock::now();
  auto mibs = [&](auto a, auto b) {
    return n * 4.0 / std::chrono::duration<double>(b - a).count();
  };
  std::cout << "Put " << mibs(t0, t1) << " MiB/s, Get (1 thread, page cache warm) " << mibs(t1, t2)
            << " MiB/s, Get (4 threads, cold) " << mibs(t2e, t3) << " MiB/s\n";
  c.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsfs
