// An ObjectReader straight over a store (one ranged GET with If-Match per
// read, no cache, no read-ahead): the filesystem tests' reader.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "backends/object_store.h"
#include "cache/object_reader.h"
#include "common/buffer.h"

namespace dsfs::testing {

class StoreReader : public ObjectReader {
 public:
  explicit StoreReader(ObjectStore& store) : store_(store) {}
  Result<SliceList> ReadSlices(const ObjectId& id, uint64_t offset, size_t len,
                               const CancelTokenPtr&) override {
    if (offset >= id.size || len == 0) return SliceList{};
    uint64_t n = std::min<uint64_t>(len, id.size - offset);
    std::shared_ptr<Buffer> buf = Buffer::Allocate(n);
    GetRequest req{.key = id.key, .range = ByteRange{offset, n}, .if_match = id.etag};
    DSFS_ASSIGN_OR_RETURN(GetResult got, store_.Get(req, buf->data(), n));
    SliceList out;
    if (got.bytes > 0) out.push_back(ReadSlice{buf, buf->data(), got.bytes});
    return out;
  }

 private:
  ObjectStore& store_;
};

}  // namespace dsfs::testing
