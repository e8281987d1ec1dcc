// Block file format 4: per-chunk checksums, ranged reads
// (ReadBlockFileRange), and version 3 files (one checksum of the whole
// data), which are still served.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "cache/block_file.h"
#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using testing::Bytes;
using testing::ReadFileBytes;
using testing::TempDir;
using testing::V3File;
using testing::WriteFileBytes;

constexpr uint64_t kChunk = kVerifyChunk;

BlockExtent Ext(uint64_t length, uint64_t offset = 3 << 20) {
  return BlockExtent{ObjectId{"models/r.bin", "\"e1\"", 1 << 30}, offset, length};
}

class BlockFileRangeTest : public ::testing::Test {
 protected:
  // n bytes written as a block file at path_; returns the data.
  std::string Write(uint64_t n) {
    BlockData d = Bytes(n, n + 1);
    ext_ = Ext(n);
    EXPECT_TRUE(WriteBlockFile(path_, ext_, *d).ok());
    return std::string(d->view());
  }
  // What a range read returns, or the status text.
  std::string Range(uint64_t off, uint64_t len) {
    auto r = ReadBlockFileRange(path_, ext_, off, len);
    if (!r.ok()) return "error: " + r.status().ToString();
    return std::string((*r)->view());
  }
  void Flip(uint64_t file_offset) {
    std::string bytes = ReadFileBytes(path_);
    bytes[file_offset] ^= 0x10;
    WriteFileBytes(path_, bytes);
  }
  uint64_t HeaderLength() {
    auto info = ReadBlockFileHeader(path_);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->header_length : 0;
  }
  TempDir dir_;
  std::string path_ = dir_.Sub("r.blk");
  BlockExtent ext_;
};

TEST(VerifyChunk, SizeGrowsOnlyForHugeBlocks) {
  EXPECT_EQ(VerifyChunkSize(0), kChunk);
  EXPECT_EQ(VerifyChunkSize(10), kChunk);
  EXPECT_EQ(VerifyChunkSize(4 << 20), kChunk);
  EXPECT_EQ(VerifyChunkSize(16 << 20), kChunk);  // 256 chunks
  EXPECT_EQ(VerifyChunkSize((16 << 20) + 1), 2 * kChunk);
  EXPECT_EQ(VerifyChunkSize(uint64_t{64} << 20), 4 * kChunk);
}

TEST_F(BlockFileRangeTest, HeaderCarriesOneChecksumPerChunk) {
  const std::string data = Write(4 << 20);
  auto info = ReadBlockFileHeader(path_);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->version, 4u);
  EXPECT_EQ(info->chunk_size, kChunk);
  ASSERT_EQ(info->chunk_checksums.size(), 64u);
  EXPECT_EQ(info->chunk_checksums[5], Xxh3_64(std::string_view(data).substr(5 * kChunk, kChunk)));
  EXPECT_EQ(info->header_length, kDirectIoAlignment);  // padded: the data stays aligned
  auto whole = ReadBlockFile(path_, ext_);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ((*whole)->view(), data);
}

// Exact bytes at and across chunk boundaries, for an aligned block and for
// a short (unaligned, unpadded) last block; clipped at the end.
TEST_F(BlockFileRangeTest, ReturnsExactlyTheBytesAskedFor) {
  for (uint64_t n : {uint64_t{4} << 20, 3 * kChunk + 1000, uint64_t{777}}) {
    const std::string data = Write(n);
    std::vector<std::pair<uint64_t, uint64_t>> ranges = {
        {0, 1}, {0, 4096},  {kChunk - 1, 1}, {kChunk, 4096}, {kChunk - 6, 20}, {100, 2 * kChunk},
        {0, n}, {n - 1, 1}, {n - 10, 100},   {n / 2, n}};
    for (auto [off, len] : ranges) {
      if (off >= n) continue;
      const uint64_t want = std::min(len, n - off);
      EXPECT_EQ(Range(off, len), data.substr(off, want)) << n << " @" << off << "+" << len;
    }
    // Empty: len 0, at or past the end.
    EXPECT_EQ(Range(5, 0), "") << n;
    EXPECT_EQ(Range(n, 10), "") << n;
    EXPECT_EQ(Range(n + 100, 10), "") << n;
    ::unlink(path_.c_str());
  }
}

// A range read verifies only the chunks it reads: a flipped byte in chunk
// 2 fails every read covering chunk 2 (naming it) and the whole read, while
// a range elsewhere is still served; the next whole read or fsck finds it.
TEST_F(BlockFileRangeTest, FlippedByteFailsOnlyReadsCoveringItsChunk) {
  const std::string data = Write(4 * kChunk);
  Flip(HeaderLength() + 2 * kChunk + 123);
  for (auto [off, len] : {std::pair<uint64_t, uint64_t>{2 * kChunk + 123, 1},
                          {2 * kChunk, 4096},
                          {2 * kChunk - 10, 20},
                          {0, 4 * kChunk}}) {
    auto r = ReadBlockFileRange(path_, ext_, off, len);
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << off << "+" << len;
    EXPECT_NE(r.status().message().find("chunk 2"), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(Range(0, 4096), data.substr(0, 4096));
  EXPECT_EQ(Range(3 * kChunk, kChunk), data.substr(3 * kChunk));
  EXPECT_EQ(Range(2 * kChunk - 4096, 4096), data.substr(2 * kChunk - 4096, 4096));
  auto whole = ReadBlockFile(path_, ext_);
  EXPECT_EQ(whole.status().code(), StatusCode::kCorruption);
  EXPECT_NE(whole.status().message().find("chunk 2"), std::string::npos);
}

// The header (its chunk table included), the extent and the file size are
// checked by every range read, whatever chunk it reads.
TEST_F(BlockFileRangeTest, HeaderExtentAndSizeAreChecked) {
  const std::string data = Write(4 * kChunk);
  const std::string good = ReadFileBytes(path_);
  const uint64_t table = kBlockHeaderFixedSize + ext_.object.key.size() + ext_.object.etag.size();
  for (uint64_t off : {uint64_t{40}, uint64_t{44}, table + 8 * 3, HeaderLength() - 1}) {
    WriteFileBytes(path_, good);
    Flip(off);
    EXPECT_EQ(ReadBlockFileRange(path_, ext_, 0, 10).status().code(), StatusCode::kCorruption)
        << off;
  }
  WriteFileBytes(path_, good.substr(0, good.size() - 1));
  EXPECT_EQ(ReadBlockFileRange(path_, ext_, 0, 10).status().code(), StatusCode::kCorruption);
  WriteFileBytes(path_, good + "x");
  EXPECT_EQ(ReadBlockFileRange(path_, ext_, 0, 10).status().code(), StatusCode::kCorruption);
  WriteFileBytes(path_, good);
  BlockExtent other = ext_;
  other.offset += 4096;
  EXPECT_EQ(ReadBlockFileRange(path_, other, 0, 10).status().code(), StatusCode::kCorruption);
  other = ext_;
  other.object.etag = "\"e2\"";
  EXPECT_EQ(ReadBlockFileRange(path_, other, 0, 10).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Range(10, 10), data.substr(10, 10));
}

TEST_F(BlockFileRangeTest, MissingAndNonRegularFiles) {
  ext_ = Ext(4096);
  EXPECT_EQ(ReadBlockFileRange(dir_.Sub("nope"), ext_, 0, 1).status().code(),
            StatusCode::kNotFound);
  std::string fifo = dir_.Sub("fifo.blk");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadBlockFileRange(fifo, ext_, 0, 1).status().code(), StatusCode::kCorruption);
  Write(4096);
  std::string link = dir_.Sub("link.blk");
  ASSERT_EQ(::symlink(path_.c_str(), link.c_str()), 0);  // to a valid block file
  EXPECT_EQ(ReadBlockFileRange(link, ext_, 0, 1).status().code(), StatusCode::kCorruption);
}

// Version 3 files are served, verified whole: a range read of one reads
// the whole block, and a flipped byte anywhere fails any read of it.
TEST_F(BlockFileRangeTest, Version3FilesAreServedWithTheirWholeChecksum) {
  for (uint64_t n : {uint64_t{4} << 20, uint64_t{5000}}) {
    ext_ = Ext(n);
    BlockData d = Bytes(n, 9);
    const std::string data(d->view());
    WriteFileBytes(path_, V3File(ext_, data));
    auto info = ReadBlockFileHeader(path_);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->version, 3u);
    EXPECT_TRUE(info->chunk_checksums.empty());
    auto whole = ReadBlockFile(path_, ext_);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    EXPECT_EQ((*whole)->view(), data);
    EXPECT_EQ(Range(100, 4096), data.substr(100, 4096));
    EXPECT_EQ(Range(n - 1, 10), data.substr(n - 1));
    Flip(info->header_length + n - 1);
    EXPECT_EQ(ReadBlockFileRange(path_, ext_, 0, 10).status().code(), StatusCode::kCorruption);
    EXPECT_EQ(ReadBlockFile(path_, ext_).status().code(), StatusCode::kCorruption);
    ::unlink(path_.c_str());
  }
}

}  // namespace
}  // namespace dsfs
