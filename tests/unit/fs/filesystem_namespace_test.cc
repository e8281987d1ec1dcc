// Namespace changes against MemoryStore: the objects they leave, the caches
// and inode table they update, and every failure path.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "backends/memory_store.h"
#include "common/clock.h"
#include "fs/attr.h"
#include "fs/filesystem.h"
#include "store_reader.h"

namespace dsfs {
namespace {

using testing::StoreReader;

class NamespaceTest : public ::testing::Test {
 protected:
  NamespaceTest() { Reset(); }

  void Reset(bool read_only = false) {
    FsConfig config;
    config.read_only = read_only;
    config.uid = 1000;
    config.gid = 1000;
    fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_);
  }

  Result<EntryReply> Walk(const std::string& path) {
    InodeId ino = kRootInode;
    EntryReply last;
    size_t start = 0;
    while (true) {
      size_t slash = path.find('/', start);
      DSFS_ASSIGN_OR_RETURN(last, fs_->Lookup(ino, path.substr(start, slash - start)));
      ino = last.ino;
      if (slash == std::string::npos) return last;
      start = slash + 1;
    }
  }
  InodeId Ino(const std::string& path) {
    auto e = Walk(path);
    EXPECT_TRUE(e.ok()) << path << ": " << e.status().ToString();
    return e.ok() ? e->ino : 0;
  }

  std::set<std::string> List(InodeId ino) {
    auto h = fs_->OpenDir(ino);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    std::set<std::string> names;
    if (!h.ok()) return names;
    auto r = fs_->ReadDir(*h, 2, 1000);
    EXPECT_TRUE(r.ok());
    for (auto& e : *r) names.insert(e.name);
    fs_->ReleaseDir(*h);
    return names;
  }

  bool Has(const std::string& key) { return store_.Head(key).ok(); }
  std::string Data(const std::string& key) {
    auto h = store_.Head(key);
    if (!h.ok()) return "<missing>";
    std::string out(h->size, '\0');
    GetRequest req{.key = key, .range = std::nullopt, .if_match = ""};
    auto got = store_.Get(req, out.data(), out.size());
    EXPECT_TRUE(got.ok());
    return out;
  }
  std::string Meta(const std::string& key, const std::string& name) {
    auto h = store_.Head(key);
    if (!h.ok() || !h->meta.count(name)) return "<none>";
    return h->meta.at(name);
  }
  std::set<std::string> Keys() {
    ListRequest req;
    req.max_keys = 100000;
    auto page = store_.List(req);
    std::set<std::string> out;
    for (auto& o : page->objects) out.insert(o.key);
    return out;
  }
  std::string ReadAll(uint64_t handle) {
    char buf[256];
    auto n = fs_->Read(handle, 0, sizeof(buf), buf);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? std::string(buf, *n) : "";
  }

  const Filesystem::Caller kCaller{7, 8};
  MemoryStore store_;
  StoreReader reader_{store_};
  ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(NamespaceTest, MkdirWritesAnS3fsMarkerAndIsListedAtOnce) {
  store_.PutObject("other", "x");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"other"}));  // the listing is cached now
  auto e = fs_->Mkdir(kRootInode, "d", 0750, kCaller);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->attr.st_mode, static_cast<mode_t>(S_IFDIR | 0750));
  EXPECT_EQ(e->attr.st_uid, 7u);
  auto head = store_.Head("d/");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 0u);
  EXPECT_EQ(head->content_type, "application/x-directory");
  EXPECT_EQ(head->meta.at("mode"), std::to_string(S_IFDIR | 0750));
  EXPECT_EQ(head->meta.at("uid"), "7");
  EXPECT_EQ(head->meta.at("gid"), "8");
  EXPECT_TRUE(head->meta.count("mtime") && head->meta.count("atime") && head->meta.count("ctime"));
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"d", "other"}));
  store_.ResetCounters();
  auto again = fs_->Lookup(kRootInode, "d");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ino, e->ino);
  EXPECT_EQ(store_.counters().head, 0);  // in the stat cache
  // Nested.
  ASSERT_TRUE(fs_->Mkdir(e->ino, "sub", 0700, kCaller).ok());
  EXPECT_TRUE(Has("d/sub/"));
  EXPECT_EQ(List(e->ino), (std::set<std::string>{"sub"}));
}

TEST_F(NamespaceTest, MkdirRefusesTakenAndBadNames) {
  store_.PutObject("f", "x");
  EXPECT_EQ(fs_->Mkdir(kRootInode, "f", 0755, kCaller).status().code(), StatusCode::kExists);
  ASSERT_TRUE(fs_->Mkdir(kRootInode, "d", 0755, kCaller).ok());
  EXPECT_EQ(fs_->Mkdir(kRootInode, "d", 0755, kCaller).status().code(), StatusCode::kExists);
  for (const char* bad : {"", ".", ".."}) {
    EXPECT_EQ(fs_->Mkdir(kRootInode, bad, 0755, kCaller).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(fs_->Mkdir(kRootInode, std::string("a\0b", 3), 0755, kCaller).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->Mkdir(kRootInode, std::string(256, 'a'), 0755, kCaller).status().code(),
            StatusCode::kNameTooLong);
  EXPECT_TRUE(fs_->Mkdir(kRootInode, std::string(255, 'a'), 0755, kCaller).ok());
  EXPECT_EQ(fs_->Symlink(kRootInode, std::string(256, 'b'), "t", kCaller).status().code(),
            StatusCode::kNameTooLong);
  EXPECT_EQ(fs_->Rename(kRootInode, "f", kRootInode, std::string(256, 'c'), 0).code(),
            StatusCode::kNameTooLong);
  EXPECT_EQ(Keys(), (std::set<std::string>{"f", "d/", std::string(255, 'a') + "/"}));
}

TEST_F(NamespaceTest, ReadOnlyMountRefusesEveryChange) {
  Reset(/*read_only=*/true);
  store_.PutObject("f", "x");
  store_.PutObject("d/", "");
  InodeId f = Ino("f");
  EXPECT_EQ(fs_->Mkdir(kRootInode, "n", 0755, kCaller).status().code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Rmdir(kRootInode, "d").code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Unlink(kRootInode, "f").code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Rename(kRootInode, "f", kRootInode, "g", 0).code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Symlink(kRootInode, "l", "f", kCaller).status().code(), StatusCode::kReadOnly);
  Filesystem::AttrChange chmod;
  chmod.mode = 0600;
  EXPECT_EQ(fs_->SetAttr(f, chmod).status().code(), StatusCode::kReadOnly);
  EXPECT_EQ(store_.counters().put + store_.counters().copy + store_.counters().del, 0);
}

TEST_F(NamespaceTest, RmdirNotEmptyEmptyAndLegacy) {
  ASSERT_TRUE(fs_->Mkdir(kRootInode, "d", 0755, kCaller).ok());
  store_.PutObject("d/f", "x");
  EXPECT_EQ(fs_->Rmdir(kRootInode, "d").code(), StatusCode::kNotEmpty);
  // A child directory (marker only) is a child too.
  store_.RemoveObject("d/f");
  store_.PutObject("d/sub/", "", {}, "application/x-directory");
  EXPECT_EQ(fs_->Rmdir(kRootInode, "d").code(), StatusCode::kNotEmpty);
  store_.RemoveObject("d/sub/");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"d"}));
  ASSERT_TRUE(fs_->Rmdir(kRootInode, "d").ok());
  EXPECT_FALSE(Has("d/"));
  EXPECT_EQ(fs_->Lookup(kRootInode, "d").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(List(kRootInode).empty());
  // Not a directory.
  store_.PutObject("f", "x");
  store_.PutObject("old", "", {}, "application/x-directory");
  clock_.Advance(std::chrono::seconds(6));  // the root's listing is cached
  EXPECT_EQ(fs_->Rmdir(kRootInode, "f").code(), StatusCode::kNotDirectory);
  // A legacy "old" object of directory type (s3fs before 1.70).
  ASSERT_TRUE(fs_->Rmdir(kRootInode, "old").ok());
  EXPECT_FALSE(Has("old"));
}

TEST_F(NamespaceTest, RmdirDeleteFailureKeepsTheDirectory) {
  ASSERT_TRUE(fs_->Mkdir(kRootInode, "d", 0755, kCaller).ok());
  store_.FailNext(StoreOp::kDelete, Status::Transient("503"));
  EXPECT_EQ(fs_->Rmdir(kRootInode, "d").code(), StatusCode::kTransient);
  EXPECT_TRUE(Has("d/"));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "d").ok());
  ASSERT_TRUE(fs_->Rmdir(kRootInode, "d").ok());
}

TEST_F(NamespaceTest, UnlinkDeletesAndDropsTheName) {
  store_.PutObject("f", "x");
  store_.PutObject("d/", "");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"d", "f"}));
  InodeId f = Ino("f");
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  EXPECT_FALSE(Has("f"));
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"d"}));
  // A new object at the name is a new node.
  store_.PutObject("f", "y");
  clock_.Advance(std::chrono::seconds(6));  // past the negative entry and the listing
  EXPECT_NE(Ino("f"), f);
  EXPECT_EQ(fs_->Unlink(kRootInode, "d").code(), StatusCode::kIsDirectory);
  EXPECT_EQ(fs_->Unlink(kRootInode, "none").code(), StatusCode::kNotFound);
}

TEST_F(NamespaceTest, UnlinkDeleteFailureIsReportedAndTheFileStays) {
  store_.PutObject("f", "x");
  store_.FailNext(StoreOp::kDelete, Status::Transient("503"));
  EXPECT_EQ(fs_->Unlink(kRootInode, "f").code(), StatusCode::kTransient);
  EXPECT_TRUE(Has("f"));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "f").ok());
}

TEST_F(NamespaceTest, UnlinkWhileOpenKeepsTheHandleReadableUntilLastClose) {
  store_.PutObject("f", "hello");
  InodeId f = Ino("f");
  auto h1 = fs_->Open(f, O_RDONLY);
  auto h2 = fs_->Open(f, O_RDONLY);
  ASSERT_TRUE(h1.ok() && h2.ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  // The name is gone at once, for lookups and listings.
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kNotFound);
  clock_.Advance(std::chrono::seconds(10));  // past every cache TTL: the store still has it
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(List(kRootInode).empty());
  EXPECT_EQ(ReadAll(h1->handle), "hello");
  fs_->Release(h1->handle);
  EXPECT_TRUE(Has("f"));  // one handle left
  EXPECT_EQ(ReadAll(h2->handle), "hello");
  fs_->Release(h2->handle);
  EXPECT_FALSE(Has("f"));
}

TEST_F(NamespaceTest, DeferredDeleteSparesANewObjectUnderTheName) {
  store_.PutObject("f", "old");
  auto h = fs_->Open(Ino("f"), O_RDONLY);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  store_.PutObject("f", "new");  // another client writes the name again
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "f").ok());  // the new version is not hidden
  fs_->Release(h->handle);
  EXPECT_EQ(Data("f"), "new");
}

TEST_F(NamespaceTest, RenameFileKeepsMetadataAndTheInode) {
  store_.PutObject("a", "bytes", {{"mode", std::to_string(S_IFREG | 0600)}, {"custom", "c"}});
  ASSERT_TRUE(fs_->Mkdir(kRootInode, "d", 0755, kCaller).ok());
  InodeId a = Ino("a");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"a", "d"}));
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", Ino("d"), "b", 0).ok());
  EXPECT_FALSE(Has("a"));
  EXPECT_EQ(Data("d/b"), "bytes");
  EXPECT_EQ(Meta("d/b", "mode"), std::to_string(S_IFREG | 0600));
  EXPECT_EQ(Meta("d/b", "custom"), "c");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"d"}));
  EXPECT_EQ(List(Ino("d")), (std::set<std::string>{"b"}));
  EXPECT_EQ(fs_->Lookup(kRootInode, "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ino("d/b"), a);  // the node moved
  auto h = fs_->Open(a, O_RDONLY);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(ReadAll(h->handle), "bytes");
  fs_->Release(h->handle);
  auto st = fs_->GetAttr(a);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0600));
}

// Objects over the single-copy limit (S3: 5 GiB; lowered here) are
// renamed and re-attributed by a multipart copy, with their metadata.
TEST_F(NamespaceTest, LargeObjectsAreCopiedPartByPart) {
  FsConfig config;
  config.read_only = false;
  config.uid = config.gid = 1000;
  WriteOptions write;
  write.max_single_copy = 1000;
  write.multipart_size = 5 << 20;
  fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_, write);
  const std::string big(12 << 20, 'x');
  store_.PutObject("big", big, {{"mode", std::to_string(S_IFREG | 0640)}});
  store_.ResetCounters();
  ASSERT_TRUE(fs_->Rename(kRootInode, "big", kRootInode, "moved", 0).ok());
  EXPECT_FALSE(Has("big"));
  EXPECT_EQ(Data("moved"), big);
  EXPECT_EQ(Meta("moved", "mode"), std::to_string(S_IFREG | 0640));
  EXPECT_EQ(store_.counters().copy, 0);
  EXPECT_EQ(store_.counters().upload_part, 3);
  EXPECT_EQ(store_.counters().complete, 1);
  // chmod: a multipart copy onto itself with the new mode.
  Filesystem::AttrChange chmod;
  chmod.mode = 0600;
  auto changed = fs_->SetAttr(Ino("moved"), chmod);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(Meta("moved", "mode"), std::to_string(S_IFREG | 0600));
  EXPECT_EQ(Data("moved"), big);
  EXPECT_EQ(store_.counters().complete, 2);
  EXPECT_TRUE(store_.PendingUploads().empty());
}

TEST_F(NamespaceTest, RenameReplacesAFileAndOntoItselfDoesNothing) {
  store_.PutObject("a", "new");
  store_.PutObject("b", "old");
  store_.ResetCounters();
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "a", 0).ok());
  EXPECT_EQ(store_.counters().copy + store_.counters().del, 0);
  EXPECT_EQ(fs_->Rename(kRootInode, "a", kRootInode, "b", Filesystem::kRenameNoReplace).code(),
            StatusCode::kExists);
  EXPECT_EQ(fs_->Rename(kRootInode, "a", kRootInode, "b", Filesystem::kRenameExchange).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Data("b"), "old");
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).ok());
  EXPECT_EQ(Data("b"), "new");
  EXPECT_FALSE(Has("a"));
  ASSERT_TRUE(fs_->Rename(kRootInode, "b", kRootInode, "c", Filesystem::kRenameNoReplace).ok());
  EXPECT_EQ(Keys(), (std::set<std::string>{"c"}));
}

TEST_F(NamespaceTest, RenameTypeMismatches) {
  store_.PutObject("f", "x");
  store_.PutObject("d/", "");
  store_.PutObject("d/in", "y");
  store_.PutObject("e/", "");
  EXPECT_EQ(fs_->Rename(kRootInode, "f", kRootInode, "d", 0).code(), StatusCode::kIsDirectory);
  EXPECT_EQ(fs_->Rename(kRootInode, "d", kRootInode, "f", 0).code(), StatusCode::kNotDirectory);
  EXPECT_EQ(fs_->Rename(kRootInode, "e", kRootInode, "d", 0).code(), StatusCode::kNotEmpty);
  EXPECT_EQ(fs_->Rename(kRootInode, "d", Ino("d"), "x", 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->Rename(kRootInode, "none", kRootInode, "x", 0).code(), StatusCode::kNotFound);
  EXPECT_EQ(Keys(), (std::set<std::string>{"f", "d/", "d/in", "e/"}));
  // Onto an empty directory: replaced.
  ASSERT_TRUE(fs_->Rename(kRootInode, "d", kRootInode, "e", 0).ok());
  EXPECT_EQ(Keys(), (std::set<std::string>{"f", "e/", "e/in"}));
}

TEST_F(NamespaceTest, RenameFileCopyFailureLeavesTheSource) {
  store_.PutObject("a", "x");
  store_.FailNext(StoreOp::kCopy, Status::Transient("503"));
  EXPECT_EQ(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).code(), StatusCode::kTransient);
  EXPECT_EQ(Keys(), (std::set<std::string>{"a"}));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "a").ok());
  EXPECT_EQ(fs_->Lookup(kRootInode, "b").status().code(), StatusCode::kNotFound);
}

TEST_F(NamespaceTest, RenameFileDeleteFailureLeavesBothNames) {
  store_.PutObject("a", "x");
  store_.FailNext(StoreOp::kDelete, Status::Transient("503"));
  EXPECT_EQ(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).code(), StatusCode::kIoError);
  EXPECT_EQ(Keys(), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "a").ok());
  EXPECT_TRUE(fs_->Lookup(kRootInode, "b").ok());
}

TEST_F(NamespaceTest, RenameOfAnOpenFileKeepsItsHandleReadable) {
  store_.PutObject("a", "hello");
  InodeId a = Ino("a");
  auto h = fs_->Open(a, O_RDONLY);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).ok());
  EXPECT_EQ(fs_->Lookup(kRootInode, "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"b"}));
  EXPECT_EQ(ReadAll(h->handle), "hello");
  fs_->Release(h->handle);
  EXPECT_EQ(Keys(), (std::set<std::string>{"b"}));
}

TEST_F(NamespaceTest, RenameDirectoryMovesEveryKey) {
  store_.PutObject("src/", "", {{"mode", std::to_string(S_IFDIR | 0700)}},
                   "application/x-directory");
  store_.PutObject("src/a", "A", {{"mode", std::to_string(S_IFREG | 0640)}});
  store_.PutObject("src/sub/", "", {}, "application/x-directory");
  store_.PutObject("src/sub/b", "B");
  store_.PutObject("src/empty/", "", {}, "application/x-directory");
  store_.PutObject("srcfile", "not inside");
  InodeId sub_b = Ino("src/sub/b");
  InodeId src = Ino("src");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"src", "srcfile"}));
  ASSERT_TRUE(fs_->Rename(kRootInode, "src", kRootInode, "dst", 0).ok());
  EXPECT_EQ(Keys(), (std::set<std::string>{"dst/", "dst/a", "dst/sub/", "dst/sub/b", "dst/empty/",
                                           "srcfile"}));
  EXPECT_EQ(Meta("dst/a", "mode"), std::to_string(S_IFREG | 0640));
  EXPECT_EQ(Meta("dst/", "mode"), std::to_string(S_IFDIR | 0700));
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"dst", "srcfile"}));
  EXPECT_EQ(Ino("dst"), src);
  EXPECT_EQ(Ino("dst/sub/b"), sub_b);
  EXPECT_EQ(List(Ino("dst")), (std::set<std::string>{"a", "sub", "empty"}));
  EXPECT_EQ(fs_->Lookup(kRootInode, "src").status().code(), StatusCode::kNotFound);
  auto h = fs_->Open(sub_b, O_RDONLY);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(ReadAll(h->handle), "B");
  fs_->Release(h->handle);
}

TEST_F(NamespaceTest, RenameOfAnImplicitDirectoryGivesTheNewOneAMarker) {
  store_.PutObject("imp/x", "X");
  ASSERT_TRUE(fs_->Rename(kRootInode, "imp", kRootInode, "moved", 0).ok());
  EXPECT_EQ(Keys(), (std::set<std::string>{"moved/", "moved/x"}));
  auto head = store_.Head("moved/");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->content_type, "application/x-directory");
}

TEST_F(NamespaceTest, RenameDirectoryCopyFailurePartWayLosesNothing) {
  const std::set<std::string> sources = {"src/", "src/a", "src/b", "src/c", "src/d"};
  for (const auto& k : sources) store_.PutObject(k, k);
  int copies = 0;
  store_.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kCopy && ++copies == 3) {
      store_.FailNext(StoreOp::kCopy, Status::Transient("503"));
    }
  });
  Status s = fs_->Rename(kRootInode, "src", kRootInode, "dst", 0);
  store_.SetHook(nullptr);
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  EXPECT_NE(s.message().find("still at its old name"), std::string::npos) << s.ToString();
  // Every source is still there, with its bytes; two copies were made.
  for (const auto& k : sources) EXPECT_EQ(Data(k), k);
  EXPECT_EQ(Keys().size(), sources.size() + 2);
  EXPECT_EQ(store_.counters().del, 0);
  // The old tree still answers; the copies made so far show too.
  EXPECT_EQ(List(Ino("src")), (std::set<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(fs_->Lookup(kRootInode, "dst").ok());
}

TEST_F(NamespaceTest, RenameDirectoryDeleteFailureLeavesEachObjectAtAName) {
  const std::vector<std::string> rel = {"", "a", "b", "c"};
  for (const auto& r : rel) store_.PutObject("src/" + r, "v" + r);
  int deletes = 0;
  store_.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kDelete && ++deletes == 2) {
      store_.FailNext(StoreOp::kDelete, Status::Transient("503"));
    }
  });
  Status s = fs_->Rename(kRootInode, "src", kRootInode, "dst", 0);
  store_.SetHook(nullptr);
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  for (const auto& r : rel) {
    EXPECT_EQ(Data("dst/" + r), "v" + r);  // every object is at its new name
  }
  EXPECT_EQ(Keys().size(), rel.size() + 3);  // one source deleted, three left
}

TEST_F(NamespaceTest, SymlinkIsAnObjectWithTheTargetAsBody) {
  auto e = fs_->Symlink(kRootInode, "ln", "d/target.txt", kCaller);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->attr.st_mode, static_cast<mode_t>(S_IFLNK | 0777));
  EXPECT_EQ(e->attr.st_size, 12);
  EXPECT_EQ(Data("ln"), "d/target.txt");
  EXPECT_EQ(Meta("ln", "mode"), "41471");
  EXPECT_EQ(Meta("ln", "uid"), "7");
  auto t = fs_->ReadLink(e->ino);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "d/target.txt");
  EXPECT_EQ(List(kRootInode), (std::set<std::string>{"ln"}));
  EXPECT_EQ(fs_->Symlink(kRootInode, "ln", "x", kCaller).status().code(), StatusCode::kExists);
  EXPECT_EQ(fs_->Symlink(kRootInode, "long", std::string(4096, 'x'), kCaller).status().code(),
            StatusCode::kNameTooLong);
  // A fresh mount reads it back the same way.
  Reset();
  auto again = fs_->Lookup(kRootInode, "ln");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->attr.st_mode, static_cast<mode_t>(S_IFLNK | 0777));
  EXPECT_EQ(again->attr.st_uid, 7u);
}

TEST_F(NamespaceTest, HardLinksArePermissionErrors) {
  store_.PutObject("f", "x");
  EXPECT_EQ(fs_->Link(Ino("f"), kRootInode, "g").code(), StatusCode::kNotPermitted);
  EXPECT_EQ(ToErrno(fs_->Link(Ino("f"), kRootInode, "g")), EPERM);
  EXPECT_EQ(Keys(), (std::set<std::string>{"f"}));
}

TEST_F(NamespaceTest, SetAttrCopiesOntoItselfWithNewMetadata) {
  store_.PutObject("f", "bytes", {{"mode", std::to_string(S_IFREG | 0644)}, {"custom", "c"}});
  InodeId f = Ino("f");
  Filesystem::AttrChange c;
  c.mode = 0600;
  c.uid = 42;
  c.gid = 43;
  c.mtime = timespec{1700000002, 987654321};
  c.atime = timespec{1700000001, 5};
  store_.ResetCounters();
  auto st = fs_->SetAttr(f, c);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(store_.counters().copy, 1);
  EXPECT_EQ(store_.counters().put, 0);
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0600));
  EXPECT_EQ(st->st_uid, 42u);
  EXPECT_EQ(st->st_mtim.tv_sec, 1700000002);
  EXPECT_EQ(st->st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(Data("f"), "bytes");
  EXPECT_EQ(Meta("f", "mode"), std::to_string(S_IFREG | 0600));
  EXPECT_EQ(Meta("f", "uid"), "42");
  EXPECT_EQ(Meta("f", "gid"), "43");
  EXPECT_EQ(Meta("f", "mtime"), "1700000002.987654321");
  EXPECT_EQ(Meta("f", "atime"), "1700000001.000000005");
  EXPECT_EQ(Meta("f", "custom"), "c");
  EXPECT_NE(Meta("f", "ctime"), "<none>");
  // The same node, its new attributes at once (no request).
  store_.ResetCounters();
  auto e = fs_->Lookup(kRootInode, "f");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ino, f);
  EXPECT_EQ(e->attr.st_mode, static_cast<mode_t>(S_IFREG | 0600));
  auto attr = fs_->GetAttr(f);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(store_.counters().head, 0);
  auto h = fs_->Open(f, O_RDONLY);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(ReadAll(h->handle), "bytes");
  fs_->Release(h->handle);
  // Only what was asked changes.
  Filesystem::AttrChange only_mode;
  only_mode.mode = 0640;
  ASSERT_TRUE(fs_->SetAttr(f, only_mode).ok());
  EXPECT_EQ(Meta("f", "uid"), "42");
  EXPECT_EQ(Meta("f", "mtime"), "1700000002.987654321");
}

TEST_F(NamespaceTest, SetAttrOfDirectories) {
  store_.PutObject("imp/x", "X");
  store_.PutObject("m/", "", {{"mode", "493"}}, "application/x-directory");
  Filesystem::AttrChange c;
  c.mode = 0700;
  ASSERT_TRUE(fs_->SetAttr(Ino("imp"), c).ok());
  auto head = store_.Head("imp/");  // an implicit directory gets a marker
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->content_type, "application/x-directory");
  EXPECT_EQ(head->meta.at("mode"), std::to_string(S_IFDIR | 0700));
  ASSERT_TRUE(fs_->SetAttr(Ino("m"), c).ok());
  EXPECT_EQ(Meta("m/", "mode"), std::to_string(S_IFDIR | 0700));
  EXPECT_EQ(store_.Head("m/")->content_type, "application/x-directory");
  auto st = fs_->GetAttr(Ino("m"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFDIR | 0700));
  EXPECT_EQ(fs_->SetAttr(kRootInode, c).status().code(), StatusCode::kNotPermitted);
}

TEST_F(NamespaceTest, SetAttrOfASymlinkKeepsItsMode) {
  ASSERT_TRUE(fs_->Symlink(kRootInode, "ln", "t", kCaller).ok());
  Filesystem::AttrChange c;
  c.uid = 5;
  ASSERT_TRUE(fs_->SetAttr(Ino("ln"), c).ok());
  EXPECT_EQ(Meta("ln", "mode"), "41471");
  EXPECT_EQ(Meta("ln", "uid"), "5");
  EXPECT_EQ(Data("ln"), "t");
}

TEST_F(NamespaceTest, SetAttrCopyFailureChangesNothing) {
  store_.PutObject("f", "x", {{"mode", std::to_string(S_IFREG | 0644)}});
  InodeId f = Ino("f");
  store_.FailNext(StoreOp::kCopy, Status::Transient("503"));
  Filesystem::AttrChange c;
  c.mode = 0600;
  EXPECT_EQ(fs_->SetAttr(f, c).status().code(), StatusCode::kTransient);
  EXPECT_EQ(Meta("f", "mode"), std::to_string(S_IFREG | 0644));
  auto st = fs_->GetAttr(f);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0644));
}

}  // namespace
}  // namespace dsfs
