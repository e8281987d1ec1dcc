#include "common/strings.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace dsfs {
namespace {

TEST(AsciiLower, LowersAsciiLettersOnly) {
  EXPECT_EQ(AsciiLower("Content-Length"), "content-length");
  EXPECT_EQ(AsciiLower("MiB 4M"), "mib 4m");
  EXPECT_EQ(AsciiLower(""), "");
  // Bytes outside A-Z (digits, punctuation, UTF-8) are left alone.
  EXPECT_EQ(AsciiLower("X-\xc3\x84-9"), "x-\xc3\x84-9");
}

TEST(Trim, DropsSurroundingAsciiWhitespace) {
  EXPECT_EQ(Trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(Trim("\v\fx\f"), "x");
  EXPECT_EQ(Trim("inner  spaces stay"), "inner  spaces stay");
  EXPECT_EQ(Trim(" \t\r\n"), "");
  EXPECT_EQ(Trim(""), "");
}

TEST(ParseInteger, WholeStringOnly) {
  uint64_t u = 7;
  EXPECT_TRUE(ParseInteger("18446744073709551615", &u));
  EXPECT_EQ(u, UINT64_MAX);
  u = 7;
  EXPECT_FALSE(ParseInteger("18446744073709551616", &u));  // overflow
  EXPECT_FALSE(ParseInteger("12x", &u));                   // trailing bytes
  EXPECT_FALSE(ParseInteger(" 12", &u));                   // leading space
  EXPECT_FALSE(ParseInteger("", &u));
  EXPECT_FALSE(ParseInteger("-1", &u));  // no sign for unsigned
  EXPECT_EQ(u, 7u) << "a failed parse leaves *out as it was";
  int i = 0;
  EXPECT_TRUE(ParseInteger("-42", &i));
  EXPECT_EQ(i, -42);
  unsigned mode = 0;
  EXPECT_TRUE(ParseInteger("0755", &mode, 8));
  EXPECT_EQ(mode, 0755u);
  EXPECT_FALSE(ParseInteger("0758", &mode, 8));
  int port = 0;
  EXPECT_FALSE(ParseInteger("99999999999", &port));  // overflows int
}

}  // namespace
}  // namespace dsfs
