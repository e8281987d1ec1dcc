// CachingReader over the real DiskBlockCache (the other read-ahead tests
// use a fake cache): blocks fetched once are served from the cache
// afterwards; random small reads take parts of cached blocks.
#include <gtest/gtest.h>

#include <string>

#include "backends/memory_store.h"
#include "cache/block_file.h"
#include "cache/caching_reader.h"
#include "cache/disk_block_cache.h"
#include "common/metrics.h"
#include "readahead_test_util.h"
#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using readahead_test::AddObject;
using readahead_test::FakeCache;
using readahead_test::Pattern;

ReadAheadOptions SmallBlocks(uint64_t block) {
  ReadAheadOptions o;
  o.block_size = block;
  o.max_inflight = 4;
  o.window_initial = block;
  o.window_max = 8 * block;
  o.seq_tolerance = block;
  o.prefetch_mem = 64 * block;
  o.prefetch_whole = "";
  o.cache_write_queue = 64;
  o.warm_split = false;
  return o;
}

// The bytes read, or the error's text.
std::string Read(CachingReader& r, const ObjectId& id, uint64_t offset, size_t len) {
  Result<std::string> got = readahead_test::ReadAt(r, id, offset, len);
  return got.ok() ? *got : "error: " + got.status().ToString();
}

// A small read far from the last one takes only its bytes of a cached
// block (GetRange), across a block boundary too, and keeps no partial
// block in the read-ahead; a sequential reader takes whole blocks (Get).
TEST(CachingReaderRangeReads, RandomSmallReadsTakeRangesSequentialReadsWholeBlocks) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(40 * kBlock + 99);
  ObjectId id = AddObject(store, "m/r.bin", data);
  FakeCache cache;
  for (uint64_t b = 0; b * kBlock < data.size(); ++b) {
    cache.Insert(BlockKey{id, b}, data.substr(b * kBlock, kBlock));
  }
  CachingReader reader(store, &cache, SmallBlocks(kBlock));
  reader.Opened(id);
  EXPECT_EQ(Read(reader, id, 20 * kBlock + 100, 100), data.substr(20 * kBlock + 100, 100));
  EXPECT_EQ(cache.range_gets(), 1);
  EXPECT_EQ(Read(reader, id, 5 * kBlock + 10, 50), data.substr(5 * kBlock + 10, 50));
  EXPECT_EQ(Read(reader, id, 31 * kBlock - 20, 40), data.substr(31 * kBlock - 20, 40));
  EXPECT_EQ(Read(reader, id, 40 * kBlock + 90, 100), data.substr(40 * kBlock + 90));
  EXPECT_EQ(cache.range_gets(), 5);  // the boundary read took two
  EXPECT_EQ(reader.prefetcher().buffered_blocks(), 0u);
  EXPECT_EQ(store.counters().get, 0);
  reader.Released(id);

  // A sequential reader from offset 0: whole blocks only.
  reader.Opened(id);
  std::string seq;
  for (uint64_t off = 0; off < 6 * kBlock; off += 500) seq += Read(reader, id, off, 500);
  EXPECT_EQ(seq, data.substr(0, seq.size()));
  EXPECT_EQ(cache.range_gets(), 5);
  reader.Released(id);
  EXPECT_EQ(store.counters().get, 0);
}

// A small read of a block a recent read brought whole from the disk is
// served from that block (RecentBlocks): no range read, no disk read.
TEST(CachingReaderRangeReads, SmallReadsOfARecentlyReadBlockReadNothingMore) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(8 * kBlock);
  ObjectId id = AddObject(store, "m/k.bin", data);
  FakeCache cache;
  for (uint64_t b = 0; b < 8; ++b) cache.Insert(BlockKey{id, b}, data.substr(b * kBlock, kBlock));
  ReadAheadOptions o = SmallBlocks(kBlock);
  o.prefetch_mem = 0;  // no read-ahead: only the recent blocks hold anything
  CachingReader reader(store, &cache, o);
  reader.Opened(id);
  EXPECT_EQ(Read(reader, id, 0, kBlock), data.substr(0, kBlock));  // whole block 0
  EXPECT_EQ(Read(reader, id, 5 * kBlock, 100), data.substr(5 * kBlock, 100));  // a jump: a range
  EXPECT_EQ(cache.range_gets(), 1);
  const int gets = cache.gets();  // FakeCache's GetRange counts a Get too
  EXPECT_EQ(Read(reader, id, 100, 100), data.substr(100, 100));  // small, of block 0
  EXPECT_EQ(cache.range_gets(), 1);
  EXPECT_EQ(cache.gets(), gets);
  EXPECT_EQ(store.counters().get, 0);
  reader.Released(id);
}

// An object prefetched whole (its name matches prefetch_whole): a random
// small read of a block the read-ahead does not hold takes a range too.
TEST(CachingReaderRangeReads, WholePrefetchObjectsTakeRangesOfBlocksNotReadAhead) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(20 * kBlock);
  ObjectId id = AddObject(store, "m/w.safetensors", data);
  FakeCache cache;
  for (uint64_t b = 0; b < 20; ++b) cache.Insert(BlockKey{id, b}, data.substr(b * kBlock, kBlock));
  ReadAheadOptions o = SmallBlocks(kBlock);
  o.prefetch_whole = "*.safetensors";
  o.prefetch_mem = 0;  // no read-ahead: no block is held
  CachingReader reader(store, &cache, o);
  reader.Opened(id);
  EXPECT_EQ(reader.prefetcher().StateOf(id).whole, true);
  EXPECT_EQ(Read(reader, id, 12 * kBlock + 7, 100), data.substr(12 * kBlock + 7, 100));
  EXPECT_EQ(Read(reader, id, 3 * kBlock + 7, 100), data.substr(3 * kBlock + 7, 100));
  EXPECT_EQ(cache.range_gets(), 2);
  // Continuing from there is sequential: whole blocks.
  EXPECT_EQ(Read(reader, id, 3 * kBlock + 107, 100), data.substr(3 * kBlock + 107, 100));
  EXPECT_EQ(cache.range_gets(), 2);
  reader.Released(id);
}

// Over the real disk cache: random small reads are served from block
// parts (fewer bytes read from the disk than whole blocks), a corrupt chunk
// a read covers makes it come from the store (exact bytes, counted), and
// the next read of that block finds it cached again.
TEST(CachingReaderRangeReads, DiskCacheServesPartsAndRefetchesACorruptChunk) {
  constexpr uint64_t kBlock = 4 * kVerifyChunk;
  MemoryStore store;
  std::string data = Pattern(6 * kBlock + 1234);
  ObjectId id = AddObject(store, "m/d.bin", data);
  testing::TempDir dir;
  Metrics m;
  auto cache = testing::MustOpen(testing::DiskOpts(dir.path(), 64 << 20, kBlock), &m);
  ASSERT_NE(cache, nullptr);
  CachingReader reader(store, cache.get(), SmallBlocks(kBlock), &m);
  ASSERT_TRUE(reader.Warm(id, 0, 100, nullptr).ok());
  const int gets = store.counters().get;
  reader.Opened(id);
  // Each far (more than seq_tolerance) from the one before: none is sequential.
  const uint64_t offsets[] = {3 * kBlock + 5000, kBlock + 70000, 5 * kBlock + 9, 2 * kBlock - 2000,
                              6 * kBlock + 1000};
  for (uint64_t off : offsets) {
    EXPECT_EQ(Read(reader, id, off, 4096), data.substr(off, 4096)) << off;
  }
  EXPECT_EQ(store.counters().get, gets);
  EXPECT_EQ(testing::CounterValue(m, "dsfs_cache_disk_hits_total"), 6u);  // one read took two
  // The bytes asked for (the last read gets the object's last 234).
  EXPECT_EQ(testing::CounterValue(m, "dsfs_cache_disk_bytes_read_total"), 4u * 4096 + 234);

  // Chunk 1 of block 4 flipped: a read of it comes from the store.
  const std::string path = cache->BlockPath(BlockKey{id, 4});
  auto info = ReadBlockFileHeader(path);
  ASSERT_TRUE(info.ok());
  std::string bytes = testing::ReadFileBytes(path);
  bytes[info->header_length + kVerifyChunk + 3] ^= 1;
  testing::WriteFileBytes(path, bytes);
  const uint64_t off = 4 * kBlock + kVerifyChunk;
  EXPECT_EQ(Read(reader, id, off, 4096), data.substr(off, 4096));
  EXPECT_EQ(store.counters().get, gets + 1);
  EXPECT_EQ(testing::CounterValue(m, "dsfs_cache_corrupt_blocks_total"), 1u);
  reader.fetcher().FlushCacheWrites();
  EXPECT_TRUE(cache->Contains(BlockKey{id, 4}));  // written again from the GET
  EXPECT_EQ(Read(reader, id, off + 2 * kVerifyChunk, 4096),
            data.substr(off + 2 * kVerifyChunk, 4096));
  EXPECT_EQ(store.counters().get, gets + 1);
  reader.Released(id);
}

TEST(CachingReaderWithDiskCache, SecondPassMakesNoGet) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(50 * kBlock + 99);
  ObjectId id = AddObject(store, "m/w.safetensors", data);
  testing::TempDir dir;
  auto cache = testing::MustOpen(testing::DiskOpts(dir.path(), 1 << 20, kBlock), nullptr);
  ASSERT_NE(cache, nullptr);
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.window_initial = kBlock;
  o.window_max = 8 * kBlock;
  o.prefetch_mem = 32 * kBlock;
  o.cache_write_queue = 64;  // no Put dropped: the second pass must hit
  o.warm_split = false;      // every hit from the disk (MemoryStore is faster)
  CachingReader reader(store, cache.get(), o);
  for (int pass = 0; pass < 2; ++pass) {
    reader.Opened(id);
    std::string out(data.size(), '\0');
    for (uint64_t off = 0; off < data.size(); off += 10000) {
      Result<size_t> n = reader.Read(id, off, 10000, out.data() + off);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
    }
    EXPECT_EQ(out, data);
    reader.Released(id);  // forgets read-ahead state, keeps cached blocks
    reader.fetcher().FlushCacheWrites();
    EXPECT_EQ(store.counters().get, 51) << "pass " << pass;
  }
  EXPECT_EQ(cache->block_count(), 51u);
}

// dsfsctl warm's core: Warm puts blocks on disk (they are there when it
// returns), skips those the cache holds, and a later read makes no GET.
TEST(CachingReaderWithDiskCache, WarmFetchesMissingBlocksAndSkipsCachedOnes) {
  constexpr uint64_t kBlock = 4096;
  MemoryStore store;
  std::string data = Pattern(10 * kBlock + 7);
  ObjectId id = AddObject(store, "m/w.safetensors", data);
  testing::TempDir dir;
  auto cache = testing::MustOpen(testing::DiskOpts(dir.path(), 1 << 20, kBlock), nullptr);
  ASSERT_NE(cache, nullptr);
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.prefetch_mem = 32 * kBlock;
  CachingReader reader(store, cache.get(), o);

  auto info = reader.Warm(id, 0, 0, nullptr);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->blocks, 11u);
  EXPECT_EQ(info->block_size, kBlock);
  EXPECT_EQ(info->fetched + info->skipped, 0u);

  auto first = reader.Warm(id, 2, 4, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->fetched, 4u);
  EXPECT_EQ(first->skipped, 0u);
  EXPECT_EQ(cache->block_count(), 4u);  // on disk at return, no flush needed

  auto all = reader.Warm(id, 0, 100, nullptr);  // clamped to the object
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->fetched, 7u);
  EXPECT_EQ(all->skipped, 4u);
  EXPECT_EQ(cache->block_count(), 11u);
  const uint64_t gets = store.counters().get;

  auto again = reader.Warm(id, 0, 11, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fetched, 0u);
  EXPECT_EQ(again->skipped, 11u);
  std::string out(data.size(), '\0');
  ASSERT_TRUE(reader.Read(id, 0, data.size(), out.data()).ok());
  EXPECT_EQ(out, data);
  EXPECT_EQ(store.counters().get, gets);
}

TEST(CachingReaderWithDiskCache, WarmWithoutACacheIsNotSupported) {
  MemoryStore store;
  ObjectId id = AddObject(store, "a", Pattern(100));
  ReadAheadOptions o;
  o.block_size = 4096;
  CachingReader reader(store, nullptr, o);
  EXPECT_EQ(reader.Warm(id, 0, 1, nullptr).status().code(), StatusCode::kNotSupported);
}

}  // namespace
}  // namespace dsfs
