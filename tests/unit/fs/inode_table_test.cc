#include "fs/inode_table.h"

#include <gtest/gtest.h>

#include "fs/names.h"

namespace dsfs {
namespace {

NodeMeta File(const std::string& etag) {
  NodeMeta m;
  m.kind = NodeKind::kFile;
  m.etag = etag;
  return m;
}

TEST(InodeTable, StableIdsAndLookupCounts) {
  InodeTable t;
  InodeId peek = t.PeekId("a/b");
  InodeId id = t.Acquire("a/b", File("e"));
  EXPECT_EQ(id, peek);  // readdir's d_ino matches lookup's st_ino
  EXPECT_NE(id, kRootInode);
  EXPECT_EQ(t.Acquire("a/b", File("e")), id);
  EXPECT_EQ(t.Get(id)->lookups, 2u);
  t.Forget(id, 1);
  EXPECT_TRUE(t.Get(id).has_value());
  t.Forget(id, 1);
  EXPECT_FALSE(t.Get(id).has_value());
  EXPECT_EQ(t.size(), 1u);  // the root stays
  t.Forget(kRootInode, 5);
  EXPECT_TRUE(t.Get(kRootInode).has_value());
}

TEST(InodeTable, NewEtagIsANewNodeAndTheOldOneLivesOn) {
  InodeTable t;
  InodeId v1 = t.Acquire("f", File("e1"));
  EXPECT_EQ(t.Acquire("f", File("e1")), v1);
  InodeId v2 = t.Acquire("f", File("e2"));
  EXPECT_NE(v2, v1);
  EXPECT_EQ(t.PeekId("f"), v2);
  ASSERT_TRUE(t.Get(v1).has_value());  // still there for open handles
  EXPECT_EQ(t.Get(v1)->etag, "e1");
  t.Forget(v1, 2);
  EXPECT_FALSE(t.Get(v1).has_value());
  EXPECT_EQ(t.PeekId("f"), v2);  // forgetting the old node keeps the path's new one
  EXPECT_EQ(t.Acquire("f", File("e2")), v2);
  // A type change is a new node too.
  NodeMeta dir;
  dir.kind = NodeKind::kDir;
  EXPECT_NE(t.Acquire("f", dir), v2);
}

TEST(InodeTable, KernelCacheIsReusedForTheSameVersionOnly) {
  InodeTable t;
  InodeId id = t.Acquire("f", File("e"));
  EXPECT_FALSE(t.ReuseKernelCache(id, "e"));  // first open: nothing cached yet
  EXPECT_TRUE(t.ReuseKernelCache(id, "e"));
  EXPECT_FALSE(t.ReuseKernelCache(id, "e2"));
  EXPECT_TRUE(t.ReuseKernelCache(id, "e2"));
  t.DropKernelCache(id);
  EXPECT_FALSE(t.ReuseKernelCache(id, "e2"));
  EXPECT_FALSE(t.ReuseKernelCache(id + 1000, "e"));  // unknown node
}

TEST(InodeTable, RenameMovesASubtreeAndKeepsIds) {
  InodeTable t;
  NodeMeta dir;
  dir.kind = NodeKind::kDir;
  InodeId d = t.Acquire("d", dir);
  InodeId f = t.Acquire("d/f", File("e"));
  InodeId other = t.Acquire("dd/x", File("e"));
  InodeId old_dst = t.Acquire("n/f", File("z"));
  (void)old_dst;
  t.Rename("d", "n");
  EXPECT_EQ(t.Get(d)->path, "n");
  EXPECT_EQ(t.Get(f)->path, "n/f");
  EXPECT_EQ(t.Get(other)->path, "dd/x");  // "dd" is not under "d/"
  EXPECT_EQ(t.Acquire("n/f", File("e")), f);  // the replaced node lost its path
  EXPECT_EQ(t.Acquire("n", dir), d);
  EXPECT_NE(t.Acquire("d/f", File("e")), f);  // a new object at the old path: a new node
}

TEST(InodeTable, DetachSetEtagAndDirectoriesHaveNoVersion) {
  InodeTable t;
  InodeId f = t.Acquire("f", File("e1"));
  t.SetEtag("f", "e2");
  EXPECT_EQ(t.Get(f)->etag, "e2");
  EXPECT_EQ(t.Acquire("f", File("e2")), f);
  t.Detach("f");
  EXPECT_NE(t.Acquire("f", File("e2")), f);
  EXPECT_TRUE(t.Get(f).has_value());  // lives on for the kernel's lookups
  NodeMeta dir;
  dir.kind = NodeKind::kDir;
  dir.etag = "marker1";
  InodeId d = t.Acquire("d", dir);
  dir.etag = "marker2";  // the marker was rewritten (a chmod)
  EXPECT_EQ(t.Acquire("d", dir), d);
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
