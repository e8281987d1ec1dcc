#include "backends/dir_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/backends/fallback_test_util.h"

namespace dsfs {
namespace {

using testing::LogCapture;
using testing::TempDir;

// Parameter: use openat2 when available (true) or force the openat walk.
class DirStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<DirStore> OpenStore() {
    DirStoreOptions opts;
    opts.use_openat2 = GetParam();
    opts.logger = log_.logger;
    auto s = DirStore::Open(dir_.path(), opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    if (!GetParam()) {
      EXPECT_FALSE((*s)->uses_openat2());
    }
    return std::move(s).value();
  }
  Result<std::string> GetAll(DirStore& s, const std::string& key,
                             const std::string& if_match = "") {
    auto head = s.Head(key);
    if (!head.ok()) return head.status();
    std::string buf(head->size + 16, '\0');
    GetRequest req;
    req.key = key;
    req.if_match = if_match;
    auto n = s.Get(req, buf.data(), buf.size());
    if (!n.ok()) return n.status();
    buf.resize(n->bytes);
    return buf;
  }

  TempDir dir_;
  LogCapture log_;
};

INSTANTIATE_TEST_SUITE_P(Resolve, DirStoreTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "openat_walk"; });

TEST_P(DirStoreTest, HeadAndGetRegularFile) {
  dir_.Write("models/a/shard-1.bin", "0123456789");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Describe(), "dir:" + dir_.path());

  auto head = s->Head("models/a/shard-1.bin");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->key, "models/a/shard-1.bin");
  EXPECT_EQ(head->size, 10u);
  EXPECT_TRUE(IsDirStoreEtag(head->etag)) << head->etag;
  EXPECT_TRUE(head->etag.starts_with("sfs-10-")) << head->etag;
  EXPECT_GT(head->mtime_sec, 0);

  auto all = GetAll(*s, "models/a/shard-1.bin", head->etag);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, "0123456789");

  char buf[4];
  GetRequest req;
  req.key = "models/a/shard-1.bin";
  req.range = ByteRange{6, 4};
  auto n = s->Get(req, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->bytes, 4u);
  EXPECT_EQ(std::string(buf, 4), "6789");
  // The share answers with its own identity, never an OBS one.
  EXPECT_EQ(n->etag, head->etag);
  EXPECT_EQ(n->source, DataSource::kShare);
}

TEST_P(DirStoreTest, GetRejectsBadRangesAndSmallBuffers) {
  dir_.Write("f", "0123456789");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  char buf[32];
  GetRequest req;
  req.key = "f";
  req.range = ByteRange{8, 3};  // one byte past the end
  EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kInvalidArgument);
  req.range = ByteRange{11, 1};
  EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kInvalidArgument);
  req.range = ByteRange{0, 0};
  EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kInvalidArgument);
  req.range.reset();
  EXPECT_EQ(s->Get(req, buf, 9).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s->Get(req, buf, 10).ok());
}

TEST_P(DirStoreTest, IfMatchAcceptsOnlyTheCurrentShareEtag) {
  dir_.Write("f", "0123456789");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  auto head = s->Head("f");
  ASSERT_TRUE(head.ok());
  // An OBS ETag can never match a share file.
  EXPECT_EQ(GetAll(*s, "f", "d41d8cd98f00b204e9800998ecf8427e").status().code(),
            StatusCode::kPreconditionFailed);
  EXPECT_EQ(GetAll(*s, "f", "sfs-1-2-3").status().code(), StatusCode::kPreconditionFailed);
  // Rewritten (new size, new mtime): the old ETag is stale.
  dir_.Write("f", "0123456789abc");
  EXPECT_EQ(GetAll(*s, "f", head->etag).status().code(), StatusCode::kPreconditionFailed);
  auto head2 = s->Head("f");
  ASSERT_TRUE(head2.ok());
  EXPECT_NE(head2->etag, head->etag);
  EXPECT_TRUE(GetAll(*s, "f", head2->etag).ok());
}

TEST_P(DirStoreTest, ReplacedFileWithSameSizeAndMtimeGetsNewEtag) {
  dir_.Write("f", "aaaa");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  auto head = s->Head("f");
  ASSERT_TRUE(head.ok());
  struct stat st;
  ASSERT_EQ(::stat(dir_.Join("f").c_str(), &st), 0);
  // rsync-style replacement: new inode, same size, mtime copied.
  dir_.Write("f.tmp", "bbbb");
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir_.Join("f.tmp").c_str(), times, 0), 0);
  ASSERT_EQ(::rename(dir_.Join("f.tmp").c_str(), dir_.Join("f").c_str()), 0);
  auto head2 = s->Head("f");
  ASSERT_TRUE(head2.ok());
  EXPECT_NE(head2->etag, head->etag);
}

TEST_P(DirStoreTest, RejectsKeysThatCouldEscape) {
  dir_.Write("a/b", "x");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  const std::vector<std::string> bad = {"",
                                        "/etc/passwd",
                                        "../etc/passwd",
                                        "a/../../etc/passwd",
                                        "a/../b",
                                        "a/./b",
                                        "./a/b",
                                        "a//b",
                                        "a//",
                                        "../",
                                        ".",
                                        "..",
                                        std::string("a/b\0c", 5),
                                        std::string(256, 'x'),
                                        std::string(1025, 'y')};
  for (const auto& key : bad) {
    auto head = s->Head(key);
    EXPECT_EQ(head.status().code(), StatusCode::kInvalidArgument) << "key '" << key << "'";
    char buf[8];
    GetRequest req;
    req.key = key;
    EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kInvalidArgument)
        << "key '" << key << "'";
  }
  EXPECT_GE(log_.sink->Count("refusing key"), static_cast<int>(bad.size()));
  EXPECT_TRUE(s->Head("a/b").ok());
}

TEST_P(DirStoreTest, NeverFollowsSymlinks) {
  dir_.Write("real/file", "inside");
  ASSERT_EQ(::symlink("/etc/passwd", dir_.Join("passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", dir_.Join("etc").c_str()), 0);
  ASSERT_EQ(::symlink("real", dir_.Join("inner").c_str()), 0);  // inside, still refused
  std::filesystem::create_directories(dir_.Join("deep"));
  ASSERT_EQ(::symlink("../../../../../../../etc", dir_.Join("deep/up").c_str()), 0);
  auto s = OpenStore();
  ASSERT_TRUE(s);
  for (const std::string key :
       {"passwd", "etc/passwd", "etc/hostname", "inner/file", "deep/up/passwd"}) {
    EXPECT_EQ(s->Head(key).status().code(), StatusCode::kNotFound) << key;
    char buf[4096];
    GetRequest req;
    req.key = key;
    EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kNotFound) << key;
  }
  EXPECT_GE(log_.sink->Count("never followed"), 5);
  EXPECT_TRUE(s->Head("real/file").ok());

  // Listing: symlinks are not entries, and a prefix through one is empty.
  ListRequest req;
  req.delimiter = "/";
  auto page = s->List(req);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{"deep/", "real/"}));
  for (const std::string prefix : {"etc/", "etc/p", "inner/", "deep/up/"}) {
    req.prefix = prefix;
    for (const std::string delim : {"", "/"}) {
      req.delimiter = delim;
      auto p = s->List(req);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_TRUE(p->objects.empty() && p->common_prefixes.empty()) << prefix;
    }
  }
  req.prefix = "";
  req.delimiter = "";
  page = s->List(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "real/file");
}

TEST_P(DirStoreTest, NeverOpensAFifo) {
  std::filesystem::create_directories(dir_.Join("d"));
  ASSERT_EQ(::mkfifo(dir_.Join("d/pipe").c_str(), 0600), 0);
  dir_.Write("d/z", "z");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  // Opening a fifo for reading would block this test forever.
  EXPECT_EQ(s->Head("d/pipe").status().code(), StatusCode::kNotFound);
  char buf[8];
  GetRequest req;
  req.key = "d/pipe";
  EXPECT_EQ(s->Get(req, buf, sizeof(buf)).status().code(), StatusCode::kNotFound);
  EXPECT_GE(log_.sink->Count("not a regular file"), 2);
  ListRequest lr;
  lr.prefix = "d/";
  auto page = s->List(lr);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "d/");  // the directory's marker
  EXPECT_EQ(page->objects[1].key, "d/z");
}

TEST_P(DirStoreTest, DirectoriesAnswerAsMarkers) {
  dir_.Write("a/b/f", "x");
  ASSERT_EQ(::mkdir((dir_.path() + "/a/empty").c_str(), 0755), 0);
  auto s = OpenStore();
  ASSERT_TRUE(s);
  for (const std::string key : {"a/", "a/b/", "a/empty/"}) {
    auto head = s->Head(key);
    ASSERT_TRUE(head.ok()) << key << ": " << head.status().ToString();
    EXPECT_EQ(head->size, 0u);
    EXPECT_EQ(head->content_type, "application/x-directory");
    EXPECT_TRUE(IsDirStoreEtag(head->etag));
  }
  EXPECT_EQ(s->Head("a/nope/").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Head("a/b/f/").status().code(), StatusCode::kNotFound);  // a file, not a dir
  // The empty directory lists its marker, so a lookup finds a directory.
  ListRequest lr;
  lr.prefix = "a/empty/";
  lr.delimiter = "/";
  lr.max_keys = 1;
  auto page = s->List(lr);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "a/empty/");
}

TEST_P(DirStoreTest, DirectoriesAndPathsThroughFilesAreNotFound) {
  dir_.Write("a/b", "x");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Head("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Head("a/b/c").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Head("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Head("missing/x").status().code(), StatusCode::kNotFound);
}

TEST(DirStoreOpen, FailsForMissingRootOrAFile) {
  TempDir dir;
  dir.Write("file", "x");
  EXPECT_EQ(DirStore::Open(dir.Join("missing")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(DirStore::Open(dir.Join("file")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DirStore::Open("").status().code(), StatusCode::kInvalidArgument);
}

TEST(DirStoreEtag, NeverLooksLikeAnS3Etag) {
  EXPECT_TRUE(IsDirStoreEtag(DirStore::MakeEtag(1, 2, 3)));
  EXPECT_EQ(DirStore::MakeEtag(10, 1700000000123456789, 42), "sfs-10-1700000000123456789-42");
  EXPECT_FALSE(IsDirStoreEtag("d41d8cd98f00b204e9800998ecf8427e"));
  EXPECT_FALSE(IsDirStoreEtag("9b2cf535f27731c974343645a3985328-12"));
  EXPECT_FALSE(IsDirStoreEtag(""));
}

// ---- List: compared against a reference ListObjectsV2 over the same keys.

struct Item {
  std::string name;
  bool prefix;
  bool operator==(const Item&) const = default;
};

std::vector<Item> Reference(const std::set<std::string>& keys, const std::string& prefix,
                            const std::string& delimiter) {
  std::vector<Item> out;
  // A directory's listing starts with its own marker, as S3 lists "dir/".
  if (!prefix.empty() && prefix.back() == '/' &&
      std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.starts_with(prefix); })) {
    out.push_back({prefix, false});
  }
  for (const auto& k : keys) {  // std::set<std::string>: byte order
    if (!k.starts_with(prefix)) continue;
    size_t pos = delimiter.empty() ? std::string::npos : k.find(delimiter, prefix.size());
    if (pos != std::string::npos) {
      std::string cp = k.substr(0, pos + delimiter.size());
      if (out.empty() || out.back().name != cp) out.push_back({cp, true});
    } else {
      out.push_back({k, false});
    }
  }
  return out;
}

// Pages through a listing; checks page sizes and token invariants.
std::vector<Item> ListAll(ObjectStore& s, const std::string& prefix, const std::string& delimiter,
                          int max_keys) {
  std::vector<Item> out;
  ListRequest req;
  req.prefix = prefix;
  req.delimiter = delimiter;
  req.max_keys = max_keys;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = s.List(req);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    EXPECT_LE(static_cast<int>(page->objects.size() + page->common_prefixes.size()), max_keys);
    // Merge the page's objects and prefixes in key order.
    std::vector<Item> items;
    for (const auto& o : page->objects) items.push_back({o.key, false});
    for (const auto& p : page->common_prefixes) items.push_back({p, true});
    std::sort(items.begin(), items.end(),
              [](const Item& a, const Item& b) { return a.name < b.name; });
    out.insert(out.end(), items.begin(), items.end());
    if (page->next_continuation.empty()) break;
    EXPECT_FALSE(items.empty()) << "a truncated page must not be empty";
    req.continuation = page->next_continuation;
  }
  return out;
}

TEST_P(DirStoreTest, ListMatchesListObjectsV2) {
  const std::set<std::string> keys = {"a.txt",
                                      "a/b",
                                      "a/c/d",
                                      "a/c/e",
                                      "a0",
                                      "b",
                                      "dir/x-1",
                                      "dir/x-2/y",
                                      "dir/x-2/z-9",
                                      "dir/y",
                                      "z/z/z",
                                      "\x7f"
                                      "del",
                                      "\xc3\xa9t\xc3\xa9",
                                      "sp ace/f",
                                      "a/c0"};
  for (const auto& k : keys) dir_.Write(k, "data-" + k);
  auto s = OpenStore();
  ASSERT_TRUE(s);
  const std::vector<std::string> prefixes = {"",   "a", "a/",    "a/c", "a/c/", "dir/x", "dir/x-",
                                             "z/", "b", "nope/", "a/b", "\xc3", "../",   "a//"};
  for (const auto& prefix : prefixes) {
    for (const std::string delim : {"", "/", "-", "/z"}) {
      auto expected = Reference(keys, prefix, delim);
      for (int max_keys : {1, 2, 3, 1000}) {
        auto got = ListAll(*s, prefix, delim, max_keys);
        EXPECT_EQ(got, expected) << "prefix '" << prefix << "' delimiter '" << delim
                                 << "' max_keys " << max_keys;
      }
    }
  }
}

TEST_P(DirStoreTest, ListEntriesCarryHeadInfo) {
  dir_.Write("p/one", "1");
  dir_.Write("p/three", "333");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  ListRequest req;
  req.prefix = "p/";
  auto page = s->List(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 3u);  // the "p/" marker, one, three
  for (const auto& o : page->objects) {
    auto head = s->Head(o.key);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(o.size, head->size);
    EXPECT_EQ(o.etag, head->etag);
    EXPECT_EQ(o.mtime_sec, head->mtime_sec);
  }
}

TEST_P(DirStoreTest, ListEmptyDirectoryIsACommonPrefixAndMaxKeysZeroIsEmpty) {
  std::filesystem::create_directories(dir_.Join("empty"));
  dir_.Write("f", "x");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  ListRequest req;
  req.delimiter = "/";
  auto page = s->List(req);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"empty/"});
  ASSERT_EQ(page->objects.size(), 1u);
  req.max_keys = 0;
  page = s->List(req);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty() && page->common_prefixes.empty());
  EXPECT_TRUE(page->next_continuation.empty());
}

TEST_P(DirStoreTest, ContinuationMeansStartAfter) {
  for (const std::string k : {"a/1", "a/2", "b/1", "c"}) dir_.Write(k, "x");
  auto s = OpenStore();
  ASSERT_TRUE(s);
  ListRequest req;
  req.continuation = "a/1";  // any key: resumes after it
  auto page = s->List(req);
  ASSERT_TRUE(page.ok());
  std::vector<std::string> keys;
  for (const auto& o : page->objects) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a/2", "b/1", "c"}));
  req.delimiter = "/";
  req.continuation = "a/";  // a common prefix: everything under it is skipped
  page = s->List(req);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"b/"});
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "c");
}

}  // namespace
}  // namespace dsfs
