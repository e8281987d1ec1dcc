// BlockCache: fixed-size aligned ranges of one object version.
// A block is identified by (ObjectId{key, etag, size}, index); a changed
// object has a new ETag, so a stale block can never be found.
//
// Implementation: DiskBlockCache (files under cache_dir, RocksDB index).
// Implementations are thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

// Order of BlockKeys for maps: consistent with operator== (size included);
// blocks of one object version sort by index.
struct BlockKeyLess {
  bool operator()(const BlockKey& a, const BlockKey& b) const {
    if (int c = a.object.key.compare(b.object.key); c != 0) return c < 0;
    if (int c = a.object.etag.compare(b.object.etag); c != 0) return c < 0;
    if (a.object.size != b.object.size) return a.object.size < b.object.size;
    return a.index < b.index;
  }
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
  // Bytes [offset, offset + len) of the block (clipped to its length),
  // exactly those, with Get's miss, corruption and error semantics; an
  // implementation that can reads and verifies only that part of the block
  // (DiskBlockCache). This default takes the whole block from Get and copies
  // the range out.
  virtual Result<std::optional<BlockData>> GetRange(const BlockKey& key, uint64_t offset,
                                                    size_t len) {
    auto whole = Get(key);
    if (!whole.ok() || !whole->has_value() || !**whole) return whole;
    std::string_view all = (**whole)->view();
    const size_t begin = static_cast<size_t>(std::min<uint64_t>(offset, all.size()));
    return std::optional<BlockData>(Buffer::Copy(all.substr(begin, len)));
  }
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
