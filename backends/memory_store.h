// MemoryStore: an in-memory ObjectStore for tests. Counts every operation
// and fails on demand (a failure plan), so core tests can assert request
// counts and failure paths without a network.
//
// Writes behave as S3's do: a Put's ETag is the hex MD5 of the body, a
// completed multipart upload's "<hex MD5 of the part MD5s>-<parts>"; an
// upload that is never completed leaves no object (its parts are listed
// by PendingUploads() until it is completed or aborted); Content-Type
// defaults to application/octet-stream.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backends/object_store.h"

namespace dsfs {

enum class StoreOp {
  kHead,
  kList,
  kGet,
  kPut,
  kCopy,
  kCreateMultipart,
  kUploadPart,  // with a body or a copy source
  kComplete,
  kAbort,
  kDelete,
};

struct StoreCounters {
  int head = 0;
  int list = 0;
  int get = 0;
  uint64_t get_bytes = 0;
  int put = 0;
  int copy = 0;
  int create_multipart = 0;
  int upload_part = 0;
  int complete = 0;
  int abort = 0;
  int del = 0;
  uint64_t put_bytes = 0;  // bodies received by Put and UploadPart
};

// An upload begun and neither completed nor aborted.
struct PendingUpload {
  std::string upload_id;
  std::string key;
  int parts = 0;  // parts uploaded so far
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
  // The next GetParts that may hand parts out early (on_parts_done, with
  // If-Match) hands out its first `parts` parts, then fails with `status`:
  // a transfer cut part-way.
  void CutNextGetParts(size_t parts, Status status);
  // Called before every operation (under no lock): lets a test block or
  // count calls across threads.
  void SetHook(std::function<void(StoreOp, const std::string& key)> hook);

  StoreCounters counters() const;
  void ResetCounters();
  // Uploads begun and not yet completed or aborted, in id order (a test
  // asserts that a failed upload was aborted: none is left).
  std::vector<PendingUpload> PendingUploads() const;
  // Complete refuses (InvalidArgument, as S3's EntityTooSmall) a part other
  // than the last one smaller than this; 0 (the default) accepts any size.
  void SetMinPartSize(uint64_t bytes);

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override;
  // In place (no copy through one buffer); counted as one GET.
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override;
  std::string Describe() const override { return "memory"; }

  Result<PutResult> Put(const PutRequest& request) override;
  Result<PutResult> Copy(const CopyRequest& request) override;
  Result<std::string> CreateMultipartUpload(const std::string& key,
                                            const ObjectAttrs& attrs) override;
  Result<std::string> UploadPart(const UploadPartRequest& request) override;
  Result<PutResult> CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                            const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override;
  Status Delete(const std::string& key) override;

 private:
  struct Object {
    std::string data;
    ObjectInfo info;
  };
  struct Part {
    std::string data;
    std::string md5;  // binary
  };
  struct Upload {
    std::string key;
    ObjectAttrs attrs;
    std::map<int, Part> parts;
  };
  // Get and GetParts; exact: the parts hold exactly the bytes.
  Result<GetResult> GetInto(const GetRequest& request, std::span<const GetPart> parts, bool exact);
  // Returns the queued failure for op, if any. Requires mu_.
  std::optional<Status> TakeFailureLocked(StoreOp op);
  void RunHook(StoreOp op, const std::string& key);
  // Stores a new version written through the ObjectStore interface.
  // Requires mu_.
  void StoreLocked(const std::string& key, std::string data, std::string etag,
                   const ObjectAttrs& attrs);

  mutable std::mutex mu_;
  std::map<std::string, Object> objects_;                  // guarded by mu_
  std::map<StoreOp, std::deque<Status>> failures_;         // guarded by mu_
  std::deque<std::pair<size_t, Status>> cuts_;             // guarded by mu_
  StoreCounters counters_;                                 // guarded by mu_
  uint64_t version_ = 0;                                   // guarded by mu_
  std::function<void(StoreOp, const std::string&)> hook_;  // guarded by mu_
  std::map<std::string, Upload> uploads_;                  // guarded by mu_
  uint64_t next_upload_ = 0;                               // guarded by mu_
  uint64_t min_part_size_ = 0;                             // guarded by mu_
};

}  // namespace dsfs
