#include "cache/block_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/unit/cache/cache_test_util.h"

namespace dsfs {
namespace {

using testing::Bytes;
using testing::Key;
using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

class BlockFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("b.blk");
    ASSERT_TRUE(WriteBlockFile(path_, key_, *data_).ok());
  }
  TempDir dir_;
  std::string path_;
  BlockKey key_ = Key("models/a.safetensors", 7);
  BlockData data_ = Bytes(10000, 7);
};

TEST_F(BlockFileTest, RoundTripAndMode) {
  auto got = ReadBlockFile(path_, key_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(**got, *data_);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), BlockFileSize(key_, data_->size()));
  auto info = ReadBlockFileHeader(path_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key, key_);
  EXPECT_EQ(info->data_length, data_->size());
}

TEST_F(BlockFileTest, EmptyBlockRoundTrips) {
  std::string p = dir_.Sub("empty.blk");
  ASSERT_TRUE(WriteBlockFile(p, key_, "").ok());
  auto got = ReadBlockFile(p, key_);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->size(), 0u);
}

TEST_F(BlockFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadBlockFile(dir_.Sub("nope"), key_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadBlockFileHeader(dir_.Sub("nope")).status().code(), StatusCode::kNotFound);
}

TEST_F(BlockFileTest, WrongBlockIsCorruption) {
  for (const BlockKey& other :
       {Key("models/a.safetensors", 8), Key("models/a.safetensors", 7, "\"e2\""),
        Key("models/b.safetensors", 7), Key("models/a.safetensors", 7, "\"e1\"", 123)}) {
    auto got = ReadBlockFile(path_, other);
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << other.object.key;
  }
}

// Flips one byte at each of several offsets: header fields, key, checksum, data.
TEST_F(BlockFileTest, AnyFlippedByteIsCorruption) {
  std::string good = ReadAll(path_);
  uint64_t header = BlockFileSize(key_, 0);
  for (uint64_t off : {0ul, 5ul, 8ul, 12ul, 16ul, 24ul, 32ul, 40ul, 48ul, 52ul, 60ul, header - 1,
                       header, header + 5000, good.size() - 1}) {
    std::string bad = good;
    bad[off] ^= 0x20;
    WriteAll(path_, bad);
    EXPECT_EQ(ReadBlockFile(path_, key_).status().code(), StatusCode::kCorruption) << off;
  }
}

// A block whose length is a multiple of 4 KiB gets a padded header, so its
// data starts aligned and is written and read with O_DIRECT.
TEST_F(BlockFileTest, AlignedBlockHasAlignedDataAndRoundTrips) {
  for (size_t n : {size_t{4096}, size_t{64} << 10, size_t{4} << 20}) {
    std::string p = dir_.Sub("aligned-" + std::to_string(n) + ".blk");
    BlockData data = Bytes(n, n);
    ASSERT_TRUE(WriteBlockFile(p, key_, *data).ok());
    auto info = ReadBlockFileHeader(p);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->header_length % kDirectIoAlignment, 0u) << n;
    EXPECT_EQ(info->file_size(), BlockFileSize(key_, n));
    auto got = ReadBlockFile(p, key_);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(**got == *data) << n;
    // The padding is covered by the header checksum, the data by its own.
    std::string good = ReadAll(p);
    for (uint64_t off : {info->header_length - 100, info->header_length - 1,
                         info->header_length + n / 2, good.size() - 1}) {
      std::string bad = good;
      bad[off] ^= 0x01;
      WriteAll(p, bad);
      EXPECT_EQ(ReadBlockFile(p, key_).status().code(), StatusCode::kCorruption) << n << "@" << off;
    }
  }
  // A short last block (and this fixture's 10000 bytes) is not padded.
  auto info = ReadBlockFileHeader(path_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->header_length, BlockFileSize(key_, 0));
}

// Pages of path in the page cache (mincore).
size_t ResidentPages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return SIZE_MAX;
  struct stat st;
  ::fstat(fd, &st);
  size_t len = static_cast<size_t>(st.st_size);
  void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return SIZE_MAX;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((len + page - 1) / page);
  size_t n = SIZE_MAX;
  if (::mincore(m, len, vec.data()) == 0) {
    n = 0;
    for (unsigned char v : vec) n += v & 1;
  }
  ::munmap(m, len);
  return n;
}

// What was read goes to the FUSE page cache; the cache file's own pages are
// dropped after a read so the bytes do not sit in RAM twice.
TEST_F(BlockFileTest, ReadLeavesNoPagesOfTheFileCached) {
  std::string p = dir_.Sub("pages.blk");
  BlockData data = Bytes(256 << 10, 5);
  ASSERT_TRUE(WriteBlockFile(p, key_, *data).ok());
  ASSERT_TRUE(ReadBlockFile(p, key_).ok());
  EXPECT_EQ(ResidentPages(p), 0u);
  // An unpadded block is written through the page cache: once written back
  // (dirty pages are never dropped), a read drops its pages too.
  int fd = ::open(path_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ::close(fd);
  ASSERT_TRUE(ReadBlockFile(path_, key_).ok());
  EXPECT_EQ(ResidentPages(path_), 0u);
}

// Files written by version 1 (never padded, also for aligned data) still read.
TEST_F(BlockFileTest, VersionOneFileStillReads) {
  BlockData data = Bytes(8192, 3);
  auto u32 = [](std::string* o, uint32_t v) {
    for (int i = 0; i < 4; ++i) o->push_back(static_cast<char>(v >> (8 * i)));
  };
  auto u64 = [](std::string* o, uint64_t v) {
    for (int i = 0; i < 8; ++i) o->push_back(static_cast<char>(v >> (8 * i)));
  };
  std::string h("DSFSBLK\0", 8);
  u32(&h, 1);
  u32(&h, static_cast<uint32_t>(56 + key_.object.key.size() + key_.object.etag.size() + 8));
  u64(&h, key_.object.size);
  u64(&h, key_.index);
  u64(&h, data->size());
  u64(&h, Xxh3_64(*data));
  u32(&h, static_cast<uint32_t>(key_.object.key.size()));
  u32(&h, static_cast<uint32_t>(key_.object.etag.size()));
  h += key_.object.key + key_.object.etag;
  u64(&h, Xxh3_64(h));
  std::string p = dir_.Sub("v1.blk");
  WriteAll(p, h + std::string(data->view()));
  auto got = ReadBlockFile(p, key_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(**got == *data);
  // Version 2 with the same unpadded header is not what version 2 writes.
  h[8] = 2;
  h.resize(h.size() - 8);
  u64(&h, Xxh3_64(h));
  WriteAll(p, h + std::string(data->view()));
  EXPECT_EQ(ReadBlockFile(p, key_).status().code(), StatusCode::kCorruption);
}

TEST_F(BlockFileTest, ShortOrLongFileIsCorruption) {
  std::string good = ReadAll(path_);
  for (size_t len : {size_t{0}, size_t{10}, size_t{60}, good.size() - 1}) {
    WriteAll(path_, good.substr(0, len));
    EXPECT_EQ(ReadBlockFile(path_, key_).status().code(), StatusCode::kCorruption) << len;
    EXPECT_EQ(ReadBlockFileHeader(path_).status().code(), StatusCode::kCorruption) << len;
  }
  WriteAll(path_, good + "x");
  EXPECT_EQ(ReadBlockFile(path_, key_).status().code(), StatusCode::kCorruption);
}

TEST_F(BlockFileTest, DecodeRejectsHugeHeaderLength) {
  std::string h = EncodeBlockHeader(key_, *data_);
  h[12] = '\xff';
  h[13] = '\xff';
  h[14] = '\xff';
  h[15] = '\x7f';
  EXPECT_EQ(DecodeBlockHeader(h).status().code(), StatusCode::kCorruption);
}

TEST_F(BlockFileTest, ReadingADirectoryIsIoError) {
  std::string d = dir_.Sub("adir");
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  // A directory opens but cannot be read: an I/O error, not a miss.
  auto got = ReadBlockFile(d, key_);
  EXPECT_NE(got.status().code(), StatusCode::kOk);
}

TEST_F(BlockFileTest, WriteFailsCleanly) {
  // Existing file (O_EXCL) and missing directory are both IoError.
  EXPECT_EQ(WriteBlockFile(path_, key_, "x").code(), StatusCode::kIoError);
  EXPECT_EQ(WriteBlockFile(dir_.Sub("no/such/dir"), key_, "x").code(), StatusCode::kIoError);
}

TEST(BlockId, StableAndDistinctPerField) {
  BlockId a = ComputeBlockId(Key("k", 1));
  EXPECT_EQ(a, ComputeBlockId(Key("k", 1)));
  EXPECT_NE(a, ComputeBlockId(Key("k", 2)));
  EXPECT_NE(a, ComputeBlockId(Key("k", 1, "\"e2\"")));
  EXPECT_NE(a, ComputeBlockId(Key("k", 1, "\"e1\"", 5)));
  EXPECT_NE(a, ComputeBlockId(Key("k2", 1)));
  // Length prefixes: moving a byte from key to etag changes the id.
  EXPECT_NE(ComputeBlockId(Key("ab", 0, "c")), ComputeBlockId(Key("a", 0, "bc")));
}

}  // namespace
}  // namespace dsfs
