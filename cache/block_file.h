// On-disk format of one cached block, and the identity that names it.
//
// A block file is a header followed by the block's bytes:
//
//   offset size  field (integers little-endian)
//   0      8     magic "DSFSBLK\0"
//   8      4     format version (kBlockFormatVersion)
//   12     4     header length H (bytes, including the trailing checksum)
//   16     8     object size
//   24     8     block index
//   32     8     data length D
//   40     8     XXH3-64 of the data
//   48     4     key length K
//   52     4     ETag length E
//   56     K     object key
//   56+K   E     ETag
//   56+K+E P     zero padding (version 2, see below)
//   H-8    8     XXH3-64 of header bytes [0, H-8)
//   H      D     data
//
// Version 2 pads the header to a multiple of kDirectIoAlignment when D is
// one too, so the data starts on an aligned offset and whole blocks are
// written with O_DIRECT: no copy into the page cache, no dirty pages to
// write back. Other blocks (an object's short last block) are unpadded and
// written buffered. Reads are buffered (the kernel's read-ahead made them
// ~25% faster than O_DIRECT here) and drop the file's pages afterwards: the
// FUSE page cache holds the bytes, the cache file need not hold them in RAM
// too. Version 1 files (never padded) are still read.
//
// Every read checks all of it: magic, version, header checksum, that the
// header names the block we asked for (key, ETag, size, index), that the
// file is exactly H + D bytes, and the data checksum. Anything else is
// Corruption: the caller drops the file and treats it as a miss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/block_cache.h"
#include "common/checksum.h"
#include "common/status.h"

namespace dsfs {

inline constexpr uint32_t kBlockFormatVersion = 2;
inline constexpr size_t kDirectIoAlignment = Buffer::kAlignment;
inline constexpr size_t kBlockHeaderFixedSize = 56;
// S3 keys are at most 1024 bytes; ETags are short. Bounding the header
// keeps a corrupt length field from making us allocate gigabytes.
inline constexpr size_t kMaxBlockHeaderSize = 8192;

// A block's identity: XXH3-128 of a canonical, length-prefixed encoding of
// (key, etag, size, index). The same block always gets the same id, and so
// the same file name.
using BlockId = Hash128;
BlockId ComputeBlockId(const BlockKey& key);

struct BlockIdHash {
  size_t operator()(const BlockId& id) const { return static_cast<size_t>(id.low ^ id.high); }
};
// Hashes a BlockKey (for in-memory maps), via ComputeBlockId.
struct BlockKeyHash {
  size_t operator()(const BlockKey& key) const { return BlockIdHash()(ComputeBlockId(key)); }
};

// What a header says (everything but the data).
struct BlockFileInfo {
  BlockKey key;
  uint64_t data_length = 0;
  uint64_t data_checksum = 0;
  uint64_t header_length = 0;
  uint64_t file_size() const { return header_length + data_length; }
};

// Header bytes for data stored as key (padded as described above).
std::string EncodeBlockHeader(const BlockKey& key, std::string_view data);

// Parses and verifies a header (magic, version, lengths, header checksum).
// `bytes` may extend past the header. Corruption on any mismatch.
Result<BlockFileInfo> DecodeBlockHeader(std::string_view bytes);

// Writes header + data to a new file at path (O_EXCL, mode 0600; the
// caller renames it into place), with O_DIRECT when the layout, data's
// alignment and the filesystem allow it. On failure the file is removed and the
// status is IoError (ENOSPC, EIO, ...). No fsync: a torn file after power
// loss fails its checksum on read and is dropped, which is what the header
// is for.
Status WriteBlockFile(const std::string& path, const BlockKey& key, std::string_view data);

// Size of the file WriteBlockFile writes for this block.
uint64_t BlockFileSize(const BlockKey& key, uint64_t data_length);

// Reads and verifies the block file at path, which must hold `expected`.
// NotFound if there is no file; Corruption if anything does not match;
// IoError if reading fails.
// The data buffer comes from pool when one is given.
Result<BlockData> ReadBlockFile(const std::string& path, const BlockKey& expected,
                                BufferPool* pool = nullptr);

// Reads and verifies only the header (for rebuilding the index), and
// checks the file's size matches it. NotFound / Corruption / IoError.
Result<BlockFileInfo> ReadBlockFileHeader(const std::string& path);

}  // namespace dsfs
