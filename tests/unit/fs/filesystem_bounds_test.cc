// Filesystem against stores that misbehave: listings that never end, keys
// outside the listed prefix, symlink targets the kernel cannot take, many
// open directory handles. Every case ends in a clear error, never a loop.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <functional>

#include "backends/memory_store.h"
#include "common/clock.h"
#include "fs/filesystem.h"

namespace dsfs {
namespace {

// Heads and Gets from a MemoryStore; List pages from a script.
class ScriptedListStore : public ObjectStore {
 public:
  std::function<Result<ListPage>(const ListRequest&)> list;
  MemoryStore objects;
  int lists = 0;
  bool blank_etags = false;  // a server that sends no ETag

  Result<ObjectInfo> Head(const std::string& key) override {
    auto info = objects.Head(key);
    if (info.ok() && blank_etags) info->etag.clear();
    return info;
  }
  Result<ListPage> List(const ListRequest& r) override {
    ++lists;
    return list(r);
  }
  Result<GetResult> Get(const GetRequest& r, char* buf, size_t len) override {
    return objects.Get(r, buf, len);
  }
  std::string Describe() const override { return "scripted"; }
};

// These tests read no file data (readlink goes to the store itself).
class NoReads : public ObjectReader {
 public:
  Result<SliceList> ReadSlices(const ObjectId&, uint64_t, size_t, const CancelTokenPtr&) override {
    return Status::NotSupported("no reads in these tests");
  }
};

ObjectInfo Obj(const std::string& key, uint64_t size = 1) {
  ObjectInfo o;
  o.key = key;
  o.size = size;
  o.etag = "e";
  return o;
}

class FilesystemBoundsTest : public ::testing::Test {
 protected:
  FilesystemBoundsTest() { Reset(FsConfig{}); }
  void Reset(FsConfig config) {
    config.uid = config.gid = 1000;
    fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_);
  }
  std::vector<std::string> Names(uint64_t h) {
    std::vector<std::string> names;
    for (uint64_t off = 0;;) {
      auto r = fs_->ReadDir(h, off, 7);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || r->empty()) break;
      for (auto& e : *r) names.push_back(e.name);
      off += r->size();
    }
    return names;
  }

  ScriptedListStore store_;
  NoReads reader_;
  ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FilesystemBoundsTest, RepeatedContinuationTokenEndsWithEio) {
  store_.list = [](const ListRequest&) -> Result<ListPage> {
    ListPage p;
    p.objects.push_back(Obj("a"));
    p.next_continuation = "same-token";
    return p;
  };
  auto h = fs_->OpenDir(kRootInode);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(ToErrno(h.status()), EIO);
  EXPECT_NE(h.status().message().find("repeated continuation token"), std::string::npos)
      << h.status().message();
  EXPECT_LE(store_.lists, 3);
}

TEST_F(FilesystemBoundsTest, EmptyPagesWithNewTokensEndWithEio) {
  store_.list = [n = 0](const ListRequest&) mutable -> Result<ListPage> {
    ListPage p;
    p.next_continuation = "t" + std::to_string(n++);
    return p;
  };
  auto h = fs_->OpenDir(kRootInode);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(ToErrno(h.status()), EIO);
  EXPECT_NE(h.status().message().find("empty pages"), std::string::npos) << h.status().message();
  EXPECT_EQ(store_.lists, FsConfig{}.list_max_empty_pages);
}

TEST_F(FilesystemBoundsTest, ListingThatNeverEndsHitsListTimeout) {
  FsConfig config;
  config.list_timeout = std::chrono::seconds(10);
  Reset(config);
  // New names and new tokens for ever, one simulated second a page.
  store_.list = [this, n = 0](const ListRequest&) mutable -> Result<ListPage> {
    clock_.Advance(std::chrono::seconds(1));
    ListPage p;
    p.objects.push_back(Obj("f" + std::to_string(n)));
    p.next_continuation = "t" + std::to_string(n++);
    return p;
  };
  auto h = fs_->OpenDir(kRootInode);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(ToErrno(h.status()), EIO);
  EXPECT_NE(h.status().message().find("not finished after 10 s"), std::string::npos)
      << h.status().message();
  EXPECT_EQ(store_.lists, 10);
}

TEST_F(FilesystemBoundsTest, InterruptStopsAListingWithEintr) {
  auto token = std::make_shared<CancelToken>();
  store_.list = [&, n = 0](const ListRequest&) mutable -> Result<ListPage> {
    if (n == 2) token->Cancel();  // the kernel's INTERRUPT, during page 3
    ListPage p;
    p.objects.push_back(Obj("f" + std::to_string(n)));
    p.next_continuation = "t" + std::to_string(n++);
    return p;
  };
  auto h = fs_->OpenDir(kRootInode, token);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(ToErrno(h.status()), EINTR);
  EXPECT_EQ(store_.lists, 3);
}

TEST_F(FilesystemBoundsTest, ListingsInProgressCountTowardsListMem) {
  constexpr int kNames = 1000;
  auto name = [](char c, int i) { return std::string(1, c) + "-file-name-" + std::to_string(i); };
  Listing probe;
  for (int i = 0; i < kNames; ++i) {
    probe.bytes += Listing::ChildBytes(name('r', i), Listing::Child{NodeKind::kFile, 1, "e", 0});
  }
  FsConfig config;
  config.list_mem = probe.bytes * 3 / 2;  // one such listing fits, two do not
  Reset(config);
  std::function<void()> during_root_page_2;
  store_.list = [&](const ListRequest& r) -> Result<ListPage> {
    ListPage p;
    const char c = r.prefix == "sub/" ? 's' : 'r';
    const int n = r.max_keys == 1 ? 1 : kNames;
    if (r.prefix.empty() && r.continuation == "t") {
      during_root_page_2();  // the root's first page is loaded, not yet finished
      return p;
    }
    for (int i = 0; i < n; ++i) p.objects.push_back(Obj(r.prefix + name(c, i)));
    if (r.prefix.empty()) {
      p.common_prefixes.push_back("sub/");
      p.next_continuation = "t";
    }
    return p;
  };
  auto sub = fs_->Lookup(kRootInode, "sub");
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  Status nested = Status::Ok();
  during_root_page_2 = [&] {
    auto h = fs_->OpenDir(sub->ino);
    nested = h.ok() ? Status::Ok() : h.status();
    if (h.ok()) fs_->ReleaseDir(*h);
  };
  auto root = fs_->OpenDir(kRootInode);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  ASSERT_FALSE(nested.ok()) << "two listings held more than list_mem";
  EXPECT_EQ(ToErrno(nested), EIO);
  EXPECT_NE(nested.message().find("in progress"), std::string::npos) << nested.message();
  fs_->ReleaseDir(*root);
  // The root's listing is still cached (not held): room is made for sub.
  during_root_page_2 = [] {};
  auto again = fs_->OpenDir(sub->ino);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  fs_->ReleaseDir(*again);
}

TEST_F(FilesystemBoundsTest, CancelTokenReachesTheStore) {
  // The store aborts a transfer in progress with it (S3Store: curl's
  // progress callback).
  auto token = std::make_shared<CancelToken>();
  CancelTokenPtr seen;
  store_.list = [&](const ListRequest& r) -> Result<ListPage> {
    seen = r.cancel;
    return ListPage{};
  };
  ASSERT_TRUE(fs_->OpenDir(kRootInode, token).ok());
  EXPECT_EQ(seen, token);
}

TEST_F(FilesystemBoundsTest, KeysOutsideThePrefixAreSkipped) {
  store_.objects.PutObject("d/x", "x");
  store_.list = [](const ListRequest& r) -> Result<ListPage> {
    ListPage p;
    if (r.prefix == "d/") {
      p.objects = {Obj("d"), Obj("c"), Obj("e/zzz"), Obj("d/ok"), Obj("dd/x")};
      p.common_prefixes = {"x/", "d/sub/"};
    } else {
      p.common_prefixes = {"d/"};
    }
    return p;
  };
  auto d = fs_->Lookup(kRootInode, "d");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto h = fs_->OpenDir(d->ino);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(Names(*h), (std::vector<std::string>{".", "..", "ok", "sub"}));
  EXPECT_EQ(metrics_.GetCounter("dsfs_fs_skipped_keys_total").value(), 5u);
}

TEST_F(FilesystemBoundsTest, ObjectsOverFiveTiBAreSkipped) {
  store_.list = [](const ListRequest&) -> Result<ListPage> {
    ListPage p;
    p.objects = {Obj("huge", uint64_t{1} << 62), Obj("fine", 10)};
    return p;
  };
  auto h = fs_->OpenDir(kRootInode);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(Names(*h), (std::vector<std::string>{".", "..", "fine"}));
}

// A directory of 2000 names, as MemoryStore pages it.
class SharedListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2000; ++i) {
      store_.PutObject("big/file-with-a-long-enough-name-" + std::to_string(i), "x");
    }
  }
  void Reset(FsConfig config) {
    config.uid = config.gid = 1000;
    fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_);
    auto d = fs_->Lookup(kRootInode, "big");
    ASSERT_TRUE(d.ok());
    dir_ = d->ino;
  }
  MemoryStore store_;
  NoReads reader_;
  ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Filesystem> fs_;
  InodeId dir_ = 0;
};

TEST_F(SharedListingTest, HandlesShareOneListingAndTheTotalIsCapped) {
  Listing probe;
  for (int i = 0; i < 2000; ++i) {
    std::string name = "file-with-a-long-enough-name-" + std::to_string(i);
    probe.bytes += Listing::ChildBytes(name, Listing::Child{NodeKind::kFile, 1, "", 0});
  }
  FsConfig config;
  // Room for one listing of this directory (ETags add a little), not two.
  config.list_mem = probe.bytes * 3 / 2;
  Reset(config);
  std::vector<uint64_t> handles;
  for (int i = 0; i < 300; ++i) {  // one listing, however many handles
    auto h = fs_->OpenDir(dir_);
    ASSERT_TRUE(h.ok()) << i << ": " << h.status().ToString();
    handles.push_back(*h);
  }
  // Expired in the cache, but still held: a second copy would pass list_mem.
  clock_.Advance(std::chrono::seconds(6));
  auto refused = fs_->OpenDir(dir_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ToErrno(refused.status()), EIO);
  EXPECT_NE(refused.status().message().find("list_mem"), std::string::npos);
  // Handles read what they opened, offsets stable.
  auto names = [&](uint64_t h, uint64_t off, size_t n) {
    std::vector<std::string> out;
    auto r = fs_->ReadDir(h, off, n);
    EXPECT_TRUE(r.ok());
    for (auto& e : *r) out.push_back(e.name);
    return out;
  };
  auto all = names(handles[0], 0, 5000);
  ASSERT_EQ(all.size(), 2002u);
  EXPECT_EQ(names(handles[1], 1000, 3),
            (std::vector<std::string>{all[1000], all[1001], all[1002]}));
  EXPECT_EQ(names(handles[1], 1003, 1), std::vector<std::string>{all[1003]});  // sequential
  EXPECT_EQ(names(handles[2], 1, 2), (std::vector<std::string>{"..", all[2]}));
  EXPECT_TRUE(names(handles[2], 2002, 10).empty());
  EXPECT_TRUE(names(handles[2], 99999, 10).empty());
  for (uint64_t h : handles) fs_->ReleaseDir(h);
  // Closed: the memory is back, a fresh listing fits.
  auto again = fs_->OpenDir(dir_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  fs_->ReleaseDir(*again);
}

TEST_F(FilesystemBoundsTest, SymlinkTargetsTheKernelCannotTakeAreRefused) {
  const std::string mode = std::to_string(S_IFLNK | 0777);
  store_.objects.PutObject("long", std::string(4096, 'a'), {{"mode", mode}});
  store_.objects.PutObject("max", std::string(4095, 'a'), {{"mode", mode}});
  store_.objects.PutObject("nul", std::string("abc\0def", 7), {{"mode", mode}});
  store_.list = [](const ListRequest&) -> Result<ListPage> { return ListPage{}; };
  auto lookup = [&](const char* name) {
    auto e = fs_->Lookup(kRootInode, name);
    EXPECT_TRUE(e.ok()) << name;
    return e.ok() ? e->ino : 0;
  };
  auto long_target = fs_->ReadLink(lookup("long"));
  EXPECT_EQ(ToErrno(long_target.status()), ENAMETOOLONG);
  auto max_target = fs_->ReadLink(lookup("max"));
  ASSERT_TRUE(max_target.ok());
  EXPECT_EQ(max_target->size(), 4095u);
  auto nul_target = fs_->ReadLink(lookup("nul"));
  EXPECT_EQ(ToErrno(nul_target.status()), EIO);
  EXPECT_NE(nul_target.status().message().find("NUL"), std::string::npos);
}

TEST_F(FilesystemBoundsTest, EmptyEtagNeverKeepsTheKernelCache) {
  store_.objects.PutObject("f", "data");
  store_.blank_etags = true;
  store_.list = [](const ListRequest&) -> Result<ListPage> { return ListPage{}; };
  auto e = fs_->Lookup(kRootInode, "f");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  for (int i = 0; i < 2; ++i) {
    auto h = fs_->Open(e->ino, O_RDONLY);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_FALSE(h->keep_cache) << "open " << i;  // "" == "" says nothing
    fs_->Release(h->handle);
  }
}

}  // namespace
}  // namespace dsfs
