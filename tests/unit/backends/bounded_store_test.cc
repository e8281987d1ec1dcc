#include "backends/bounded_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <string>
#include <thread>

#include "backends/memory_store.h"
#include "store_test_util.h"

namespace dsfs {
namespace {

using std::chrono::milliseconds;

// A MemoryStore whose requests can be made to hang, as an NFS hard mount does.
class HangingStore : public MemoryStore {
 public:
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
    Wait();
    return MemoryStore::Get(request, buf, buf_len);
  }
  Result<ObjectInfo> Head(const std::string& key) override {
    Wait();
    return MemoryStore::Head(key);
  }
  void Hang() {
    std::lock_guard lock(mu_);
    hung_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    hung_ = false;
    cv_.notify_all();
  }

 private:
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !hung_; });
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool hung_ = false;
};

TEST(BoundedStore, PassesAnswersThrough) {
  HangingStore inner;
  inner.PutObject("k", "0123456789");
  BoundedStore s(inner, 2, milliseconds(5000));
  EXPECT_TRUE(s.Head("k").ok());
  EXPECT_EQ(s.Head("nope").status().code(), StatusCode::kNotFound);
  char buf[4];
  GetRequest req{.key = "k", .range = ByteRange{3, 4}, .if_match = ""};
  auto r = s.Get(req, buf, sizeof(buf));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::string(buf, 4), "3456");
  EXPECT_EQ(s.timeouts(), 0u);
}

TEST(BoundedStore, AHungStoreCostsTheCallerTheDeadlineNotAThread) {
  HangingStore inner;
  inner.PutObject("k", "0123456789");
  {
    BoundedStore s(inner, 1, milliseconds(200));
    inner.Hang();
    char buf[10];
    std::memset(buf, '#', sizeof(buf));
    GetRequest req{.key = "k", .range = ByteRange{0, 10}, .if_match = ""};
    const auto start = std::chrono::steady_clock::now();
    auto r = s.Get(req, buf, sizeof(buf));
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    EXPECT_NE(r.status().message().find("did not answer"), std::string::npos);
    // A generous bound: the point is that it returns at all.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    // The only worker is stuck; a queued request waits its deadline, and the
    // next one fails at once instead of queueing behind them.
    auto queued = s.Head("k");
    EXPECT_EQ(queued.status().code(), StatusCode::kUnavailable);
    auto next = s.Head("k");
    EXPECT_EQ(next.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(next.status().message().find("all share workers busy"), std::string::npos)
        << next.status().message();
    EXPECT_GE(s.timeouts(), 3u);
    // The late answer is never written into the caller's buffer.
    inner.Release();
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(std::string(buf, 10), std::string(10, '#'));
    EXPECT_TRUE(s.Head("k").ok());
  }
}

// A hedged read whose other source answered cancels this one: the caller
// stops waiting at once, long before the deadline.
TEST(BoundedStore, ACancelledGetStopsWaiting) {
  HangingStore inner;
  inner.PutObject("k", "0123456789");
  BoundedStore s(inner, 2, milliseconds(60000));
  inner.Hang();
  auto cancel = std::make_shared<CancelToken>();
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(50));
    cancel->Cancel();
  });
  char buf[4];
  GetRequest req{.key = "k", .range = ByteRange{0, 4}, .if_match = "", .cancel = cancel};
  auto r = s.Get(req, buf, sizeof(buf));
  canceller.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  inner.Release();
}

// A MemoryStore that runs `before` ahead of the n-th Get (1-based).
class HookedStore : public MemoryStore {
 public:
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
    const int n = ++gets_;
    if (n == hook_at_ && before_) before_();
    auto r = MemoryStore::Get(request, buf, buf_len);
    if (n == hook_at_) returned_ = true;
    return r;
  }
  void HookAt(int n, std::function<void()> before) {
    hook_at_ = n;
    before_ = std::move(before);
  }
  int gets() const { return gets_; }
  bool hooked_get_returned() const { return returned_; }

 private:
  std::atomic<int> gets_{0};
  int hook_at_ = 0;
  std::function<void()> before_;
  std::atomic<bool> returned_{false};
};

// A range several chunks long, into parts whose edges fall inside chunks:
// every byte lands where it belongs, through chunk-sized inner reads.
TEST(BoundedStore, RangedReadsGoInChunksIntoTheCallersParts) {
  HookedStore inner;
  const std::string data = store_test::Pattern(11 * 1024 * 1024 + 123);
  inner.PutObject("k", data);
  BoundedStore s(inner, 2, milliseconds(60000));
  const uint64_t off = 1000;
  const size_t len = 10 * 1024 * 1024 + 77;
  std::string a(1024 * 1024 + 7, '\0'), b(5 * 1024 * 1024, '\0'), c(len - a.size() - b.size(), '\0');
  const GetPart parts[] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  GetRequest req{.key = "k", .range = ByteRange{off, len}, .if_match = ""};
  auto r = s.GetParts(req, parts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, len);
  EXPECT_EQ(a + b + c, data.substr(off, len));
  EXPECT_EQ(inner.gets(), 3);  // 4 MiB chunks
  // Get into one buffer takes the same path.
  std::string one(len, '\0');
  r = s.Get(req, one.data(), one.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(one, data.substr(off, len));
  EXPECT_EQ(s.GetParts(GetRequest{.key = "k", .range = ByteRange{0, len + 1}}, parts)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

// The object replaced between two chunks: the read fails, it never returns
// bytes of two versions.
TEST(BoundedStore, ARangedReadIsOneVersion) {
  HookedStore inner;
  const std::string v1 = store_test::Pattern(9 * 1024 * 1024, 1);
  inner.PutObject("k", v1);
  inner.HookAt(2, [&] { inner.PutObject("k", store_test::Pattern(9 * 1024 * 1024, 2)); });
  BoundedStore s(inner, 1, milliseconds(60000));
  std::string out(v1.size(), '\0');
  GetRequest req{.key = "k", .range = ByteRange{0, out.size()}, .if_match = ""};
  auto r = s.Get(req, out.data(), out.size());
  EXPECT_EQ(r.status().code(), StatusCode::kPreconditionFailed) << r.status().ToString();
}

// The caller gives up (deadline) while the worker is between two chunks:
// what the worker reads after that is never written into the caller's
// buffer.
TEST(BoundedStore, ACallerThatLeftMidReadIsNeverWrittenTo) {
  HookedStore inner;
  const std::string data = store_test::Pattern(9 * 1024 * 1024);
  inner.PutObject("k", data);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  inner.HookAt(2, [&] {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  BoundedStore s(inner, 1, milliseconds(200));
  std::string out(data.size(), '\0');
  GetRequest req{.key = "k", .range = ByteRange{0, out.size()}, .if_match = ""};
  auto r = s.Get(req, out.data(), out.size());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  std::memset(out.data(), '#', out.size());  // the caller reuses its buffer
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (int i = 0; i < 500 && !inner.hooked_get_returned(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(inner.hooked_get_returned());
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(out, std::string(out.size(), '#'));
  EXPECT_EQ(inner.gets(), 2);  // the worker stopped at the closed window
}

TEST(BoundedStore, DestructorIsBoundedWhileAWorkerIsStuck) {
  auto inner = std::make_unique<HangingStore>();
  HangingStore* raw = inner.get();
  raw->PutObject("k", "x");
  raw->Hang();
  const auto start = std::chrono::steady_clock::now();
  {
    BoundedStore s(std::move(inner), 1, milliseconds(100));
    EXPECT_FALSE(s.Head("k").ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  raw->Release();  // the detached worker owns the store and finishes now
}

}  // namespace
}  // namespace dsfs
