// Default write operations: a store that cannot write (the share, test
// doubles) fails every write with NotSupported instead of each repeating it.
#include "backends/object_store.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace dsfs {
namespace {
Status CannotWrite(const ObjectStore& store, const char* op) {
  return Status::NotSupported(std::string(op) + ": " + store.Describe() + " is read-only");
}
}  // namespace

Result<PutResult> ObjectStore::Put(const PutRequest&) { return CannotWrite(*this, "put"); }
Result<PutResult> ObjectStore::Copy(const CopyRequest&) { return CannotWrite(*this, "copy"); }
Result<std::string> ObjectStore::CreateMultipartUpload(const std::string&, const ObjectAttrs&) {
  return CannotWrite(*this, "create multipart upload");
}
Result<std::string> ObjectStore::UploadPart(const UploadPartRequest&) {
  return CannotWrite(*this, "upload part");
}
Result<PutResult> ObjectStore::CompleteMultipartUpload(const std::string&, const std::string&,
                                                       const std::vector<CompletedPart>&) {
  return CannotWrite(*this, "complete multipart upload");
}
Status ObjectStore::AbortMultipartUpload(const std::string&, const std::string&) {
  return CannotWrite(*this, "abort multipart upload");
}
Status ObjectStore::Delete(const std::string&) { return CannotWrite(*this, "delete"); }

void CopyIntoParts(std::span<const GetPart> parts, uint64_t at, const char* bytes, size_t len) {
  for (const GetPart& part : parts) {
    if (len == 0) return;
    if (at >= part.length) {
      at -= part.length;
      continue;
    }
    const size_t n = std::min<uint64_t>(part.length - at, len);
    std::memcpy(part.data + at, bytes, n);
    bytes += n;
    len -= n;
    at = 0;
  }
}

Result<GetResult> GetPartsThroughBuffer(
    std::span<const GetPart> parts, const std::function<Result<GetResult>(char*, size_t)>& get) {
  if (parts.size() == 1) return get(parts[0].data, parts[0].length);
  size_t total = 0;
  for (const GetPart& p : parts) total += p.length;
  // Not zero-filled: the GET writes every byte that is copied out.
  std::unique_ptr<char[]> tmp(new char[total]);
  Result<GetResult> r = get(tmp.get(), total);
  if (!r.ok()) return r;
  CopyIntoParts(parts, 0, tmp.get(), std::min(r->bytes, total));
  return r;
}

Result<GetResult> ObjectStore::GetParts(const GetRequest& request, std::span<const GetPart> parts) {
  return GetPartsThroughBuffer(parts,
                               [&](char* buf, size_t len) { return Get(request, buf, len); });
}

}  // namespace dsfs
