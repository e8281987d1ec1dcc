#include "cache/object_reader.h"

#include <algorithm>
#include <cstring>

namespace dsfs {

size_t TotalSize(const SliceList& slices) {
  size_t n = 0;
  for (const ReadSlice& s : slices) n += s.size;
  return n;
}

size_t CopySlices(const SliceList& slices, char* buf) {
  size_t n = 0;
  for (const ReadSlice& s : slices) {
    std::memcpy(buf + n, s.data, s.size);
    n += s.size;
  }
  return n;
}

Result<size_t> ObjectReader::Read(const ObjectId& id, uint64_t offset, size_t len, char* buf) {
  DSFS_ASSIGN_OR_RETURN(SliceList slices, ReadSlices(id, offset, len));
  return CopySlices(slices, buf);
}

Result<SliceList> DirectReader::ReadSlices(const ObjectId& id, uint64_t offset, size_t len) {
  if (offset >= id.size || len == 0) return SliceList{};
  uint64_t n = std::min<uint64_t>(len, id.size - offset);
  std::shared_ptr<Buffer> buf = Buffer::Allocate(n);
  GetRequest req{.key = id.key, .range = ByteRange{offset, n}, .if_match = id.etag};
  DSFS_ASSIGN_OR_RETURN(GetResult got, store_.Get(req, buf->data(), n));
  SliceList out;
  if (got.bytes > 0) out.push_back(ReadSlice{buf, buf->data(), got.bytes});
  return out;
}

}  // namespace dsfs
