#include <algorithm>

#include "cache/object_reader.h"

namespace dsfs {

Result<size_t> DirectReader::Read(const ObjectId& id, uint64_t offset, size_t len, char* buf) {
  if (offset >= id.size || len == 0) return size_t{0};
  uint64_t n = std::min<uint64_t>(len, id.size - offset);
  GetRequest req{.key = id.key, .range = ByteRange{offset, n}, .if_match = id.etag};
  return store_.Get(req, buf, n);
}

}  // namespace dsfs
