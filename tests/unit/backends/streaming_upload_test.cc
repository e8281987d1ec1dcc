// StreamingUpload against MemoryStore: parts go up as the file grows (part
// 1 at Finish), the object is exact, and every failure ends in an abort
// with no object.
#include "backends/streaming_upload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "backends/memory_store.h"
#include "tests/unit/backends/store_test_util.h"
#include "backends/transfer.h"

namespace dsfs {
namespace {

using store_test::Fetch;
using store_test::Pattern;

constexpr uint64_t kPart = uint64_t{5} << 20;


// An unlinked file that grows as the test writes it.
class GrowingFile {
 public:
  GrowingFile() {
    FILE* f = std::tmpfile();
    fd_ = dup(fileno(f));
    std::fclose(f);
  }
  ~GrowingFile() { close(fd_); }
  void Append(const std::string& s) {
    ASSERT_EQ(pwrite(fd_, s.data(), s.size(), static_cast<off_t>(size_)),
              static_cast<ssize_t>(s.size()));
    size_ += s.size();
  }
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};


bool Eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 10000 && !cond(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

TEST(StreamingUpload, PartsGoUpAsTheFileGrowsAndPartOneAtFinish) {
  MemoryStore store;
  GrowingFile file;
  const std::string data = Pattern(4 * kPart + 123);
  ObjectAttrs attrs;
  attrs.meta["mode"] = "33188";
  auto up = StreamingUpload::Start(store, "k", attrs, file.fd(), kPart, 2);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  file.Append(data.substr(0, 3 * kPart));
  (*up)->Advance(file.size());
  // Parts 2 and 3 are whole; part 1 waits.
  ASSERT_TRUE(Eventually([&] { return store.counters().upload_part == 2; }));
  EXPECT_EQ((*up)->streamed_end(), 3 * kPart);
  EXPECT_FALSE((*up)->Touches(0, kPart));         // part 1 may still change
  EXPECT_TRUE((*up)->Touches(kPart, 1));          // part 2 is sent
  EXPECT_TRUE((*up)->Touches(3 * kPart - 1, 1));  // part 3 too
  EXPECT_FALSE((*up)->Touches(3 * kPart, 10));    // after them: free
  file.Append(data.substr(3 * kPart));
  (*up)->Advance(file.size());
  auto put = (*up)->Finish(file.size());
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(Fetch(store, "k") == data);
  EXPECT_TRUE(put->etag.ends_with("-5")) << put->etag;
  EXPECT_EQ(store.Head("k")->meta.at("mode"), "33188");
  EXPECT_EQ(store.counters().upload_part, 5);
  EXPECT_TRUE(store.PendingUploads().empty());
}

TEST(StreamingUpload, AbandonAbortsAndLeavesNoObject) {
  MemoryStore store;
  GrowingFile file;
  file.Append(Pattern(3 * kPart));
  {
    auto up = StreamingUpload::Start(store, "k", {}, file.fd(), kPart, 4);
    ASSERT_TRUE(up.ok());
    (*up)->Advance(file.size());
    (*up)->Abandon();
  }
  EXPECT_EQ(store.counters().abort, 1);
  EXPECT_TRUE(store.PendingUploads().empty());
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  // Dropped without Finish: the same.
  {
    auto up = StreamingUpload::Start(store, "k", {}, file.fd(), kPart, 4);
    ASSERT_TRUE(up.ok());
    (*up)->Advance(file.size());
  }
  EXPECT_EQ(store.counters().abort, 2);
  EXPECT_TRUE(store.PendingUploads().empty());
}

TEST(StreamingUpload, AFailedPartOrCompleteIsTheErrorAndAborts) {
  for (StoreOp op : {StoreOp::kUploadPart, StoreOp::kComplete}) {
    MemoryStore store;
    GrowingFile file;
    file.Append(Pattern(3 * kPart + 1));
    store.FailNext(op, Status::Transient("injected"));
    auto up = StreamingUpload::Start(store, "k", {}, file.fd(), kPart, 2);
    ASSERT_TRUE(up.ok());
    (*up)->Advance(file.size());
    auto put = (*up)->Finish(file.size());
    EXPECT_EQ(put.status().code(), StatusCode::kTransient) << put.status().ToString();
    EXPECT_EQ(store.counters().abort, 1);
    EXPECT_TRUE(store.PendingUploads().empty());
    EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
  }
  // A create that fails: no upload at all.
  MemoryStore store;
  GrowingFile file;
  store.FailNext(StoreOp::kCreateMultipart, Status::Unavailable("down"));
  EXPECT_EQ(StreamingUpload::Start(store, "k", {}, file.fd(), kPart, 2).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StreamingUpload::Start(store, "k", {}, file.fd(), kPart - 1, 2).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StreamingUpload, AFileCutBelowItsStreamedPartsIsRefused) {
  MemoryStore store;
  GrowingFile file;
  file.Append(Pattern(3 * kPart));
  auto up = StreamingUpload::Start(store, "k", {}, file.fd(), kPart, 2);
  ASSERT_TRUE(up.ok());
  (*up)->Advance(file.size());
  EXPECT_EQ((*up)->Finish(2 * kPart).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.PendingUploads().empty());
  EXPECT_EQ(store.Head("k").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace dsfs
