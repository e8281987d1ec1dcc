// ObjectReader: how the filesystem reads bytes of one object version.
// The caching reader (block cache + prefetcher) implements it; fs/ sees only
// this interface, so it does not change when the data path does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/object_store.h"
#include "common/buffer.h"
#include "common/cancel.h"
#include "common/status.h"

namespace dsfs {

// One immutable version of an object: a changed object has a new ETag and
// so is a different ObjectId.
struct ObjectId {
  std::string key;
  std::string etag;
  uint64_t size = 0;
  bool operator==(const ObjectId&) const = default;
};

// Part of a read's reply: size bytes at data, inside a buffer that owner
// keeps alive. A read returns slices of the cached blocks themselves, so the
// FUSE reply is written from them without a copy.
struct ReadSlice {
  std::shared_ptr<const Buffer> owner;
  const char* data = nullptr;
  size_t size = 0;
};
using SliceList = std::vector<ReadSlice>;

size_t TotalSize(const SliceList& slices);
// Copies the slices, in order, to buf; returns the bytes copied.
size_t CopySlices(const SliceList& slices, char* buf);

class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to len bytes at offset. The slices hold fewer than len bytes
  // only at end of object (none at or past the end). Fails with
  // PreconditionFailed if the object no longer has id.etag. `cancel`
  // (may be null): cancelled when the caller gives up (a FUSE interrupt:
  // the reader was killed); a read waiting for bytes then fails with
  // Cancelled at once. The fetches it waited for run on (other readers may
  // share them, and their blocks are cached).
  virtual Result<SliceList> ReadSlices(const ObjectId& id, uint64_t offset, size_t len,
                                       const CancelTokenPtr& cancel) = 0;
  // The same, copied into buf.
  Result<size_t> Read(const ObjectId& id, uint64_t offset, size_t len, char* buf,
                      const CancelTokenPtr& cancel = nullptr);
  // What Warm did: blocks fetched into the disk cache, blocks it already
  // held (not fetched), and the block size and count of the object.
  struct WarmCounts {
    uint64_t fetched = 0;
    uint64_t skipped = 0;
    uint64_t block_size = 0;
    uint64_t blocks = 0;
  };
  // Puts blocks first .. first+count-1 (clamped to the object) into the
  // disk cache and returns once they are there (dsfsctl warm). count 0:
  // only the block size and count. NotSupported without a disk cache.
  virtual Result<WarmCounts> Warm(const ObjectId& /*id*/, uint64_t /*first*/,
                                  uint64_t /*count*/, const CancelTokenPtr& /*cancel*/) {
    return Status::NotSupported("no disk cache to warm (mount with cache_dir=)");
  }
  // A handle opened / released the object (read-ahead hints).
  virtual void Opened(const ObjectId& /*id*/) {}
  virtual void Released(const ObjectId& /*id*/) {}
};

}  // namespace dsfs
