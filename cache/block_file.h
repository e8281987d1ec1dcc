// On-disk format of one cached block, and the identity that names it.
//
// What a block file holds is the byte range [offset, offset + length) of
// one object version (key, ETag, object size): a BlockExtent. The file name
// (BlockId) is derived from all five, the header stores all five, and every
// read checks all five, so a block written with another block_size (another
// offset or length) can never be served in place of the one asked for.
//
// A block file is a header followed by the block's bytes:
//
//   offset size  field (integers little-endian)
//   0      8     magic "DSFSBLK\0"
//   8      4     format version (kBlockFormatVersion)
//   12     4     header length H (bytes, including the trailing checksum)
//   16     8     object size
//   24     8     byte offset of the data in the object
//   32     8     data length D (the extent's length)
//   40     4     chunk size C (bytes; VerifyChunkSize(D))
//   44     4     chunk count N = ceil(D / C) (0 for an empty block)
//   48     4     key length K
//   52     4     ETag length E
//   56     K     object key
//   56+K   E     ETag
//   56+K+E 8N    XXH3-64 of each chunk of the data: chunk i is data bytes
//                [i*C, min(D, (i+1)*C))
//   ...    P     zero padding (see below)
//   H-8    8     XXH3-64 of header bytes [0, H-8)
//   H      D     data
//
// The data is verified chunk by chunk, so a small read of a cached block
// (ReadBlockFileRange) reads and checks only the chunks it covers, not the
// whole block: a 4 KiB random read of a 4 MiB block costs one 64 KiB read.
// There is no checksum of the whole data: a whole block verifies when each
// of its chunks does. A range read checks only the chunks it reads, so a
// flipped byte elsewhere in the block is found by the next whole read
// (ReadBlockFile) or by `dsfsctl cache fsck`, never served.
//
// The header is padded to a multiple of kDirectIoAlignment when D is one
// too, so the data starts on an aligned offset and whole blocks are
// written with O_DIRECT: no copy into the page cache, no dirty pages to
// write back. Other blocks (an object's short last block) are unpadded and
// written buffered. Whole reads are buffered (the kernel's read-ahead made
// them ~25% faster than O_DIRECT here) and drop the file's pages
// afterwards: the FUSE page cache holds the bytes, the cache file need not
// hold them in RAM too. Range reads are buffered without read-ahead
// (POSIX_FADV_RANDOM) and keep their chunks' pages: the next small read of
// the block most likely wants a neighbour of the bytes just read, and the
// FUSE page cache holds only the bytes asked for.
//
// Versions: 1 (unpadded) and 2 (padded) stored the block index where
// version 3 and later store the byte offset. An index means nothing without
// the block_size it was written with, so version 1 and 2 files are never
// served: decoding one is Corruption (kOldBlockFormat in the message) and
// the caller deletes it. Version 3 is version 4 without the chunk table:
// bytes 40..48 hold one XXH3-64 of the whole data, and N is 0 in the
// header length. Version 3 files are still served (a cache survives the
// upgrade), verified whole: a range read of one reads the whole block.
// New files are always version 4.
//
// Every read checks all of it: magic, version, header checksum, that the
// header names the extent we asked for (key, ETag, size, offset, length),
// that the file is exactly H + D bytes, and the data checksums (all of
// them, or a range read's chunks). Anything else is Corruption: the caller
// drops the file and treats it as a miss.
// Block files are opened O_NOFOLLOW | O_NONBLOCK and must be regular files
// (fstat): a symlink, FIFO, socket or directory at a block's path is
// Corruption, never followed or waited on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/block_cache.h"
#include "common/checksum.h"
#include "common/status.h"

namespace dsfs {

inline constexpr uint32_t kBlockFormatVersion = 4;
// The oldest format still served (read with its whole-data checksum).
inline constexpr uint32_t kOldestServedBlockFormat = 3;
// Bytes verified by one checksum. A 4 KiB random read of a cached block
// reads and hashes one chunk instead of the whole block (4 MiB: 391 IOPS
// in the bench's random step, every read reading and hashing 4 MiB), and
// a 4 MiB block needs only 64 checksums (512 header bytes, still inside
// the header's first page). Smaller chunks would save little more: on the
// dev VM's disk a cold 64 KiB pread took 0.17 ms at the median, 4 KiB
// 0.08 ms, 4 MiB 0.64 ms (plus hashing 4 MiB).
inline constexpr uint64_t kVerifyChunk = 64 << 10;
// At most this many chunks per block: larger blocks get larger chunks
// (VerifyChunkSize), so the table stays within 2 KiB and the header within
// kMaxBlockHeaderSize whatever the block_size.
inline constexpr uint64_t kMaxVerifyChunks = 256;
inline constexpr size_t kDirectIoAlignment = Buffer::kAlignment;
inline constexpr size_t kBlockHeaderFixedSize = 56;
// S3 keys are at most 1024 bytes; ETags are short. Bounding the header
// keeps a corrupt length field from making us allocate gigabytes.
inline constexpr size_t kMaxBlockHeaderSize = 8192;

// The bytes a block file holds: [offset, offset + length) of one object
// version.
struct BlockExtent {
  ObjectId object;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const BlockExtent&) const = default;
};

// Block key.index of an object cut into blocks of block_size bytes (the
// last one shorter; an index past the end has length 0).
BlockExtent ExtentOf(const BlockKey& key, uint64_t block_size);

// A block's identity: XXH3-128 of a canonical, length-prefixed encoding of
// (key, etag, size, offset, length). The same extent always gets the same
// id, and so the same file name.
using BlockId = Hash128;
BlockId ComputeBlockId(const BlockExtent& extent);

struct BlockIdHash {
  size_t operator()(const BlockId& id) const { return static_cast<size_t>(id.low ^ id.high); }
};

// The chunk size of a block of data_length bytes: kVerifyChunk, doubled
// until the block has at most kMaxVerifyChunks chunks.
uint64_t VerifyChunkSize(uint64_t data_length);

// What a header says (everything but the data).
struct BlockFileInfo {
  BlockExtent extent;
  uint32_t version = kBlockFormatVersion;
  uint64_t data_length = 0;
  uint64_t data_checksum = 0;             // version 3 only: XXH3-64 of the whole data
  uint64_t chunk_size = 0;                // version 4: C
  std::vector<uint64_t> chunk_checksums;  // version 4: N checksums
  uint64_t header_length = 0;
  uint64_t file_size() const { return header_length + data_length; }
};

// Header bytes for data stored as extent (padded as described above).
// data.size() must be extent.length.
std::string EncodeBlockHeader(const BlockExtent& extent, std::string_view data);

// Marks the Corruption message of a version 1/2 file.
inline constexpr char kOldBlockFormat[] = "old block format";

// Parses and verifies a header (magic, version, lengths, header checksum).
// `bytes` may extend past the header. Corruption on any mismatch.
Result<BlockFileInfo> DecodeBlockHeader(std::string_view bytes);

// Writes header + data to a new file at path (O_EXCL, mode 0600; the
// caller renames it into place), with O_DIRECT when the layout, data's
// alignment and the filesystem allow it. On failure the file is removed and the
// status is IoError (ENOSPC, EIO, ...). No fsync: a torn file after power
// loss fails its checksum on read and is dropped, which is what the header
// is for.
// InvalidArgument if data.size() is not extent.length.
Status WriteBlockFile(const std::string& path, const BlockExtent& extent, std::string_view data);

// Size of the file WriteBlockFile writes for this extent.
uint64_t BlockFileSize(const BlockExtent& extent);

// Reads and verifies the block file at path, which must hold `expected`.
// NotFound if there is no file; Corruption if anything does not match
// (including a path that is not a regular file); IoError if reading fails.
// The data buffer comes from pool when one is given.
Result<BlockData> ReadBlockFile(const std::string& path, const BlockExtent& expected,
                                BufferPool* pool = nullptr);

// Reads bytes [offset, offset + len) of the block file at path, which must
// hold `expected` (the range is clipped to the block: past the end it is
// empty). Checks what ReadBlockFile does, but reads and verifies only the
// chunks the range covers (a version 3 file: all of the data). The buffer
// holds exactly the bytes asked for; the chunks are read into one from
// pool when one is given. Same errors as ReadBlockFile.
Result<BlockData> ReadBlockFileRange(const std::string& path, const BlockExtent& expected,
                                     uint64_t offset, uint64_t len, BufferPool* pool = nullptr);

// Reads and verifies only the header (for rebuilding the index), and
// checks the file's size matches it. NotFound / Corruption / IoError.
Result<BlockFileInfo> ReadBlockFileHeader(const std::string& path);

}  // namespace dsfs
