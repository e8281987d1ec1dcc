#include "common/status.h"

#include <cerrno>

namespace dsfs {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAccessDenied: return "AccessDenied";
    case StatusCode::kPreconditionFailed: return "PreconditionFailed";
    case StatusCode::kThrottled: return "Throttled";
    case StatusCode::kTransient: return "Transient";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kReadOnly: return "ReadOnly";
    case StatusCode::kNotDirectory: return "NotDirectory";
    case StatusCode::kIsDirectory: return "IsDirectory";
    case StatusCode::kNameTooLong: return "NameTooLong";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIoError: return "IoError";
    case StatusCode::kNotSupported: return "NotSupported";
    case StatusCode::kNoAttribute: return "NoAttribute";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kExists: return "Exists";
    case StatusCode::kNotEmpty: return "NotEmpty";
    case StatusCode::kNotPermitted: return "NotPermitted";
    case StatusCode::kNoSpace: return "NoSpace";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = StatusCodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

int ToErrno(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kNotFound: return ENOENT;
    case StatusCode::kAccessDenied: return EACCES;
    case StatusCode::kPreconditionFailed: return ESTALE;
    case StatusCode::kInvalidArgument: return EINVAL;
    case StatusCode::kReadOnly: return EROFS;
    case StatusCode::kNotDirectory: return ENOTDIR;
    case StatusCode::kIsDirectory: return EISDIR;
    case StatusCode::kNameTooLong: return ENAMETOOLONG;
    case StatusCode::kNotSupported: return ENOTSUP;
    case StatusCode::kNoAttribute: return ENODATA;
    case StatusCode::kCancelled: return EINTR;
    case StatusCode::kExists: return EEXIST;
    case StatusCode::kNotEmpty: return ENOTEMPTY;
    case StatusCode::kNotPermitted: return EPERM;
    case StatusCode::kNoSpace: return ENOSPC;
    case StatusCode::kThrottled:
    case StatusCode::kTransient:
    case StatusCode::kUnavailable:
    case StatusCode::kCorruption:
    case StatusCode::kIoError: return EIO;
  }
  return EIO;
}

}  // namespace dsfs
