// Core tests: Filesystem against MemoryStore, no mount. Request counts
// prove what is cached.
#include "fs/filesystem.h"
#include "store_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "backends/memory_store.h"
#include "common/clock.h"

namespace dsfs {
namespace {

// The reader under test: one ranged GET per read, If-Match the pinned ETag
// (no block cache, so the store's counters show every read).
using testing::StoreReader;

class FilesystemTest : public ::testing::Test {
 protected:
  FilesystemTest() { Reset(FsConfig{}); }

  void Reset(FsConfig config) {
    config.uid = 1000;
    config.gid = 1000;
    config.implicit_dir_mtime_sec = 1234;
    fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_);
  }

  // Resolves a slash-separated path from the root through Lookup.
  Result<EntryReply> Walk(const std::string& path) {
    InodeId ino = kRootInode;
    EntryReply last;
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      std::string name = path.substr(start, slash - start);
      DSFS_ASSIGN_OR_RETURN(last, fs_->Lookup(ino, name));
      ino = last.ino;
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return last;
  }

  std::vector<std::string> List(InodeId ino) {
    auto h = fs_->OpenDir(ino);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    std::vector<std::string> names;
    uint64_t off = 0;
    while (true) {
      auto r = fs_->ReadDir(*h, off, 100);
      EXPECT_TRUE(r.ok());
      if (r->empty()) break;
      for (auto& e : *r) names.push_back(e.name);
      off += r->size();
    }
    fs_->ReleaseDir(*h);
    return names;
  }

  std::string ReadAll(InodeId ino) {
    auto h = fs_->Open(ino, O_RDONLY);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    std::string out;
    char buf[7];  // odd size: reads cross chunk boundaries
    while (true) {
      auto n = fs_->Read(h->handle, out.size(), sizeof(buf), buf);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      out.append(buf, *n);
    }
    fs_->Release(h->handle);
    return out;
  }

  MemoryStore store_;
  StoreReader reader_{store_};
  ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FilesystemTest, LookupFileThenCachedStatMakesNoSecondHead) {
  store_.PutObject("hello.txt", "hello");
  auto e = fs_->Lookup(kRootInode, "hello.txt");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(S_ISREG(e->attr.st_mode));
  EXPECT_EQ(e->attr.st_size, 5);
  EXPECT_EQ(store_.counters().head, 1);
  ASSERT_TRUE(fs_->GetAttr(e->ino).ok());
  ASSERT_TRUE(fs_->Lookup(kRootInode, "hello.txt").ok());
  EXPECT_EQ(store_.counters().head, 1);  // served from the stat cache
  clock_.Advance(std::chrono::seconds(6));  // past stat_ttl (5 s)
  // The node is one object version: its getattr never needs the store.
  ASSERT_TRUE(fs_->GetAttr(e->ino).ok());
  EXPECT_EQ(store_.counters().head, 1);
  // A lookup of the name asks again (a new version would get a new node).
  ASSERT_TRUE(fs_->Lookup(kRootInode, "hello.txt").ok());
  EXPECT_EQ(store_.counters().head, 2);
}

TEST_F(FilesystemTest, GetAttrOfAnOpenFileMakesNoRequestEvenWhenTheStoreFails) {
  store_.PutObject("w.safetensors", "weights");
  auto e = fs_->Lookup(kRootInode, "w.safetensors");
  ASSERT_TRUE(e.ok());
  auto h = fs_->Open(e->ino, O_RDONLY);
  ASSERT_TRUE(h.ok());
  clock_.Advance(std::chrono::seconds(60));
  store_.FailNext(StoreOp::kHead, Status::Unavailable("OBS down"), 100);
  store_.ResetCounters();
  auto attr = fs_->GetAttr(e->ino);
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();
  EXPECT_EQ(attr->st_size, 7);
  EXPECT_EQ(store_.counters().head, 0);
  fs_->Release(h->handle);
}

TEST_F(FilesystemTest, NegativeEntryMakesNoSecondRequestWithinTtl) {
  auto e = fs_->Lookup(kRootInode, "missing");
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  auto c = store_.counters();
  EXPECT_EQ(c.head, 1);
  EXPECT_EQ(c.list, 1);
  EXPECT_EQ(fs_->Lookup(kRootInode, "missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.counters().head + store_.counters().list, 2);
  store_.PutObject("missing", "now here");
  clock_.Advance(std::chrono::milliseconds(1100));  // past negative_ttl (1 s)
  EXPECT_TRUE(fs_->Lookup(kRootInode, "missing").ok());
}

TEST_F(FilesystemTest, StoreErrorIsNotCachedAsNegative) {
  store_.PutObject("f", "x");
  store_.FailNext(StoreOp::kHead, Status::Transient("503"));
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kTransient);
  EXPECT_TRUE(fs_->Lookup(kRootInode, "f").ok());
}

TEST_F(FilesystemTest, ImplicitAndMarkerDirectories) {
  store_.PutObject("a/b/c.txt", "abc");
  store_.PutObject("d/", "", {{"mode", std::to_string(S_IFDIR | 0750)}, {"uid", "7"}});
  auto a = Walk("a");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(S_ISDIR(a->attr.st_mode));
  EXPECT_EQ(a->attr.st_mode & 0777, 0755u);
  EXPECT_EQ(a->attr.st_mtim.tv_sec, 1234);
  auto c = Walk("a/b/c.txt");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->attr.st_size, 3);
  auto d = Walk("d");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(S_ISDIR(d->attr.st_mode));
  EXPECT_EQ(d->attr.st_mode & 0777, 0750u);
  EXPECT_EQ(d->attr.st_uid, 7u);
  EXPECT_TRUE(List(d->ino).size() == 2);  // only "." and ".."
  EXPECT_EQ(List(kRootInode), (std::vector<std::string>{".", "..", "a", "d"}));
}

TEST_F(FilesystemTest, MarkerMetadataAppliesWhenTheListingFoundTheDirectory) {
  store_.PutObject("dm/", "", {{"mode", std::to_string(S_IFDIR | 0750)}, {"gid", "9"}});
  store_.PutObject("dm/f", "x");
  store_.PutObject("implicit/f", "x");
  List(kRootInode);  // the lookups below are answered with the listing as a hint
  auto dm = Walk("dm");
  ASSERT_TRUE(dm.ok());
  EXPECT_EQ(dm->attr.st_mode, static_cast<mode_t>(S_IFDIR | 0750));
  EXPECT_EQ(dm->attr.st_gid, 9u);
  auto implicit = Walk("implicit");
  ASSERT_TRUE(implicit.ok());
  EXPECT_EQ(implicit->attr.st_mode, static_cast<mode_t>(S_IFDIR | 0755));
}

TEST_F(FilesystemTest, ReadDirTypeIsUnknownForFilesUntilStatted) {
  store_.PutObject("link", "f", {{"mode", std::to_string(S_IFLNK | 0777)}});
  store_.PutObject("d/x", "x");
  auto types = [&] {
    std::map<std::string, mode_t> out;
    auto h = fs_->OpenDir(kRootInode);
    auto entries = fs_->ReadDir(*h, 0, 100);
    for (auto& e : *entries) out[e.name] = e.type;
    fs_->ReleaseDir(*h);
    return out;
  };
  auto before = types();
  EXPECT_EQ(before["link"], 0u);  // a listing cannot know it is a symlink
  EXPECT_EQ(before["d"], static_cast<mode_t>(S_IFDIR));
  ASSERT_TRUE(Walk("link").ok());
  EXPECT_EQ(types()["link"], static_cast<mode_t>(S_IFLNK));
}

TEST_F(FilesystemTest, S3fsMetadataHeaders) {
  store_.PutObject("f", "data",
                   {{"mode", std::to_string(S_IFREG | 0640)},
                    {"uid", "1001"},
                    {"gid", "1002"},
                    {"mtime", "1600000000"}});
  auto e = Walk("f");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->attr.st_mode, static_cast<mode_t>(S_IFREG | 0640));
  EXPECT_EQ(e->attr.st_uid, 1001u);
  EXPECT_EQ(e->attr.st_gid, 1002u);
  EXPECT_EQ(e->attr.st_mtim.tv_sec, 1600000000);
}

TEST_F(FilesystemTest, UidGidUmaskOptionsOverride) {
  FsConfig config;
  config.uid_set = config.gid_set = config.umask_set = true;
  config.umask = 0077;
  Reset(config);
  store_.PutObject("f", "data", {{"mode", std::to_string(S_IFREG | 0664)}, {"uid", "5"}});
  auto e = Walk("f");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->attr.st_mode & 0777, 0600u);
  EXPECT_EQ(e->attr.st_uid, 1000u);  // uid= wins over the header
}

TEST_F(FilesystemTest, SymlinkObjects) {
  store_.PutObject("link", "target/file", {{"mode", std::to_string(S_IFLNK | 0777)}});
  auto e = Walk("link");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(S_ISLNK(e->attr.st_mode));
  auto t = fs_->ReadLink(e->ino);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "target/file");
  store_.PutObject("plain", "x");
  EXPECT_EQ(fs_->ReadLink(Walk("plain")->ino).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FilesystemTest, ReadDirSkipsNamesThatCannotBePosixAndFileWinsClash) {
  store_.PutObject("ok.txt", "1");
  store_.PutObject("../escape", "x");
  store_.PutObject("./dot", "x");
  store_.PutObject("a//b", "x");
  store_.PutObject(std::string(300, 'n'), "x");
  store_.PutObject("old_$folder$", "");
  store_.PutObject("both", "file");
  store_.PutObject("both/child", "x");
  // "a//b" makes "a" a directory; its empty-named child is what is hidden.
  EXPECT_EQ(List(kRootInode), (std::vector<std::string>{".", "..", "a", "both", "ok.txt"}));
  EXPECT_EQ(metrics_.GetCounter("dsfs_fs_skipped_keys_total").value(), 3u);
  EXPECT_EQ(List(Walk("a")->ino), (std::vector<std::string>{".", ".."}));
  EXPECT_EQ(metrics_.GetCounter("dsfs_fs_skipped_keys_total").value(), 4u);
  auto both = Walk("both");
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(S_ISREG(both->attr.st_mode));
  EXPECT_EQ(fs_->Lookup(kRootInode, "..").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Lookup(kRootInode, std::string(300, 'n')).status().code(),
            StatusCode::kNameTooLong);
}

TEST_F(FilesystemTest, ListingPaginatesAndAnswersLookups) {
  for (int i = 0; i < 2500; ++i) store_.PutObject("big/" + std::to_string(10000 + i), "x");
  auto dir = Walk("big");
  ASSERT_TRUE(dir.ok());
  store_.ResetCounters();
  auto names = List(dir->ino);
  EXPECT_EQ(names.size(), 2502u);
  EXPECT_EQ(store_.counters().list, 3);  // 1000 + 1000 + 500
  // A fresh listing answers "does not exist" without a request.
  EXPECT_EQ(fs_->Lookup(dir->ino, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.counters().head + store_.counters().list, 3);
}

TEST_F(FilesystemTest, PrefixLimitsTheMount) {
  FsConfig config;
  config.prefix = "models/";
  Reset(config);
  store_.PutObject("models/a.bin", "A");
  store_.PutObject("other/b.bin", "B");
  EXPECT_EQ(List(kRootInode), (std::vector<std::string>{".", "..", "a.bin"}));
  EXPECT_TRUE(Walk("a.bin").ok());
  EXPECT_EQ(Walk("other").status().code(), StatusCode::kNotFound);
}

TEST_F(FilesystemTest, ReadsExactBytes) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7);
  store_.PutObject("f", data);
  EXPECT_EQ(ReadAll(Walk("f")->ino), data);
  store_.PutObject("empty", "");
  EXPECT_EQ(ReadAll(Walk("empty")->ino), "");
}

TEST_F(FilesystemTest, WritesAreRefusedReadOnly) {
  FsConfig ro;
  ro.read_only = true;  // -o ro (rw is the default)
  Reset(ro);
  store_.PutObject("f", "x");
  auto e = Walk("f");
  EXPECT_EQ(fs_->Open(e->ino, O_WRONLY).status().code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Open(e->ino, O_RDWR).status().code(), StatusCode::kReadOnly);
  EXPECT_EQ(fs_->Open(e->ino, O_RDONLY | O_TRUNC).status().code(), StatusCode::kReadOnly);
  EXPECT_EQ(ToErrno(fs_->ReadOnlyError()), EROFS);
  EXPECT_TRUE(fs_->StatFs()->f_flag & ST_RDONLY);
}

TEST_F(FilesystemTest, OpenDirectoryIsEisdirAndOpendirFileIsEnotdir) {
  store_.PutObject("d/f", "x");
  EXPECT_EQ(fs_->Open(Walk("d")->ino, O_RDONLY).status().code(), StatusCode::kIsDirectory);
  EXPECT_EQ(fs_->OpenDir(Walk("d/f")->ino).status().code(), StatusCode::kNotDirectory);
  EXPECT_EQ(fs_->Lookup(Walk("d/f")->ino, "x").status().code(), StatusCode::kNotDirectory);
}

TEST_F(FilesystemTest, ChangedObjectGivesStaleAndKeepCacheFollowsEtag) {
  store_.PutObject("f", "version one");
  auto e = Walk("f");
  auto h1 = fs_->Open(e->ino, O_RDONLY);
  ASSERT_TRUE(h1.ok());
  EXPECT_FALSE(h1->keep_cache);  // first open: nothing cached yet
  fs_->Release(h1->handle);
  auto h2 = fs_->Open(e->ino, O_RDONLY);
  EXPECT_TRUE(h2->keep_cache);  // same ETag
  store_.PutObject("f", "version two!");
  char buf[32];
  auto n = fs_->Read(h2->handle, 0, sizeof(buf), buf);
  EXPECT_EQ(n.status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(ToErrno(n.status()), ESTALE);
  fs_->Release(h2->handle);
  // The stale read dropped the cached stat. The old node stands for
  // version one: opening it is ESTALE (the kernel then looks the name up
  // again), and the lookup yields a new node for version two, so the two
  // versions never share page cache.
  EXPECT_EQ(fs_->Open(e->ino, O_RDONLY).status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(fs_->GetAttr(e->ino)->st_size, 11);  // the old node keeps its version's size
  auto e2 = Walk("f");
  ASSERT_TRUE(e2.ok());
  EXPECT_NE(e2->ino, e->ino);
  EXPECT_EQ(e2->attr.st_size, 12);
  auto h3 = fs_->Open(e2->ino, O_RDONLY);
  ASSERT_TRUE(h3.ok());
  EXPECT_FALSE(h3->keep_cache);
  auto m = fs_->Read(h3->handle, 0, sizeof(buf), buf);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::string(buf, *m), "version two!");
  fs_->Release(h3->handle);
}

TEST_F(FilesystemTest, ForgetDropsInodes) {
  store_.PutObject("f", "x");
  auto e1 = Walk("f");
  auto e2 = Walk("f");
  EXPECT_EQ(e1->ino, e2->ino);
  fs_->Forget(e1->ino, 1);
  EXPECT_TRUE(fs_->GetAttr(e1->ino).ok());
  fs_->Forget(e1->ino, 1);
  EXPECT_EQ(fs_->GetAttr(e1->ino).status().code(), StatusCode::kNotFound);
  fs_->Forget(kRootInode, 100);
  EXPECT_TRUE(fs_->GetAttr(kRootInode).ok());
}

// user.dsfs.warm.FIRST.COUNT: parsed by the fs layer and passed to the
// reader with the object's current version; a reader without a disk cache
// (StoreReader) answers NotSupported (ENOTSUP for dsfsctl).
TEST(FilesystemWarmTest, WarmRequestGoesToTheReaderWithTheObjectVersion) {
  struct WarmReader : StoreReader {
    using StoreReader::StoreReader;
    Result<WarmCounts> Warm(const ObjectId& id, uint64_t first, uint64_t count,
                            const CancelTokenPtr&) override {
      seen = id;
      seen_first = first;
      seen_count = count;
      WarmCounts c;
      c.fetched = count;
      c.skipped = 1;
      c.blocks = 9;
      c.block_size = 4096;
      return c;
    }
    ObjectId seen;
    uint64_t seen_first = 0, seen_count = 0;
  };
  MemoryStore store;
  store.PutObject("d/f", "hello");
  WarmReader reader{store};
  ManualClock clock;
  Filesystem fs(FsConfig{}, store, reader, clock, nullptr);
  auto d = fs.Lookup(kRootInode, "d");
  ASSERT_TRUE(d.ok());
  auto f = fs.Lookup(d->ino, "f");
  ASSERT_TRUE(f.ok());
  auto r = fs.GetXattr(f->ino, "user.dsfs.warm.3.2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "fetched 2 skipped 1 blocks 9 block_size 4096\n");
  EXPECT_EQ(reader.seen.key, "d/f");
  EXPECT_EQ(reader.seen.size, 5u);
  EXPECT_FALSE(reader.seen.etag.empty());
  EXPECT_EQ(reader.seen_first, 3u);
  EXPECT_EQ(reader.seen_count, 2u);
  EXPECT_EQ(fs.GetXattr(f->ino, "user.dsfs.warm.x").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(fs.GetXattr(d->ino, "user.dsfs.warm.0.1").status().code(),
            StatusCode::kIsDirectory);

  StoreReader plain{store};
  Filesystem no_cache(FsConfig{}, store, plain, clock, nullptr);
  auto g = no_cache.Lookup(kRootInode, "d");
  ASSERT_TRUE(g.ok());
  auto h = no_cache.Lookup(g->ino, "f");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(no_cache.GetXattr(h->ino, "user.dsfs.warm.0.1").status().code(),
            StatusCode::kNotSupported);
}

}  // namespace
}  // namespace dsfs
