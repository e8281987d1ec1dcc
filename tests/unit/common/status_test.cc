#include <gtest/gtest.h>

#include <cerrno>

#include "common/config.h"
#include "common/status.h"

namespace dsfs {
namespace {

TEST(Status, MapsEveryKindToErrno) {
  EXPECT_EQ(ToErrno(Status::Ok()), 0);
  EXPECT_EQ(ToErrno(Status::NotFound("x")), ENOENT);
  EXPECT_EQ(ToErrno(Status::AccessDenied("x")), EACCES);
  EXPECT_EQ(ToErrno(Status::PreconditionFailed("x")), ESTALE);
  EXPECT_EQ(ToErrno(Status::ReadOnly("x")), EROFS);
  EXPECT_EQ(ToErrno(Status::Transient("x")), EIO);
  EXPECT_EQ(ToErrno(Status::Throttled("x")), EIO);
  EXPECT_EQ(ToErrno(Status::Unavailable("x")), EIO);
  EXPECT_EQ(ToErrno(Status::Corruption("x")), EIO);
  EXPECT_EQ(ToErrno(Status::Exists("x")), EEXIST);
  EXPECT_EQ(ToErrno(Status::NotEmpty("x")), ENOTEMPTY);
  EXPECT_EQ(ToErrno(Status::NotPermitted("x")), EPERM);
  EXPECT_EQ(ToErrno(Status::NameTooLong("x")), ENAMETOOLONG);
  EXPECT_EQ(ToErrno(Status::NoAttribute("x")), ENODATA);
  EXPECT_EQ(ToErrno(Status::NoSpace("x")), ENOSPC);
  EXPECT_EQ(ToErrno(Status::NotSupported("x")), ENOTSUP);
  EXPECT_EQ(ToErrno(Status::IsDirectory("x")), EISDIR);
  EXPECT_EQ(ToErrno(Status::NotDirectory("x")), ENOTDIR);
  EXPECT_EQ(ToErrno(Status::InvalidArgument("x")), EINVAL);
}

TEST(Status, RetryableOnlyForThrottledAndTransient) {
  EXPECT_TRUE(Status::Throttled("").retryable());
  EXPECT_TRUE(Status::Transient("").retryable());
  EXPECT_FALSE(Status::NotFound("").retryable());
  EXPECT_FALSE(Status::AccessDenied("").retryable());
  EXPECT_FALSE(Status::Unavailable("").retryable());
}

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  DSFS_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).status().ToString(), "InvalidArgument: odd");
}

TEST(ParseSize, AcceptsSuffixes) {
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("4M").value(), 4u << 20);
  EXPECT_EQ(ParseSize("4MiB").value(), 4u << 20);
  EXPECT_EQ(ParseSize("200G").value(), 200ull << 30);
  EXPECT_EQ(ParseSize("1t").value(), 1ull << 40);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("G").ok());
  EXPECT_FALSE(ParseSize("12X").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseSize("17000000000T").ok());
}

TEST(ParseDuration, BareNumberIsSeconds) {
  EXPECT_EQ(ParseDuration("30").value().count(), 30000);
  EXPECT_EQ(ParseDuration("500ms").value().count(), 500);
  EXPECT_EQ(ParseDuration("2m").value().count(), 120000);
  EXPECT_FALSE(ParseDuration("-1").ok());
  EXPECT_FALSE(ParseDuration("5y").ok());
}

}  // namespace
}  // namespace dsfs
