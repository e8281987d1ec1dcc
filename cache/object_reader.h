// ObjectReader: how the filesystem reads bytes of one object version.
// DirectReader GETs exactly what is asked; the caching reader (block cache +
// prefetcher) implements the same interface, so fs/ does not change when
// the data path does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/object_store.h"
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

class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to len bytes at offset into buf. Returns fewer than len only
  // at end of object (0 at or past the end). Fails with PreconditionFailed
  // if the object no longer has id.etag.
  virtual Result<size_t> Read(const ObjectId& id, uint64_t offset, size_t len, char* buf) = 0;
  // A handle opened / released the object (read-ahead hints).
  virtual void Opened(const ObjectId& /*id*/) {}
  virtual void Released(const ObjectId& /*id*/) {}
};

// Straight to the store: one ranged GET per read, If-Match the pinned ETag.
class DirectReader : public ObjectReader {
 public:
  explicit DirectReader(ObjectStore& store) : store_(store) {}
  Result<size_t> Read(const ObjectId& id, uint64_t offset, size_t len, char* buf) override;

 private:
  ObjectStore& store_;
};

}  // namespace dsfs
