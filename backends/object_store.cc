// Default write operations: a store that cannot write (the share, test
// doubles) fails every write with NotSupported instead of each repeating it.
#include "backends/object_store.h"

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

}  // namespace dsfs
