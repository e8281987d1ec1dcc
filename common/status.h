// Errors are values: every fallible operation returns Status or Result<T>.
// A Status carries a kind (what the caller can do about it) and a message
// (what a human needs to know). ToErrno() is the one place a Status becomes
// an errno.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace dsfs {

enum class StatusCode {
  kOk = 0,
  kNotFound,            // object / name does not exist            -> ENOENT
  kAccessDenied,        // credentials refused (403)               -> EACCES
  kPreconditionFailed,  // ETag changed under an open handle (412) -> ESTALE
  kThrottled,           // 429 / 503 SlowDown: retryable           -> EIO
  kTransient,           // 5xx, reset, timeout, short body         -> EIO
  kUnavailable,         // store down / circuit open               -> EIO
  kInvalidArgument,     // bad option, bad key, malformed reply    -> EINVAL
  kReadOnly,            // write on a read-only mount              -> EROFS
  kNotDirectory,        //                                         -> ENOTDIR
  kIsDirectory,         //                                         -> EISDIR
  kNameTooLong,         //                                         -> ENAMETOOLONG
  kCorruption,          // checksum mismatch, unreadable index     -> EIO
  kIoError,             // local I/O failed                        -> EIO
  kNotSupported,        //                                         -> ENOTSUP
  kNoAttribute,         // no such extended attribute              -> ENODATA
  kCancelled,           // the caller gave up (interrupt, close)   -> EINTR
  kExists,              // the name is taken                       -> EEXIST
  kNotEmpty,            // rmdir / rename onto a non-empty dir     -> ENOTEMPTY
  kNotPermitted,        // an operation dsfs never does (link)     -> EPERM
  kNoSpace,             // the local staging disk is full          -> ENOSPC
};

// Name of a code, for logs and test failure messages.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AccessDenied(std::string m) { return {StatusCode::kAccessDenied, std::move(m)}; }
  static Status PreconditionFailed(std::string m) {
    return {StatusCode::kPreconditionFailed, std::move(m)};
  }
  static Status Throttled(std::string m) { return {StatusCode::kThrottled, std::move(m)}; }
  static Status Transient(std::string m) { return {StatusCode::kTransient, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status ReadOnly(std::string m) { return {StatusCode::kReadOnly, std::move(m)}; }
  static Status NotDirectory(std::string m) { return {StatusCode::kNotDirectory, std::move(m)}; }
  static Status IsDirectory(std::string m) { return {StatusCode::kIsDirectory, std::move(m)}; }
  static Status NameTooLong(std::string m) { return {StatusCode::kNameTooLong, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status NotSupported(std::string m) { return {StatusCode::kNotSupported, std::move(m)}; }
  static Status NoAttribute(std::string m) { return {StatusCode::kNoAttribute, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Exists(std::string m) { return {StatusCode::kExists, std::move(m)}; }
  static Status NotEmpty(std::string m) { return {StatusCode::kNotEmpty, std::move(m)}; }
  static Status NotPermitted(std::string m) { return {StatusCode::kNotPermitted, std::move(m)}; }
  static Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Retrying the same request may succeed (throttling, 5xx, reset, timeout).
  bool retryable() const {
    return code_ == StatusCode::kThrottled || code_ == StatusCode::kTransient;
  }
  // "NotFound: no such key 'a/b'"
  std::string ToString() const;

  // Prefixes context to the message, keeping the code.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T>: a value or a non-OK Status (GCC 12 has no std::expected).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;  // immutable
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

// The one mapping from Status to errno (positive value).
int ToErrno(const Status& status);

}  // namespace dsfs

// Early-return helpers. DSFS_ASSIGN_OR_RETURN(auto x, Expr()) declares x.
#define DSFS_CONCAT_INNER_(a, b) a##b
#define DSFS_CONCAT_(a, b) DSFS_CONCAT_INNER_(a, b)
#define DSFS_RETURN_IF_ERROR(expr)            \
  do {                                        \
    ::dsfs::Status dsfs_st_ = (expr);         \
    if (!dsfs_st_.ok()) return dsfs_st_;      \
  } while (0)
#define DSFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
#define DSFS_ASSIGN_OR_RETURN(lhs, expr) \
  DSFS_ASSIGN_OR_RETURN_IMPL_(DSFS_CONCAT_(dsfs_res_, __LINE__), lhs, expr)
