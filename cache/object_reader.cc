#include "cache/object_reader.h"

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

Result<size_t> ObjectReader::Read(const ObjectId& id, uint64_t offset, size_t len, char* buf,
                                  const CancelTokenPtr& cancel) {
  DSFS_ASSIGN_OR_RETURN(SliceList slices, ReadSlices(id, offset, len, cancel));
  return CopySlices(slices, buf);
}

}  // namespace dsfs
