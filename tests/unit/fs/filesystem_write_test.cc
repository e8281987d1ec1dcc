// Core tests of the write path: Filesystem against MemoryStore, staged
// files in a temporary directory, no mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <functional>
#include <random>
#include <thread>

#include "backends/memory_store.h"
#include "common/clock.h"
#include "fs/filesystem.h"
#include "store_reader.h"
#include "tests/unit/temp_dir.h"

namespace dsfs {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// Polls cond (parts run on threads of their own) for up to 10 s.
bool EventuallyTrue(const std::function<bool()>& cond) {
  for (int i = 0; i < 10000 && !cond(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

// One ranged GET per read, pinned by ETag (no cache).
using testing::StoreReader;

std::string Pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class FilesystemWriteTest : public ::testing::Test {
 protected:
  FilesystemWriteTest() { Reset(); }

  void Reset(uint64_t max_dirty = uint64_t{1} << 40) {
    FsConfig config;
    config.read_only = false;
    config.uid = 1000;
    config.gid = 1000;
    WriteOptions w;
    w.staging_dir = tmp_.path();
    w.multipart_size = 5 * kMiB;
    w.parallel_count = 3;
    w.max_dirty = max_dirty;
    fs_.reset();
    fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_, w);
  }

  // The object as a plain GET returns it ("<NotFound...>" when absent).
  std::string Get(const std::string& key) {
    auto head = store_.Head(key);
    if (!head.ok()) return "<" + head.status().ToString() + ">";
    std::string out(head->size, '\0');
    GetRequest req{.key = key};
    auto got = store_.Get(req, out.data(), out.size());
    if (!got.ok()) return "<" + got.status().ToString() + ">";
    out.resize(got->bytes);
    return out;
  }

  Filesystem::CreateReply Create(const std::string& name, int flags = O_WRONLY) {
    auto r = fs_->Create(kRootInode, name, 0640, flags | O_CREAT, 1000, 1000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Filesystem::CreateReply{};
  }

  void Write(uint64_t h, uint64_t off, const std::string& data) {
    auto n = fs_->Write(h, off, data.data(), data.size());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, data.size());
  }

  std::string ReadHandle(uint64_t h, uint64_t off, size_t len) {
    std::string out(len, '\0');
    auto n = fs_->Read(h, off, len, out.data());
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  // Flush + release, as close(2) does; returns the flush's status.
  Status Close(uint64_t h) {
    Status st = fs_->Flush(h);
    fs_->Release(h);
    return st;
  }

  InodeId LookupIno(const std::string& name) {
    auto e = fs_->Lookup(kRootInode, name);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? e->ino : 0;
  }

  std::vector<std::string> List() {
    auto h = fs_->OpenDir(kRootInode);
    EXPECT_TRUE(h.ok());
    std::vector<std::string> names;
    auto r = fs_->ReadDir(*h, 2, 1000);
    for (auto& e : *r) names.push_back(e.name);
    fs_->ReleaseDir(*h);
    return names;
  }

  testing::TempDir tmp_;
  MemoryStore store_;
  StoreReader reader_{store_};
  ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FilesystemWriteTest, CreateWriteCloseUploadsOnceWithS3fsMetadata) {
  auto c = Create("new.txt");
  // No stub object at create.
  EXPECT_EQ(store_.counters().put, 0);
  EXPECT_EQ(store_.Head("new.txt").status().code(), StatusCode::kNotFound);
  Write(c.open.handle, 0, "hello ");
  Write(c.open.handle, 6, "world");
  EXPECT_EQ(store_.counters().put, 0);
  // The dirty account is the metric itself.
  EXPECT_EQ(metrics_.GetGauge("dsfs_write_dirty_bytes").value(), 11);
  auto st = fs_->GetAttr(c.entry.ino);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 11);
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("new.txt"), "hello world");
  EXPECT_EQ(store_.counters().put, 1);
  auto head = store_.Head("new.txt");
  EXPECT_EQ(head->meta["mode"], std::to_string(S_IFREG | 0640));
  EXPECT_EQ(head->meta["uid"], "1000");
  EXPECT_EQ(head->meta["gid"], "1000");
  EXPECT_FALSE(head->meta["mtime"].empty());
  // Same inode, now the uploaded version, with no further request.
  store_.ResetCounters();
  EXPECT_EQ(LookupIno("new.txt"), c.entry.ino);
  EXPECT_EQ(fs_->GetAttr(c.entry.ino)->st_size, 11);
  EXPECT_EQ(store_.counters().head, 0);
  EXPECT_TRUE(fs_->inodes().Get(c.entry.ino)->etag == head->etag);
  EXPECT_EQ(fs_->dirty_bytes(), 0u);
  EXPECT_EQ(metrics_.GetGauge("dsfs_write_dirty_bytes").value(), 0);
  EXPECT_EQ(metrics_.CounterTotal("dsfs_write_uploads_total"), 1u);
}

TEST_F(FilesystemWriteTest, EmptyCreateMakesAnEmptyObjectAtClose) {
  auto c = Create("empty");
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("empty"), "");
}

TEST_F(FilesystemWriteTest, CreatedFileIsListedAtOnceBeforeAndAfterUpload) {
  store_.PutObject("old", "x");
  EXPECT_EQ(List(), std::vector<std::string>{"old"});  // cached listing
  auto c = Create("fresh");
  EXPECT_EQ(List(), (std::vector<std::string>{"fresh", "old"}));
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(List(), (std::vector<std::string>{"fresh", "old"}));
  // A lookup while it is staged finds the staged file, not the bucket.
  auto c2 = Create("staged");
  Write(c2.open.handle, 0, "abc");
  auto e = fs_->Lookup(kRootInode, "staged");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ino, c2.entry.ino);
  EXPECT_EQ(e->attr.st_size, 3);
  ASSERT_TRUE(Close(c2.open.handle).ok());
}

TEST_F(FilesystemWriteTest, ReadYourWritesThroughTheSameAndAnotherHandle) {
  auto c = Create("f", O_RDWR);
  Write(c.open.handle, 0, "0123456789");
  EXPECT_EQ(ReadHandle(c.open.handle, 2, 4), "2345");
  auto r = fs_->Open(c.entry.ino, O_RDONLY);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadHandle(r->handle, 0, 100), "0123456789");
  fs_->Release(r->handle);
  ASSERT_TRUE(Close(c.open.handle).ok());
}

TEST_F(FilesystemWriteTest, RandomOutOfOrderOverlappingAndSparseWritesMatchAModel) {
  for (uint64_t size : {uint64_t{0}, 5 * kMiB - 1, 5 * kMiB, 5 * kMiB + 1, 10 * kMiB + 17}) {
    SCOPED_TRACE(size);
    const std::string name = "m" + std::to_string(size);
    auto c = Create(name);
    std::string model(size, '\0');
    std::mt19937_64 rng(size);
    for (int i = 0; i < 40 && size > 0; ++i) {
      uint64_t off = rng() % size;
      uint64_t len = std::min<uint64_t>(1 + rng() % (300 * 1024), size - off);
      std::string data = Pattern(len, static_cast<unsigned>(i));
      model.replace(off, len, data);
      Write(c.open.handle, off, data);
    }
    if (size > 0) {
      // The last byte, so the size is exact (a hole before it reads as 0).
      Write(c.open.handle, size - 1, std::string(1, model.back()));
    }
    ASSERT_TRUE(Close(c.open.handle).ok());
    EXPECT_TRUE(Get(name) == model) << "content differs";
  }
  EXPECT_TRUE(store_.PendingUploads().empty());
}

TEST_F(FilesystemWriteTest, MultipartAboveThePartSize) {
  auto c = Create("big");
  const std::string data = Pattern(11 * kMiB, 7);
  for (size_t off = 0; off < data.size(); off += kMiB) {
    Write(c.open.handle, off, data.substr(off, kMiB));
  }
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("big") == data);
  auto cnt = store_.counters();
  EXPECT_EQ(cnt.put, 0);
  EXPECT_EQ(cnt.create_multipart, 1);
  EXPECT_EQ(cnt.upload_part, 3);
  EXPECT_EQ(cnt.complete, 1);
}

// streamupload: a sequential writer's parts go up while it writes (part 1
// at close), the object is exact and takes the mtime its upload began with.
TEST_F(FilesystemWriteTest, SequentialWriterStreamsItsPartsWhileItWrites) {
  auto c = Create("ckpt");
  const std::string data = Pattern(21 * kMiB + 17, 8);
  for (size_t off = 0; off < 16 * kMiB; off += kMiB) {
    Write(c.open.handle, off, data.substr(off, kMiB));
  }
  // Parts 2 and 3 (5 MiB each) are whole: started before any close.
  ASSERT_TRUE(EventuallyTrue([&] { return store_.counters().upload_part >= 2; }));
  EXPECT_EQ(store_.counters().create_multipart, 1);
  EXPECT_EQ(store_.counters().complete, 0);
  for (size_t off = 16 * kMiB; off < data.size(); off += kMiB) {
    Write(c.open.handle, off, data.substr(off, std::min<size_t>(kMiB, data.size() - off)));
  }
  // A header patched at the start when done (zipfile, tar): part 1 is
  // held back, so the stream goes on.
  std::string model = data;
  model.replace(10, 6, "HEADER");
  Write(c.open.handle, 10, "HEADER");
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("ckpt") == model);
  auto cnt = store_.counters();
  EXPECT_EQ(cnt.create_multipart, 1);
  EXPECT_EQ(cnt.upload_part, 5);
  EXPECT_EQ(cnt.complete, 1);
  EXPECT_EQ(cnt.abort, 0);
  EXPECT_TRUE(store_.PendingUploads().empty());
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_streamed_uploads_total").value(), 1u);
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_stream_abandoned_total").value(), 0u);
  // The object's mtime is the one the file shows.
  auto head = store_.Head("ckpt");
  ASSERT_TRUE(head.ok());
  auto st = fs_->GetAttr(LookupIno("ckpt"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(head->meta.at("mtime"),
            std::to_string(st->st_mtim.tv_sec) + "." + [&] {
              char b[16];
              snprintf(b, sizeof b, "%09ld", static_cast<long>(st->st_mtim.tv_nsec));
              return std::string(b);
            }());
}

TEST_F(FilesystemWriteTest, AWriteIntoAStreamedPartUploadsTheFileWhole) {
  auto c = Create("rw");
  std::string model = Pattern(16 * kMiB, 9);
  for (size_t off = 0; off < model.size(); off += kMiB) {
    Write(c.open.handle, off, model.substr(off, kMiB));
  }
  ASSERT_TRUE(EventuallyTrue([&] { return store_.counters().upload_part >= 1; }));
  // Back into part 2 (already sent): given up, aborted.
  Write(c.open.handle, 6 * kMiB, "changed");
  model.replace(6 * kMiB, 7, "changed");
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_stream_abandoned_total").value(), 1u);
  EXPECT_TRUE(store_.PendingUploads().empty());
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("rw") == model);
  EXPECT_EQ(store_.counters().create_multipart, 2);  // the stream's, then the whole one
  EXPECT_EQ(store_.counters().complete, 1);
  EXPECT_TRUE(store_.PendingUploads().empty());
  // A truncate below the parts sent gives it up too.
  auto t = Create("trunc");
  for (size_t off = 0; off < 12 * kMiB; off += kMiB) Write(t.open.handle, off, model.substr(off, kMiB));
  ASSERT_TRUE(fs_->SetSize(t.entry.ino, 7 * kMiB, t.open.handle).ok());
  ASSERT_TRUE(Close(t.open.handle).ok());
  EXPECT_TRUE(Get("trunc") == model.substr(0, 7 * kMiB));
  EXPECT_TRUE(store_.PendingUploads().empty());
}

TEST_F(FilesystemWriteTest, AStreamRenamedOrChmodedWhileWrittenEndsUnderTheNewNameAndMode) {
  auto c = Create("tmp.part");
  const std::string data = Pattern(24 * kMiB + 3, 10);
  // The first half, fsync'ed (the stream completes: the object exists),
  // then the rest: a new stream, renamed and chmod'ed before its close.
  for (size_t off = 0; off < 12 * kMiB; off += kMiB) Write(c.open.handle, off, data.substr(off, kMiB));
  ASSERT_TRUE(fs_->Fsync(c.open.handle).ok());
  EXPECT_TRUE(Get("tmp.part") == data.substr(0, 12 * kMiB));
  for (size_t off = 12 * kMiB; off < data.size(); off += kMiB) {
    Write(c.open.handle, off, data.substr(off, std::min<size_t>(kMiB, data.size() - off)));
  }
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_streamed_uploads_total").value(), 2u);
  ASSERT_TRUE(fs_->Rename(kRootInode, "tmp.part", kRootInode, "final", 0).ok());
  Filesystem::AttrChange chmod;
  chmod.mode = 0600;
  ASSERT_TRUE(fs_->SetAttr(c.entry.ino, chmod).ok());
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("final") == data);
  EXPECT_EQ(store_.Head("tmp.part").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.Head("final")->meta.at("mode"), std::to_string(S_IFREG | 0600));
  EXPECT_TRUE(store_.PendingUploads().empty());
}

TEST_F(FilesystemWriteTest, StreamuploadOffUploadsAtCloseOnly) {
  WriteOptions w;
  w.staging_dir = tmp_.path();
  w.multipart_size = 5 * kMiB;
  w.stream_upload = false;
  fs_ = std::make_unique<Filesystem>(FsConfig{.read_only = false}, store_, reader_, clock_,
                                     &metrics_, w);
  auto c = Create("off");
  const std::string data = Pattern(16 * kMiB, 11);
  for (size_t off = 0; off < data.size(); off += kMiB) Write(c.open.handle, off, data.substr(off, kMiB));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store_.counters().create_multipart, 0);
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("off") == data);
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_streamed_uploads_total").value(), 0u);
}

TEST_F(FilesystemWriteTest, AppendWritesAtTheEnd) {
  store_.PutObject("log", "line1\n");
  InodeId ino = LookupIno("log");
  auto h = fs_->Open(ino, O_WRONLY | O_APPEND);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  Write(h->handle, 0, "line2\n");  // the offset is ignored
  ASSERT_TRUE(Close(h->handle).ok());
  EXPECT_EQ(Get("log"), "line1\nline2\n");
}

TEST_F(FilesystemWriteTest, PartialOverwriteKeepsTheRestAndTheInode) {
  const std::string old = Pattern(3 * kMiB + 5, 1);
  store_.PutObject("ckpt", old);
  InodeId ino = LookupIno("ckpt");
  auto h = fs_->Open(ino, O_RDWR);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  Write(h->handle, kMiB, "XYZ");
  std::string expect = old;
  expect.replace(kMiB, 3, "XYZ");
  EXPECT_EQ(ReadHandle(h->handle, kMiB - 1, 5), expect.substr(kMiB - 1, 5));
  ASSERT_TRUE(Close(h->handle).ok());
  EXPECT_TRUE(Get("ckpt") == expect);
  EXPECT_EQ(LookupIno("ckpt"), ino);
  // A plain read of the new version through a new handle.
  auto r = fs_->Open(ino, O_RDONLY);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadHandle(r->handle, kMiB, 3), "XYZ");
  fs_->Release(r->handle);
}

TEST_F(FilesystemWriteTest, OpenWithoutWritesUploadsNothing) {
  store_.PutObject("f", "data");
  InodeId ino = LookupIno("f");
  auto h = fs_->Open(ino, O_RDWR);
  ASSERT_TRUE(h.ok());
  store_.ResetCounters();
  ASSERT_TRUE(Close(h->handle).ok());
  EXPECT_EQ(store_.counters().put, 0);
}

TEST_F(FilesystemWriteTest, OTruncEmptiesTheFile) {
  store_.PutObject("f", "old content");
  InodeId ino = LookupIno("f");
  store_.ResetCounters();
  auto h = fs_->Open(ino, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(store_.counters().get, 0);  // nothing copied in
  EXPECT_EQ(fs_->GetAttr(ino)->st_size, 0);
  Write(h->handle, 0, "new");
  ASSERT_TRUE(Close(h->handle).ok());
  EXPECT_EQ(Get("f"), "new");
}

TEST_F(FilesystemWriteTest, TruncateUpAndDownByHandleAndByPath) {
  auto c = Create("t", O_RDWR);
  Write(c.open.handle, 0, "abcdef");
  auto st = fs_->SetSize(c.entry.ino, 3, c.open.handle);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_size, 3);
  st = fs_->SetSize(c.entry.ino, 8, c.open.handle);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(ReadHandle(c.open.handle, 0, 100), std::string("abc\0\0\0\0\0", 8));
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("t"), std::string("abc\0\0\0\0\0", 8));

  // truncate(2) of a closed file: in the bucket when it returns.
  st = fs_->SetSize(c.entry.ino, 2, 0);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(Get("t"), "ab");
  st = fs_->SetSize(c.entry.ino, 0, 0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(Get("t"), "");
  EXPECT_EQ(fs_->GetAttr(c.entry.ino)->st_size, 0);
}

struct UploadFailure {
  StoreOp op;
  uint64_t size;
  const char* name;
};

// A failed upload at any step: close's flush returns the error, the
// multipart upload is aborted, no object appears, and the release after
// the failed flush does not try again behind the writer's back.
TEST_F(FilesystemWriteTest, UploadFailureIsTheCloseErrorAndLeavesNoObject) {
  for (UploadFailure f : {UploadFailure{StoreOp::kPut, 100, "put"},
                          UploadFailure{StoreOp::kUploadPart, 11 * kMiB, "part"},
                          UploadFailure{StoreOp::kComplete, 11 * kMiB, "complete"}}) {
    SCOPED_TRACE(f.name);
    const std::string name = std::string("fail-") + f.name;
    auto c = Create(name);
    Write(c.open.handle, 0, Pattern(f.size, 3));
    store_.ResetCounters();
    store_.FailNext(f.op, Status::Transient("injected"));
    Status st = Close(c.open.handle);
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(ToErrno(st), EIO);
    EXPECT_EQ(store_.Head(name).status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(store_.PendingUploads().empty());
    EXPECT_EQ(store_.counters().abort, f.op == StoreOp::kPut ? 0 : 1);
    EXPECT_EQ(store_.counters().complete, f.op == StoreOp::kComplete ? 1 : 0);
  }
  EXPECT_EQ(fs_->dirty_bytes(), 0u);  // out of the budget with the last handle
  // The data is not lost: one file per failed upload in staging/kept,
  // named after its key, holding exactly the bytes written.
  const std::string kept = tmp_.path() + "/" + Filesystem::kKeptDir;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kept)) {
    names.push_back(e.path().filename().string());
    EXPECT_EQ(e.status().permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  ASSERT_EQ(names.size(), 3u);
  for (UploadFailure f : {UploadFailure{StoreOp::kPut, 100, "put"},
                          UploadFailure{StoreOp::kUploadPart, 11 * kMiB, "part"},
                          UploadFailure{StoreOp::kComplete, 11 * kMiB, "complete"}}) {
    const std::string suffix = std::string("-fail-") + f.name;
    auto it = std::find_if(names.begin(), names.end(),
                           [&](const std::string& n) { return n.ends_with(suffix); });
    ASSERT_NE(it, names.end()) << suffix;
    std::ifstream in(kept + "/" + *it, std::ios::binary);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(got == Pattern(f.size, 3)) << *it;
  }
  EXPECT_EQ(metrics_.GetCounter("dsfs_write_kept_total").value(), 3u);
}

TEST_F(FilesystemWriteTest, AFailedUploadRetriedSuccessfullyKeepsNothing) {
  auto c = Create("dir-less");
  Write(c.open.handle, 0, "v1");
  store_.FailNext(StoreOp::kPut, Status::Transient("injected"));
  EXPECT_FALSE(fs_->Fsync(c.open.handle).ok());
  ASSERT_TRUE(Close(c.open.handle).ok());  // the close's upload succeeds
  EXPECT_EQ(Get("dir-less"), "v1");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/" + Filesystem::kKeptDir));
}

TEST_F(FilesystemWriteTest, AnUnlinkedFileWhoseUploadFailedIsNotKept) {
  auto c = Create("gone");
  Write(c.open.handle, 0, "data");
  store_.FailNext(StoreOp::kPut, Status::Transient("injected"));
  EXPECT_FALSE(fs_->Fsync(c.open.handle).ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "gone").ok());
  (void)Close(c.open.handle);
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/" + Filesystem::kKeptDir));
}

TEST_F(FilesystemWriteTest, FsyncUploadsAndAFailedFsyncCanBeRetried) {
  auto c = Create("f");
  Write(c.open.handle, 0, "v1");
  store_.FailNext(StoreOp::kPut, Status::Transient("injected"));
  EXPECT_FALSE(fs_->Fsync(c.open.handle).ok());
  EXPECT_EQ(store_.Head("f").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(fs_->Fsync(c.open.handle).ok());
  EXPECT_EQ(Get("f"), "v1");
  // Nothing new: the close uploads nothing.
  store_.ResetCounters();
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(store_.counters().put, 0);
}

TEST_F(FilesystemWriteTest, ChangedUpstreamDuringTheCopyInIsEstale) {
  store_.PutObject("f", Pattern(2 * kMiB, 1));
  InodeId ino = LookupIno("f");
  // The first ranged GET of the copy-in sees another version.
  bool replaced = false;
  store_.SetHook([&](StoreOp op, const std::string& key) {
    if (op == StoreOp::kGet && key == "f" && !replaced) {
      replaced = true;
      store_.PutObject("f", "other writer");
    }
  });
  auto h = fs_->Open(ino, O_RDWR);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(ToErrno(h.status()), ESTALE);
  EXPECT_EQ(Get("f"), "other writer");
}

TEST_F(FilesystemWriteTest, AnUpstreamChangeIsEstaleALocalUploadIsFollowed) {
  store_.PutObject("f", "old old old");
  InodeId ino = LookupIno("f");
  auto reader = fs_->Open(ino, O_RDONLY);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadHandle(reader->handle, 0, 3), "old");
  // Upstream: another client replaces it.
  store_.PutObject("f", "new new new");
  std::string buf(3, '\0');
  auto n = fs_->Read(reader->handle, 4, 3, buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), ESTALE);
  fs_->Release(reader->handle);

  // Through this mount: a reader of the version before a local upload
  // reads the new one (a local write is seen by every reader).
  store_.PutObject("g", "first");
  ino = LookupIno("g");
  reader = fs_->Open(ino, O_RDONLY);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadHandle(reader->handle, 0, 2), "fi");
  auto w = fs_->Open(ino, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(w.ok());
  Write(w->handle, 0, "second");
  ASSERT_TRUE(Close(w->handle).ok());
  EXPECT_EQ(ReadHandle(reader->handle, 2, 3), "con");
  fs_->Release(reader->handle);
  EXPECT_EQ(Get("g"), "second");
}

TEST_F(FilesystemWriteTest, MaxDirtyUploadsTheWriterEarly) {
  Reset(/*max_dirty=*/kMiB);
  auto c = Create("f");
  const std::string data = Pattern(3 * kMiB, 9);
  for (size_t off = 0; off < data.size(); off += 256 * 1024) {
    Write(c.open.handle, off, data.substr(off, 256 * 1024));
    // Never more than max_dirty plus one write staged and not uploaded.
    EXPECT_LE(fs_->dirty_bytes(), kMiB + 256 * 1024);
  }
  EXPECT_GE(store_.counters().put, 2);  // uploaded before the close
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(Get("f") == data);
  EXPECT_EQ(fs_->dirty_bytes(), 0u);
}

TEST_F(FilesystemWriteTest, ReadOnlyMountRefusesCreateAndTruncate) {
  FsConfig config;
  config.read_only = true;
  fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_);
  EXPECT_EQ(ToErrno(fs_->Create(kRootInode, "x", 0644, O_WRONLY, 0, 0).status()), EROFS);
  store_.PutObject("f", "x");
  InodeId ino = LookupIno("f");
  EXPECT_EQ(ToErrno(fs_->SetSize(ino, 0, 0).status()), EROFS);
  EXPECT_EQ(ToErrno(fs_->Open(ino, O_WRONLY).status()), EROFS);
  EXPECT_EQ(Get("f"), "x");
}

TEST_F(FilesystemWriteTest, NamesAreChecked) {
  EXPECT_EQ(ToErrno(fs_->Create(kRootInode, std::string(256, 'a'), 0644, O_WRONLY, 0, 0).status()),
            ENAMETOOLONG);
  EXPECT_EQ(ToErrno(fs_->Create(kRootInode, "..", 0644, O_WRONLY, 0, 0).status()), EINVAL);
}

TEST_F(FilesystemWriteTest, StagingDirectoryMissingIsAnErrorNotACrash) {
  FsConfig config;
  config.read_only = false;
  WriteOptions w;
  w.staging_dir = tmp_.Sub("missing");
  fs_ = std::make_unique<Filesystem>(config, store_, reader_, clock_, &metrics_, w);
  auto r = fs_->Create(kRootInode, "x", 0644, O_WRONLY, 0, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ToErrno(r.status()), EIO);
}

TEST_F(FilesystemWriteTest, UnlinkRenameAndChmodOfAFileBeingWritten) {
  // fsync, rename over the final name, close: the checkpoint pattern.
  auto c = Create("ckpt.tmp");
  Write(c.open.handle, 0, "weights v1");
  ASSERT_TRUE(fs_->Fsync(c.open.handle).ok());
  ASSERT_TRUE(fs_->Rename(kRootInode, "ckpt.tmp", kRootInode, "ckpt", 0).ok());
  Write(c.open.handle, 10, "+more");
  Filesystem::AttrChange chmod;
  chmod.mode = 0600;
  auto st = fs_->SetAttr(c.entry.ino, chmod);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_mode & 07777, 0600u);
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("ckpt"), "weights v1+more");
  EXPECT_EQ(store_.Head("ckpt")->meta["mode"], std::to_string(S_IFREG | 0600));
  EXPECT_EQ(store_.Head("ckpt.tmp").status().code(), StatusCode::kNotFound);

  // Unlinked while open: the data goes with the last close, nothing is
  // uploaded under the name.
  auto u = Create("scratch");
  Write(u.open.handle, 0, "x");
  ASSERT_TRUE(fs_->Fsync(u.open.handle).ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "scratch").ok());
  Write(u.open.handle, 1, "y");
  EXPECT_EQ(ReadHandle(u.open.handle, 0, 10), "xy");
  ASSERT_TRUE(Close(u.open.handle).ok());
  EXPECT_EQ(store_.Head("scratch").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Lookup(kRootInode, "scratch").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(List(), std::vector<std::string>{"ckpt"});
}

TEST_F(FilesystemWriteTest, AnUnlinkDuringAReleasesUploadStillRemovesTheName) {
  // The kernel sends RELEASE after close(2) returned: a reader's release
  // that uploads what a writer staged can run while the user unlinks the
  // name. The version it uploads must not survive the unlink.
  auto w = Create("f");
  Write(w.open.handle, 0, "staged");
  auto r = fs_->Open(w.entry.ino, O_RDONLY);  // shares the staged file
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::thread unlink;
  std::atomic<bool> armed{true};
  store_.SetHook([&](StoreOp op, const std::string& key) {
    if (op != StoreOp::kPut || key != "f" || !armed.exchange(false)) return;
    unlink = std::thread([&] { EXPECT_TRUE(fs_->Unlink(kRootInode, "f").ok()); });
    // The unlink defers its DELETE (the writer is open) and waits for the
    // upload to end before it orphans the staged file.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  fs_->Release(r->handle);  // uploads "staged"
  unlink.join();
  store_.SetHook(nullptr);
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kNotFound);
  clock_.Advance(std::chrono::seconds(10));  // past every cache TTL
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(List().empty());
  ASSERT_TRUE(Close(w.open.handle).ok());
  EXPECT_EQ(store_.Head("f").status().code(), StatusCode::kNotFound);
}

TEST_F(FilesystemWriteTest, RenameOfAFileNeverUploadedMovesItsStagedData) {
  // open, write, rename while open, close (no fsync before the rename):
  // the name moves at once and the data goes up under the new name.
  auto c = Create("out.tmp");
  Write(c.open.handle, 0, "fresh");
  auto renamed = fs_->Rename(kRootInode, "out.tmp", kRootInode, "out", 0);
  ASSERT_TRUE(renamed.ok()) << renamed.ToString();
  EXPECT_EQ(fs_->Lookup(kRootInode, "out.tmp").status().code(), StatusCode::kNotFound);
  auto found = fs_->Lookup(kRootInode, "out");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->ino, c.entry.ino);
  EXPECT_EQ(List(), std::vector<std::string>{"out"});
  Write(c.open.handle, 5, "+");
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("out"), "fresh+");
  EXPECT_EQ(store_.Head("out.tmp").status().code(), StatusCode::kNotFound);
}

TEST_F(FilesystemWriteTest, RenameOfAFileWrittenSinceItsUploadMovesTheNewBytes) {
  // fsync, write more, rename while open: the new name gets every byte
  // and the old name's object goes.
  auto c = Create("a");
  Write(c.open.handle, 0, "one");
  ASSERT_TRUE(fs_->Fsync(c.open.handle).ok());
  Write(c.open.handle, 3, "two");
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).ok());
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_EQ(Get("b"), "onetwo");
  EXPECT_EQ(store_.Head("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(List(), std::vector<std::string>{"b"});
}

TEST_F(FilesystemWriteTest, AFileNotUploadedYetStaysItsNamePastTheCacheTtls) {
  // Past every cache TTL the bucket still has no object for a new file
  // being written: lookup, rename and unlink go by the staged state.
  auto c = Create("new");
  Write(c.open.handle, 0, "data");
  clock_.Advance(std::chrono::seconds(3600));
  ASSERT_TRUE(fs_->Lookup(kRootInode, "new").ok());
  auto renamed = fs_->Rename(kRootInode, "new", kRootInode, "moved", 0);
  ASSERT_TRUE(renamed.ok()) << renamed.ToString();
  clock_.Advance(std::chrono::seconds(3600));
  auto unlinked = fs_->Unlink(kRootInode, "moved");
  ASSERT_TRUE(unlinked.ok()) << unlinked.ToString();
  EXPECT_EQ(fs_->Lookup(kRootInode, "moved").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadHandle(c.open.handle, 0, 10), "data");  // still open
  ASSERT_TRUE(Close(c.open.handle).ok());
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(store_.Head("new").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.Head("moved").status().code(), StatusCode::kNotFound);
}

TEST_F(FilesystemWriteTest, ARenameDuringAReleasesUploadMovesWhatItUploaded) {
  // As with unlink: a rename that comes while a release uploads waits for
  // that upload and moves the version it wrote, whole, to the new name.
  auto w = Create("f");
  Write(w.open.handle, 0, "staged");
  auto r = fs_->Open(w.entry.ino, O_RDONLY);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::thread rename;
  std::atomic<bool> armed{true};
  store_.SetHook([&](StoreOp op, const std::string& key) {
    if (op != StoreOp::kPut || key != "f" || !armed.exchange(false)) return;
    rename = std::thread([&] {
      auto s = fs_->Rename(kRootInode, "f", kRootInode, "g", 0);
      EXPECT_TRUE(s.ok()) << s.ToString();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  fs_->Release(r->handle);
  rename.join();
  store_.SetHook(nullptr);
  EXPECT_EQ(Get("g"), "staged");
  EXPECT_EQ(List(), std::vector<std::string>{"g"});
  Write(w.open.handle, 6, "+");
  ASSERT_TRUE(Close(w.open.handle).ok());
  EXPECT_EQ(Get("g"), "staged+");
  EXPECT_EQ(store_.Head("f").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace dsfs
