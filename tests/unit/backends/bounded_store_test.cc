#include "backends/bounded_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <string>
#include <thread>

#include "backends/memory_store.h"

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
