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

BlockExtent Ext(const std::string& key, uint64_t offset, uint64_t length,
                const std::string& etag = "\"e1\"", uint64_t size = 1 << 30) {
  return BlockExtent{ObjectId{key, etag, size}, offset, length};
}

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
  BlockExtent key_ = Ext("models/a.safetensors", 70000, 10000);
  BlockData data_ = Bytes(10000, 7);
  // key_'s extent with another length (the data tests write).
  BlockExtent WithLength(uint64_t n) const {
    BlockExtent e = key_;
    e.length = n;
    return e;
  }
  // Header length of path_'s file (10000 bytes of data: one chunk, unpadded).
  uint64_t HeaderLength() const {
    return kBlockHeaderFixedSize + key_.object.key.size() + key_.object.etag.size() + 8 + 8;
  }
};

TEST_F(BlockFileTest, RoundTripAndMode) {
  auto got = ReadBlockFile(path_, key_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(**got, *data_);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), BlockFileSize(key_));
  auto info = ReadBlockFileHeader(path_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->extent, key_);
  EXPECT_EQ(info->data_length, data_->size());
}

TEST_F(BlockFileTest, EmptyBlockRoundTrips) {
  std::string p = dir_.Sub("empty.blk");
  ASSERT_TRUE(WriteBlockFile(p, WithLength(0), "").ok());
  auto got = ReadBlockFile(p, WithLength(0));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->size(), 0u);
}

TEST_F(BlockFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadBlockFile(dir_.Sub("nope"), key_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadBlockFileHeader(dir_.Sub("nope")).status().code(), StatusCode::kNotFound);
}

// Every field of the extent is checked: key, ETag, object size, offset and
// length (the same bytes asked for with another block size).
TEST_F(BlockFileTest, WrongExtentIsCorruption) {
  for (const BlockExtent& other :
       {Ext("models/a.safetensors", 80000, 10000),
        Ext("models/a.safetensors", 70000, 10000, "\"e2\""),
        Ext("models/b.safetensors", 70000, 10000),
        Ext("models/a.safetensors", 70000, 10000, "\"e1\"", 123456),
        Ext("models/a.safetensors", 70000, 20000), Ext("models/a.safetensors", 70001, 10000),
        Ext("models/a.safetensors", 0, 10000)}) {
    auto got = ReadBlockFile(path_, other);
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption)
        << other.object.key << " " << other.offset << "+" << other.length;
  }
}

TEST_F(BlockFileTest, DataOfAnotherLengthIsNotWritten) {
  std::string p = dir_.Sub("len.blk");
  EXPECT_EQ(WriteBlockFile(p, key_, "short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(::access(p.c_str(), F_OK), -1);
}

// Blocks of format 1 and 2 named a block index, not an offset: never served.
TEST_F(BlockFileTest, OldFormatsAreNeverServed) {
  std::string good = ReadAll(path_);
  for (uint32_t version : {1u, 2u}) {
    std::string h = good.substr(0, HeaderLength());
    h[8] = static_cast<char>(version);
    h.resize(h.size() - 8);
    uint64_t sum = Xxh3_64(h);
    for (int i = 0; i < 8; ++i) h.push_back(static_cast<char>(sum >> (8 * i)));
    std::string p = dir_.Sub("v" + std::to_string(version) + ".blk");
    WriteAll(p, h + good.substr(h.size()));
    auto got = ReadBlockFile(p, key_);
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << version;
    EXPECT_NE(got.status().message().find(kOldBlockFormat), std::string::npos)
        << got.status().message();
  }
}

// A FIFO, symlink or directory at a block's path is Corruption at once:
// never opened blocking, never followed.
TEST_F(BlockFileTest, NonRegularFilesAreCorruptionAndNeverFollowed) {
  std::string fifo = dir_.Sub("fifo.blk");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadBlockFile(fifo, key_).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadBlockFileHeader(fifo).status().code(), StatusCode::kCorruption);
  std::string link = dir_.Sub("link.blk");
  ASSERT_EQ(::symlink(path_.c_str(), link.c_str()), 0);  // to a valid block file
  EXPECT_EQ(ReadBlockFile(link, key_).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadBlockFileHeader(link).status().code(), StatusCode::kCorruption);
  std::string d = dir_.Sub("adir");
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  EXPECT_EQ(ReadBlockFile(d, key_).status().code(), StatusCode::kCorruption);
}

// Flips one byte at each of several offsets: header fields, key, checksum, data.
TEST_F(BlockFileTest, AnyFlippedByteIsCorruption) {
  std::string good = ReadAll(path_);
  uint64_t header = HeaderLength();
  for (uint64_t off : {0ul, 5ul, 8ul, 12ul, 16ul, 24ul, 32ul, 40ul, 44ul, 48ul, 52ul, 60ul,
                       header - 9, header - 1, header, header + 5000, good.size() - 1}) {
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
    ASSERT_TRUE(WriteBlockFile(p, WithLength(n), *data).ok());
    auto info = ReadBlockFileHeader(p);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->header_length % kDirectIoAlignment, 0u) << n;
    EXPECT_EQ(info->file_size(), BlockFileSize(WithLength(n)));
    auto got = ReadBlockFile(p, WithLength(n));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(**got == *data) << n;
    // The padding is covered by the header checksum, the data by its own.
    std::string good = ReadAll(p);
    for (uint64_t off : {info->header_length - 100, info->header_length - 1,
                         info->header_length + n / 2, good.size() - 1}) {
      std::string bad = good;
      bad[off] ^= 0x01;
      WriteAll(p, bad);
      EXPECT_EQ(ReadBlockFile(p, WithLength(n)).status().code(), StatusCode::kCorruption)
          << n << "@" << off;
    }
  }
  // A short last block (and this fixture's 10000 bytes) is not padded.
  auto info = ReadBlockFileHeader(path_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->header_length, HeaderLength());
  EXPECT_EQ(info->file_size(), BlockFileSize(key_));
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
  ASSERT_TRUE(WriteBlockFile(p, WithLength(256 << 10), *data).ok());
  ASSERT_TRUE(ReadBlockFile(p, WithLength(256 << 10)).ok());
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

TEST_F(BlockFileTest, WriteFailsCleanly) {
  // Existing file (O_EXCL) and missing directory are both IoError.
  EXPECT_EQ(WriteBlockFile(path_, WithLength(1), "x").code(), StatusCode::kIoError);
  EXPECT_EQ(WriteBlockFile(dir_.Sub("no/such/dir"), WithLength(1), "x").code(),
            StatusCode::kIoError);
}

TEST(BlockId, StableAndDistinctPerField) {
  BlockId a = ComputeBlockId(Ext("k", 4096, 4096));
  EXPECT_EQ(a, ComputeBlockId(Ext("k", 4096, 4096)));
  EXPECT_NE(a, ComputeBlockId(Ext("k", 8192, 4096)));  // offset
  EXPECT_NE(a, ComputeBlockId(Ext("k", 4096, 4095)));  // length
  EXPECT_NE(a, ComputeBlockId(Ext("k", 4096, 4096, "\"e2\"")));
  EXPECT_NE(a, ComputeBlockId(Ext("k", 4096, 4096, "\"e1\"", 5 << 20)));
  EXPECT_NE(a, ComputeBlockId(Ext("k2", 4096, 4096)));
  // Length prefixes: moving a byte from key to etag changes the id.
  EXPECT_NE(ComputeBlockId(Ext("ab", 0, 1, "c")), ComputeBlockId(Ext("a", 0, 1, "bc")));
}

// Block i of a 4 MiB-block mount and of an 8 MiB-block mount are different
// extents (and so different files) unless they cover the same bytes.
TEST(BlockExtent, FollowsTheBlockSize) {
  const uint64_t mib = 1 << 20;
  BlockKey k = Key("k", 1, "\"e\"", 12 * mib);
  EXPECT_EQ(ExtentOf(k, 4 * mib), Ext("k", 4 * mib, 4 * mib, "\"e\"", 12 * mib));
  EXPECT_EQ(ExtentOf(k, 8 * mib), Ext("k", 8 * mib, 4 * mib, "\"e\"", 12 * mib));
  EXPECT_NE(ComputeBlockId(ExtentOf(k, 4 * mib)), ComputeBlockId(ExtentOf(k, 8 * mib)));
  // A small object is one extent whatever the block size: shared.
  BlockKey small = Key("s", 0, "\"e\"", 3 * mib);
  EXPECT_EQ(ExtentOf(small, 4 * mib), ExtentOf(small, 8 * mib));
  // Past the end: empty, never wrapping.
  EXPECT_EQ(ExtentOf(Key("k", 3, "\"e\"", 12 * mib), 4 * mib).length, 0u);
  EXPECT_EQ(ExtentOf(Key("k", ~0ull, "\"e\"", 12 * mib), 4 * mib).length, 0u);
}

}  // namespace
}  // namespace dsfs
