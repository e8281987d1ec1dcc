#include "fs/inode_table.h"

#include <gtest/gtest.h>

#include "fs/names.h"

namespace dsfs {
namespace {

TEST(InodeTable, StableIdsAndLookupCounts) {
  InodeTable t;
  InodeId peek = t.PeekId("a/b");
  InodeId id = t.Acquire("a/b", NodeKind::kFile);
  EXPECT_EQ(id, peek);  // readdir's d_ino matches lookup's st_ino
  EXPECT_NE(id, kRootInode);
  EXPECT_EQ(t.Acquire("a/b", NodeKind::kFile), id);
  EXPECT_EQ(t.Get(id)->lookups, 2u);
  t.Forget(id, 1);
  EXPECT_TRUE(t.Get(id).has_value());
  t.Forget(id, 1);
  EXPECT_FALSE(t.Get(id).has_value());
  EXPECT_EQ(t.size(), 1u);  // the root stays
  t.Forget(kRootInode, 5);
  EXPECT_TRUE(t.Get(kRootInode).has_value());
}

TEST(InodeTable, KernelCacheEtag) {
  InodeTable t;
  InodeId id = t.Acquire("f", NodeKind::kFile);
  EXPECT_EQ(t.SwapKernelCacheEtag(id, "e1"), "");
  EXPECT_EQ(t.SwapKernelCacheEtag(id, "e2"), "e1");
}

TEST(Names, PosixNameRules) {
  EXPECT_TRUE(IsValidName("model.safetensors"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("."));
  EXPECT_FALSE(IsValidName(".."));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
  EXPECT_TRUE(IsValidName(std::string(255, 'x')));
  EXPECT_FALSE(IsValidName(std::string(256, 'x')));
  EXPECT_TRUE(IsValidKeyPath("a/b/c"));
  EXPECT_TRUE(IsValidKeyPath("a/b/"));
  EXPECT_FALSE(IsValidKeyPath("a//b"));
  EXPECT_FALSE(IsValidKeyPath("a/../b"));
  EXPECT_FALSE(IsValidKeyPath("/a"));
}

}  // namespace
}  // namespace dsfs
