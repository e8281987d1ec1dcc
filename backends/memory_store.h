// MemoryStore: an in-memory ObjectStore for tests. Counts every operation
// and fails on demand (a failure plan), so core tests can assert request
// counts and failure paths without a network.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "backends/object_store.h"

namespace dsfs {

enum class StoreOp { kHead, kList, kGet };

struct StoreCounters {
  int head = 0;
  int list = 0;
  int get = 0;
  uint64_t get_bytes = 0;
};

class MemoryStore : public ObjectStore {
 public:
  // Adds or replaces an object; the ETag is derived from the content and a
  // version counter, so a replaced object always has a new ETag.
  void PutObject(const std::string& key, std::string data,
                 std::map<std::string, std::string> meta = {}, std::string content_type = "");
  // Replaces the ETag of the object at key (e.g. with the MD5 S3 gives a
  // single-part upload, instead of the default unique one).
  void SetEtag(const std::string& key, std::string etag);
  void RemoveObject(const std::string& key);

  // The next `count` calls of `op` fail with `status` (queued in order).
  void FailNext(StoreOp op, Status status, int count = 1);
  // Called before every operation (under no lock): lets a test block or
  // count calls across threads.
  void SetHook(std::function<void(StoreOp, const std::string& key)> hook);

  StoreCounters counters() const;
  void ResetCounters();

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  std::string Describe() const override { return "memory"; }

 private:
  struct Object {
    std::string data;
    ObjectInfo info;
  };
  // Returns the queued failure for op, if any. Requires mu_.
  std::optional<Status> TakeFailureLocked(StoreOp op);
  void RunHook(StoreOp op, const std::string& key);

  mutable std::mutex mu_;
  std::map<std::string, Object> objects_;                 // guarded by mu_
  std::map<StoreOp, std::deque<Status>> failures_;         // guarded by mu_
  StoreCounters counters_;                                 // guarded by mu_
  uint64_t version_ = 0;                                   // guarded by mu_
  std::function<void(StoreOp, const std::string&)> hook_;  // guarded by mu_
};

}  // namespace dsfs
