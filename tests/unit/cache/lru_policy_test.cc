#include "cache/lru_policy.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

BlockId Id(uint64_t n) { return BlockId{0, n}; }

std::vector<uint64_t> VictimIds(const LruPolicy& p, uint64_t bytes, const BlockId* keep = nullptr) {
  std::vector<uint64_t> out;
  for (const auto& v : p.PickVictims(bytes, keep)) out.push_back(v.id.low);
  return out;
}

TEST(LruPolicy, OldestFirstAndTouchMovesToBack) {
  LruPolicy p;
  for (uint64_t i = 1; i <= 4; ++i) p.Add(Id(i), 10, i);
  EXPECT_EQ(p.total_bytes(), 40u);
  EXPECT_EQ(VictimIds(p, 25), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(p.Touch(Id(1), 5));
  EXPECT_EQ(VictimIds(p, 25), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(VictimIds(p, 0), (std::vector<uint64_t>{}));
  EXPECT_EQ(VictimIds(p, 1000), (std::vector<uint64_t>{2, 3, 4, 1}));
}

TEST(LruPolicy, KeepIsNeverAVictim) {
  LruPolicy p;
  p.Add(Id(1), 10, 1);
  p.Add(Id(2), 10, 2);
  BlockId keep = Id(1);
  EXPECT_EQ(VictimIds(p, 15, &keep), (std::vector<uint64_t>{2}));
}

TEST(LruPolicy, RemoveAndReAdd) {
  LruPolicy p;
  p.Add(Id(1), 10, 1);
  p.Add(Id(2), 20, 2);
  auto e = p.Remove(Id(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->bytes, 10u);
  EXPECT_FALSE(p.Remove(Id(1)).has_value());
  EXPECT_FALSE(p.Touch(Id(1), 9));
  EXPECT_EQ(p.total_bytes(), 20u);
  p.Add(Id(2), 5, 3);  // replace: size and recency updated
  EXPECT_EQ(p.total_bytes(), 5u);
  EXPECT_EQ(p.size(), 1u);
}

TEST(LruPolicy, AddIfAbsentKeepsNewerKnowledge) {
  LruPolicy p;
  p.Add(Id(1), 10, 100);
  EXPECT_FALSE(p.AddIfAbsent(Id(1), 99, 1));
  EXPECT_EQ(p.Find(Id(1))->seq, 100u);
  EXPECT_EQ(p.Find(Id(1))->bytes, 10u);
  EXPECT_TRUE(p.AddIfAbsent(Id(2), 5, 1));
  EXPECT_EQ(p.total_bytes(), 15u);
}

TEST(LruPolicy, OlderTouchIgnoredAndTiesBrokenById) {
  LruPolicy p;
  p.Add(Id(1), 1, 50);
  EXPECT_TRUE(p.Touch(Id(1), 10));
  EXPECT_EQ(p.Find(Id(1))->seq, 50u);
  // Rebuilt entries all get seq 0; they still order (by id) and count.
  p.Add(Id(3), 1, 0);
  p.Add(Id(2), 1, 0);
  EXPECT_EQ(VictimIds(p, 3), (std::vector<uint64_t>{2, 3, 1}));
  EXPECT_EQ(p.Ids().size(), 3u);
}

}  // namespace
}  // namespace dsfs
