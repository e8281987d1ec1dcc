// Helpers shared by the block cache tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "cache/block_cache.h"
#include "tests/unit/temp_dir.h"

namespace dsfs::testing {

inline BlockKey Key(const std::string& key, uint64_t index, const std::string& etag = "\"e1\"",
                    uint64_t size = 1 << 30) {
  return BlockKey{ObjectId{key, etag, size}, index};
}

// Deterministic bytes for a block, different for each (key, index).
inline BlockData Bytes(size_t n, uint64_t seed) {
  std::shared_ptr<Buffer> s = Buffer::Allocate(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->data()[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

}  // namespace dsfs::testing

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "cache/block_file.h"
#include "cache/disk_block_cache.h"
#include "common/endian.h"

namespace dsfs::testing {

inline DiskCacheOptions DiskOpts(const std::string& dir, uint64_t capacity = 64 << 20,
                                 uint64_t block_size = 64 << 10) {
  DiskCacheOptions o;
  o.dir = dir;
  o.capacity_bytes = capacity;
  o.block_size = block_size;
  o.ready_wait = std::chrono::milliseconds(10000);
  return o;
}

inline std::unique_ptr<DiskBlockCache> MustOpen(const DiskCacheOptions& o, Metrics* m) {
  auto r = DiskBlockCache::Open(o, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return nullptr;
  return std::move(r).value();
}

// The documented layout: <dir>/blocks/<first 2 hex>/<32 hex>.blk, where the
// id is that of key's extent for block_size.
inline std::string LayoutPath(const std::string& dir, const BlockKey& key, uint64_t block_size) {
  std::string hex = ComputeBlockId(ExtentOf(key, block_size)).ToHex();
  return dir + "/blocks/" + hex.substr(0, 2) + "/" + hex + ".blk";
}

// 1 = hit with exactly `want`, 0 = miss, -1 = error or wrong bytes.
inline int Lookup(BlockCache& c, const BlockKey& key, const BlockData& want) {
  auto r = c.Get(key);
  if (!r.ok()) return -1;
  if (!r->has_value()) return 0;
  return ***r == *want ? 1 : -1;
}

// A version 3 file, as dsfs before format 4 wrote it: no chunk table,
// bytes 40..48 hold XXH3-64 of the whole data.
inline std::string V3File(const BlockExtent& e, std::string_view data) {
  const uint64_t exact = kBlockHeaderFixedSize + e.object.key.size() + e.object.etag.size() + 8;
  const bool padded = !data.empty() && data.size() % kDirectIoAlignment == 0;
  const uint64_t header_len = padded ? Buffer::RoundUp(exact) : exact;
  std::string h("DSFSBLK\0", 8);
  PutU32Le(&h, 3);
  PutU32Le(&h, static_cast<uint32_t>(header_len));
  PutU64Le(&h, e.object.size);
  PutU64Le(&h, e.offset);
  PutU64Le(&h, data.size());
  PutU64Le(&h, Xxh3_64(data));
  PutU32Le(&h, static_cast<uint32_t>(e.object.key.size()));
  PutU32Le(&h, static_cast<uint32_t>(e.object.etag.size()));
  h += e.object.key;
  h += e.object.etag;
  h.resize(header_len - 8, '\0');
  PutU64Le(&h, Xxh3_64(h));
  return h + std::string(data);
}

inline uint64_t CounterValue(Metrics& m, const std::string& name) {
  return m.GetCounter(name).value();
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void WriteFileBytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Sum of the sizes of all block files, and their count.
inline std::pair<uint64_t, size_t> BlockFilesOnDisk(const std::string& dir) {
  uint64_t bytes = 0;
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir + "/blocks", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) {
      bytes += it->file_size();
      ++n;
    }
  }
  return {bytes, n};
}

inline size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace dsfs::testing
