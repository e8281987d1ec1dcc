// Helpers shared by the read-ahead tests (block_fetcher, prefetcher,
// caching_reader): a map-based BlockCache with failure and blocking
// switches, a gate to hold store calls, and deterministic object bytes.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "backends/memory_store.h"
#include "cache/block_cache.h"
#include "cache/object_reader.h"
#include "common/cancel.h"

namespace dsfs::readahead_test {

// Bounded waits only: a test that would hang fails instead.
inline constexpr std::chrono::seconds kMaxWait{20};

inline std::string Pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// Opened by the test; threads Wait() on it (e.g. inside a store hook).
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --waiting_;
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // True once at least n threads are waiting (false after kMaxWait).
  bool AwaitWaiters(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kMaxWait, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

// Polls cond until true or kMaxWait has passed.
inline bool Eventually(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Reads [offset, offset+len) through r; the bytes, or the error.
inline Result<std::string> ReadAt(ObjectReader& r, const ObjectId& id, uint64_t offset,
                                  size_t len) {
  std::string buf(len, '\xee');
  DSFS_ASSIGN_OR_RETURN(size_t n, r.Read(id, offset, len, buf.data()));
  buf.resize(n);
  return buf;
}

class FakeCache : public BlockCache {
 public:
  Result<std::optional<BlockData>> Get(const BlockKey& key) override {
    std::lock_guard lock(mu_);
    ++gets_;
    if (fail_get_) return Status::IoError("fake cache: Get broken");
    auto it = blocks_.find(Tuple(key));
    if (it == blocks_.end()) return std::optional<BlockData>();
    return std::optional<BlockData>(it->second);
  }
  // Counted, then BlockCache's default (Get, which counts too, and a copy).
  Result<std::optional<BlockData>> GetRange(const BlockKey& key, uint64_t offset,
                                            size_t len) override {
    {
      std::lock_guard lock(mu_);
      ++range_gets_;
    }
    return BlockCache::GetRange(key, offset, len);
  }
  Status Put(const BlockKey& key, BlockData data) override {
    Gate* gate = nullptr;
    {
      std::lock_guard lock(mu_);
      gate = put_gate_;
    }
    if (gate) gate->Wait();
    std::lock_guard lock(mu_);
    ++puts_;
    if (fail_put_) return Status::IoError("fake cache: Put broken");
    bytes_ += data->size();
    blocks_[Tuple(key)] = std::move(data);
    return Status::Ok();
  }
  uint64_t UsedBytes() const override {
    std::lock_guard lock(mu_);
    return bytes_;
  }

  void Insert(const BlockKey& key, std::string bytes) {
    std::lock_guard lock(mu_);
    blocks_[Tuple(key)] = Buffer::Copy(bytes);
  }
  bool Contains(const BlockKey& key) const override { return Has(key); }
  bool Has(const BlockKey& key) const {
    std::lock_guard lock(mu_);
    return blocks_.contains(Tuple(key));
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return blocks_.size();
  }
  void FailGets(bool f) {
    std::lock_guard lock(mu_);
    fail_get_ = f;
  }
  void FailPuts(bool f) {
    std::lock_guard lock(mu_);
    fail_put_ = f;
  }
  // Every Put waits on gate (nullptr: no wait).
  void BlockPuts(Gate* gate) {
    std::lock_guard lock(mu_);
    put_gate_ = gate;
  }
  int gets() const {
    std::lock_guard lock(mu_);
    return gets_;
  }
  int puts() const {
    std::lock_guard lock(mu_);
    return puts_;
  }
  // GetRange calls (each also counts as a Get).
  int range_gets() const {
    std::lock_guard lock(mu_);
    return range_gets_;
  }

 private:
  using Key = std::tuple<std::string, std::string, uint64_t>;
  static Key Tuple(const BlockKey& k) { return {k.object.key, k.object.etag, k.index}; }

  mutable std::mutex mu_;
  std::map<Key, BlockData> blocks_;  // guarded by mu_
  bool fail_get_ = false;            // guarded by mu_
  bool fail_put_ = false;            // guarded by mu_
  Gate* put_gate_ = nullptr;         // guarded by mu_
  int gets_ = 0;                     // guarded by mu_
  int range_gets_ = 0;               // guarded by mu_
  int puts_ = 0;                     // guarded by mu_
  uint64_t bytes_ = 0;               // guarded by mu_
};

// A MemoryStore whose GETs, while held, wait until their request's token
// is cancelled (then fail with Cancelled before touching the data, as
// S3Store aborts a transfer) or until released; never longer than kMaxWait.
class CancellableStore : public MemoryStore {
 public:
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
    if (Status st = HoldUntilReleased(request); !st.ok()) return st;
    return MemoryStore::Get(request, buf, buf_len);
  }
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override {
    if (Status st = HoldUntilReleased(request); !st.ok()) return st;
    return MemoryStore::GetParts(request, parts);
  }
  Status HoldUntilReleased(const GetRequest& request) {
    {
      std::unique_lock lock(mu_);
      ++waiting_;
      cv_.notify_all();
      auto deadline = std::chrono::steady_clock::now() + kMaxWait;
      // A token has no wake-up: poll it.
      while (hold_ && !IsCancelled(request.cancel) && std::chrono::steady_clock::now() < deadline) {
        cv_.wait_for(lock, std::chrono::milliseconds(1));
      }
      --waiting_;
      if (IsCancelled(request.cancel)) {
        ++aborted_;
        return Status::Cancelled("GET of '" + request.key + "' aborted");
      }
    }
    return Status::Ok();
  }
  void Hold(bool hold) {
    std::lock_guard lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  // True once n GETs wait (false after kMaxWait).
  bool AwaitWaiting(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kMaxWait, [&] { return waiting_ >= n; });
  }
  int aborted() const {
    std::lock_guard lock(mu_);
    return aborted_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;  // guarded by mu_
  int waiting_ = 0;    // guarded by mu_
  int aborted_ = 0;    // guarded by mu_
};

// Puts data under key and returns its ObjectId (with the store's ETag).
inline ObjectId AddObject(MemoryStore& store, const std::string& key, const std::string& data) {
  store.PutObject(key, data);
  Result<ObjectInfo> info = store.Head(key);
  EXPECT_TRUE(info.ok());
  return ObjectId{key, info->etag, info->size};
}

}  // namespace dsfs::readahead_test
