#include "common/endian.h"

#include <gtest/gtest.h>

#include <string>

namespace dsfs {
namespace {

TEST(Endian, LittleEndianLayoutIsFixed) {
  // The block file header and the cache index are on disk: their byte
  // layout must not change with the host or the code.
  std::string s;
  PutU32Le(&s, 0x01020304u);
  PutU64Le(&s, 0x1122334455667788ull);
  EXPECT_EQ(s, std::string("\x04\x03\x02\x01\x88\x77\x66\x55\x44\x33\x22\x11", 12));
  EXPECT_EQ(GetU32Le(s.data()), 0x01020304u);
  EXPECT_EQ(GetU64Le(s.data() + 4), 0x1122334455667788ull);
}

TEST(Endian, BigEndianSortsLikeTheNumber) {
  std::string a, b;
  PutU64Be(&a, 255);
  PutU64Be(&b, 256);
  EXPECT_EQ(a, std::string("\0\0\0\0\0\0\0\xff", 8));
  EXPECT_LT(a, b);  // byte order = numeric order (RocksDB keys)
  EXPECT_EQ(GetU64Be(a.data()), 255u);
  EXPECT_EQ(GetU64Be(b.data()), 256u);
}

TEST(Endian, RoundTripsHighBitValues) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0x80}, ~uint64_t{0}, uint64_t{1} << 63}) {
    std::string le, be;
    PutU64Le(&le, v);
    PutU64Be(&be, v);
    ASSERT_EQ(le.size(), 8u);
    EXPECT_EQ(GetU64Le(le.data()), v);
    EXPECT_EQ(GetU64Be(be.data()), v);
  }
  std::string s;
  PutU32Le(&s, 0xffffffffu);
  EXPECT_EQ(GetU32Le(s.data()), 0xffffffffu);
}

}  // namespace
}  // namespace dsfs
