#include "common/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace dsfs {
namespace {

TEST(Checksum, Xxh3KnownValues) {
  // Reference values of XXH3_64bits / XXH3_128bits with seed 0.
  EXPECT_EQ(Xxh3_64(""), 0x2D06800538D394C2ULL);
  EXPECT_EQ(Xxh3_64("a"), 0xE6C632B61E964E1FULL);
  Hash128 h = Xxh3_128("");
  EXPECT_EQ(h.high, 0x99AA06D3014798D8ULL);
  EXPECT_EQ(h.low, 0x6001C324468D497FULL);
}

TEST(Checksum, DetectsSingleBitFlip) {
  std::string data(4096, 'x');
  uint64_t before = Xxh3_64(data);
  data[1234] ^= 0x01;
  EXPECT_NE(Xxh3_64(data), before);
  data[1234] ^= 0x01;
  EXPECT_EQ(Xxh3_64(data), before);
}

TEST(Checksum, HexRoundTrip) {
  Hash128 h = Xxh3_128("some block identity");
  std::string hex = h.ToHex();
  ASSERT_EQ(hex.size(), 32u);
  Hash128 back;
  ASSERT_TRUE(Hash128::FromHex(hex, &back));
  EXPECT_EQ(back, h);
  EXPECT_EQ((Hash128{0x0123456789abcdefULL, 0xfedcba9876543210ULL}).ToHex(),
            "0123456789abcdeffedcba9876543210");
}

TEST(Checksum, FromHexRejectsBadInput) {
  Hash128 out;
  EXPECT_FALSE(Hash128::FromHex("", &out));
  EXPECT_FALSE(Hash128::FromHex("0123", &out));
  EXPECT_FALSE(Hash128::FromHex("0123456789ABCDEF0123456789abcdef", &out));  // uppercase
  EXPECT_FALSE(Hash128::FromHex("0123456789abcdef0123456789abcdeg", &out));
  EXPECT_FALSE(Hash128::FromHex("0123456789abcdef0123456789abcdef0", &out));
}

}  // namespace
}  // namespace dsfs
