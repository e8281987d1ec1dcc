// BlockCache: fixed-size aligned ranges of one object version.
// A block is identified by (ObjectId{key, etag, size}, index); a changed
// object has a new ETag, so a stale block can never be found.
//
// Implementation: DiskBlockCache (files under cache_dir, RocksDB index).
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/object_reader.h"
#include "common/buffer.h"
#include "common/status.h"

namespace dsfs {

struct BlockKey {
  ObjectId object;
  uint64_t index = 0;  // block number: bytes [index*block_size, ...)
  bool operator==(const BlockKey&) const = default;
};

// Immutable block bytes, shared between the cache, in-flight fetches and
// readers without copying.
using BlockData = std::shared_ptr<const Buffer>;

class BlockCache {
 public:
  virtual ~BlockCache() = default;
  // A miss is nullopt, not an error. A corrupt block is a miss (dropped and
  // counted by the implementation). Errors are for broken caches only, and
  // callers treat them as a miss too (reads never fail for a cache fault).
  virtual Result<std::optional<BlockData>> Get(const BlockKey& key) = 0;
  // Stores a block (data.size() is the block's length: block_size, or less
  // for the last block). May evict others to respect the size cap.
  virtual Status Put(const BlockKey& key, BlockData data) = 0;
  // Whether Get would most likely find the block, from memory only (no
  // I/O): read-ahead uses it to pace blocks that come from the disk.
  virtual bool Contains(const BlockKey& key) const = 0;
  // Bytes currently held.
  virtual uint64_t UsedBytes() const = 0;
};

}  // namespace dsfs
