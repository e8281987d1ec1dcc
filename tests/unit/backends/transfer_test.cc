// UploadObject / CopyObject against MemoryStore: single PUT vs multipart by
// size, part sizes, parallelism, and every failure step ending in an abort
// and no object.
#include "backends/transfer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "backends/memory_store.h"
#include "tests/unit/backends/store_test_util.h"

namespace dsfs {
namespace {

using store_test::Fetch;
using store_test::Pattern;

constexpr uint64_t kMiB = uint64_t{1} << 20;



Body MemBody(const std::string& s) {
  Body b;
  b.data = s.data();
  b.length = s.size();
  return b;
}

ObjectAttrs Attrs() {
  ObjectAttrs a;
  a.meta["mode"] = "33188";
  a.meta["mtime"] = "1700000000.5";
  return a;
}

TEST(PartSizeFor, RaisedToFitTenThousandParts) {
  EXPECT_EQ(PartSizeFor(0, 16 * kMiB), 16 * kMiB);
  EXPECT_EQ(PartSizeFor(100 * kMiB, 16 * kMiB), 16 * kMiB);
  // Never below S3's 5 MiB minimum part.
  EXPECT_EQ(PartSizeFor(10 * kMiB, 1 * kMiB), 5 * kMiB);
  // 5 TiB / 10000 = 549755814 bytes, rounded up to 525 MiB.
  EXPECT_EQ(PartSizeFor(uint64_t{5} << 40, 16 * kMiB), 525 * kMiB);
  const uint64_t size = uint64_t{5} << 40;
  const uint64_t part = PartSizeFor(size, 16 * kMiB);
  EXPECT_LE((size + part - 1) / part, static_cast<uint64_t>(kMaxParts));
  // Just over 16 MiB * 10000: 17 MiB parts.
  EXPECT_EQ(PartSizeFor(16 * kMiB * 10000 + 1, 16 * kMiB), 17 * kMiB);
}

TEST(UploadObject, SmallObjectIsOnePut) {
  MemoryStore store;
  const std::string data = Pattern(1000);
  TransferOptions opt;
  opt.part_size = 5 * kMiB;
  auto r = UploadObject(store, "a/b", MemBody(data), Attrs(), opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->etag.empty());
  EXPECT_EQ(Fetch(store, "a/b"), data);
  auto c = store.counters();
  EXPECT_EQ(c.put, 1);
  EXPECT_EQ(c.create_multipart, 0);
  auto head = store.Head("a/b");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, r->etag);
  EXPECT_EQ(head->meta["mode"], "33188");
  EXPECT_EQ(head->meta["mtime"], "1700000000.5");
}

TEST(UploadObject, EmptyObjectIsOnePut) {
  MemoryStore store;
  auto r = UploadObject(store, "empty", Body{}, Attrs(), TransferOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Fetch(store, "empty"), "");
  EXPECT_EQ(store.counters().put, 1);
}

// Edge sizes around the part size: one PUT up to it, multipart above.
TEST(UploadObject, EdgeSizesFromAFile) {
  for (uint64_t size : {5 * kMiB - 1, 5 * kMiB, 5 * kMiB + 1, 10 * kMiB + 17}) {
    SCOPED_TRACE(size);
    MemoryStore store;
    store.SetMinPartSize(5 * kMiB);
    const std::string data = Pattern(size, static_cast<unsigned>(size));
    char path[] = "/tmp/dsfs-transfer-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    Body body;
    body.fd = fd;
    body.length = size;
    TransferOptions opt;
    opt.part_size = 5 * kMiB;
    opt.parallel = 3;
    auto r = UploadObject(store, "k", body, Attrs(), opt);
    ::close(fd);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Fetch(store, "k"), data);
    auto c = store.counters();
    if (size <= 5 * kMiB) {
      EXPECT_EQ(c.put, 1);
      EXPECT_EQ(c.upload_part, 0);
    } else {
      EXPECT_EQ(c.put, 0);
      EXPECT_EQ(c.create_multipart, 1);
      EXPECT_EQ(c.upload_part, static_cast<int>((size + 5 * kMiB - 1) / (5 * kMiB)));
      EXPECT_EQ(c.complete, 1);
      EXPECT_NE(r->etag.find('-'), std::string::npos) << r->etag;
      EXPECT_EQ(store.Head("k")->meta["mode"], "33188");
    }
    EXPECT_TRUE(store.PendingUploads().empty());
  }
}

TEST(UploadObject, PartsGoUpInParallel) {
  MemoryStore store;
  const std::string data = Pattern(20 * kMiB);
  std::atomic<int> in_flight{0};
  std::atomic<int> most{0};
  store.SetHook([&](StoreOp op, const std::string&) {
    if (op != StoreOp::kUploadPart) return;
    int now = ++in_flight;
    int prev = most.load();
    while (now > prev && !most.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    --in_flight;
  });
  TransferOptions opt;
  opt.part_size = 5 * kMiB;
  opt.parallel = 4;
  auto r = UploadObject(store, "k", MemBody(data), Attrs(), opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Fetch(store, "k"), data);
  EXPECT_GE(most.load(), 2);
  EXPECT_LE(most.load(), 4);
}

struct FailCase {
  StoreOp op;
  const char* name;
};

// A failure at any step: the error comes back, the upload is aborted and
// no object appears under the key (nor does an older one change).
TEST(UploadObject, FailureAtEveryStepAbortsAndLeavesNoObject) {
  for (FailCase fc :
       {FailCase{StoreOp::kCreateMultipart, "create"}, FailCase{StoreOp::kUploadPart, "part"},
        FailCase{StoreOp::kComplete, "complete"}}) {
    SCOPED_TRACE(fc.name);
    MemoryStore store;
    store.FailNext(fc.op, Status::Transient("injected"));
    const std::string data = Pattern(12 * kMiB);
    TransferOptions opt;
    opt.part_size = 5 * kMiB;
    opt.parallel = 2;
    auto r = UploadObject(store, "k", MemBody(data), Attrs(), opt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTransient);
    EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(store.PendingUploads().empty());
    auto c = store.counters();
    EXPECT_EQ(c.abort, fc.op == StoreOp::kCreateMultipart ? 0 : 1);
    if (fc.op == StoreOp::kUploadPart) {
      EXPECT_EQ(c.complete, 0);
    }
  }
}

TEST(UploadObject, FailedPutLeavesTheOldVersion) {
  MemoryStore store;
  store.PutObject("k", "old");
  store.FailNext(StoreOp::kPut, Status::Transient("injected"));
  auto r = UploadObject(store, "k", MemBody("new"), Attrs(), TransferOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Fetch(store, "k"), "old");
}

TEST(UploadObject, CancelAbortsTheUpload) {
  MemoryStore store;
  const std::string data = Pattern(30 * kMiB);
  auto cancel = std::make_shared<CancelToken>();
  std::atomic<int> parts{0};
  store.SetHook([&](StoreOp op, const std::string&) {
    if (op == StoreOp::kUploadPart && ++parts == 2) cancel->Cancel();
  });
  TransferOptions opt;
  opt.part_size = 5 * kMiB;
  opt.parallel = 1;
  opt.cancel = cancel;
  auto r = UploadObject(store, "k", MemBody(data), Attrs(), opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.PendingUploads().empty());
  EXPECT_EQ(store.counters().complete, 0);
  EXPECT_LT(parts.load(), 6);
}

TEST(CopyObject, SmallCopyKeepsMetadataAndPinsTheVersion) {
  MemoryStore store;
  store.PutObject("src", "hello", {{"mode", "33261"}});
  auto etag = store.Head("src")->etag;
  auto r = CopyObject(store, "src", etag, 5, "dst", std::nullopt, TransferOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Fetch(store, "dst"), "hello");
  EXPECT_EQ(store.Head("dst")->meta["mode"], "33261");
  auto stale = CopyObject(store, "src", "not-the-etag", 5, "dst2", std::nullopt, {});
  EXPECT_EQ(stale.status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(store.Head("dst2").status().code(), StatusCode::kNotFound);
}

TEST(CopyObject, FailedCopyLeavesNoObject) {
  MemoryStore store;
  store.PutObject("src", "hello");
  store.FailNext(StoreOp::kCopy, Status::Transient("injected"));
  auto r = CopyObject(store, "src", "", 5, "dst", std::nullopt, TransferOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(store.Head("dst").status().code(), StatusCode::kNotFound);
}

TEST(CopyObject, LargeCopyGoesPartByPart) {
  MemoryStore store;
  const std::string data = Pattern(12 * kMiB);
  store.PutObject("src", data, {{"mode", "33261"}}, "text/plain");
  const std::string etag = store.Head("src")->etag;
  TransferOptions opt;
  opt.part_size = 5 * kMiB;
  opt.max_single_copy = 1 * kMiB;
  auto r = CopyObject(store, "src", etag, data.size(), "dst", std::nullopt, opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Fetch(store, "dst"), data);
  auto head = store.Head("dst");
  EXPECT_EQ(head->meta["mode"], "33261");
  EXPECT_EQ(head->content_type, "text/plain");
  auto c = store.counters();
  EXPECT_EQ(c.copy, 0);
  EXPECT_EQ(c.upload_part, 3);
  EXPECT_EQ(c.complete, 1);
}

TEST(CopyObject, FailedPartCopyAborts) {
  MemoryStore store;
  store.PutObject("src", Pattern(12 * kMiB));
  store.FailNext(StoreOp::kUploadPart, Status::Transient("injected"));
  TransferOptions opt;
  opt.part_size = 5 * kMiB;
  opt.max_single_copy = 1 * kMiB;
  auto r = CopyObject(store, "src", "", 12 * kMiB, "dst", std::nullopt, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(store.Head("dst").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.PendingUploads().empty());
  EXPECT_EQ(store.counters().abort, 1);
}

}  // namespace
}  // namespace dsfs
