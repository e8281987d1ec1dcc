#include "backends/transfer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.h"

namespace dsfs {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// How often the waiting caller looks at the caller's cancel token, to pass
// it on to the parts in flight (which only see the transfer's own token).
constexpr auto kCancelPoll = std::chrono::milliseconds(50);

// One part of a multipart transfer: its number and byte range.
struct PartPlan {
  int number = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

std::vector<PartPlan> PlanParts(uint64_t size, uint64_t part_size) {
  std::vector<PartPlan> parts;
  for (uint64_t off = 0; off < size; off += part_size) {
    parts.push_back({static_cast<int>(parts.size()) + 1, off, std::min(part_size, size - off)});
  }
  return parts;
}

// Runs do_part for every part, at most `parallel` at a time, on threads
// owned by this call (all joined before it returns). The first failure (or
// the caller's cancel) cancels the parts in flight and starts no more.
// Returns the parts' ETags in part order, or the first error.
Result<std::vector<CompletedPart>> RunParts(
    const std::vector<PartPlan>& plan, int parallel, const CancelTokenPtr& caller_cancel,
    const std::function<Result<std::string>(const PartPlan&, const CancelTokenPtr&)>& do_part) {
  auto stop = std::make_shared<CancelToken>();
  std::mutex mu;
  std::condition_variable done_cv;
  size_t next = 0;                               // guarded by mu
  int running = 0;                               // guarded by mu
  Status first_error;                            // guarded by mu
  std::vector<CompletedPart> done(plan.size());  // slot i written by one worker only

  auto worker = [&] {
    while (true) {
      size_t i;
      {
        std::lock_guard lock(mu);
        if (next >= plan.size() || !first_error.ok()) break;
        i = next++;
      }
      // The caller's token too: the waiting caller passes it on to `stop`
      // only every kCancelPoll, and fast parts would all start by then.
      if (stop->cancelled() || IsCancelled(caller_cancel)) break;
      auto etag = do_part(plan[i], stop);
      if (etag.ok() && etag->empty()) {
        etag = Status::Corruption("part " + std::to_string(plan[i].number) +
                                  ": the server returned no ETag");
      }
      if (!etag.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok()) {
          first_error = etag.status().WithContext("part " + std::to_string(plan[i].number));
        }
        stop->Cancel();
        break;
      }
      done[i] = CompletedPart{plan[i].number, std::move(etag).value()};
    }
    std::lock_guard lock(mu);
    --running;
    done_cv.notify_all();
  };

  const int threads =
      static_cast<int>(std::min<size_t>(plan.size(), static_cast<size_t>(std::max(1, parallel))));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  {
    std::lock_guard lock(mu);
    running = threads;
  }
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  {
    std::unique_lock lock(mu);
    while (running > 0) {
      done_cv.wait_for(lock, kCancelPoll);
      if (IsCancelled(caller_cancel) && !stop->cancelled()) {
        stop->Cancel();
        if (first_error.ok()) first_error = Status::Cancelled("the transfer was cancelled");
      }
    }
  }
  for (auto& t : pool) t.join();
  if (!first_error.ok()) return first_error;
  if (IsCancelled(caller_cancel)) return Status::Cancelled("the transfer was cancelled");
  for (const CompletedPart& p : done) {
    // Never complete an upload with a part missing.
    if (p.part_number == 0 || p.etag.empty()) {
      return Status::IoError("a part of the transfer did not finish");
    }
  }
  return done;
}

// Completes the upload when every part made it, else aborts it. Returns
// the first error (the abort's own failure is logged: the upload was
// never completed, so no object appeared, and the bucket's lifecycle rule
// for incomplete uploads removes its parts).
Result<PutResult> FinishMultipart(ObjectStore& store, const std::string& key,
                                  const std::string& upload_id,
                                  const Result<std::vector<CompletedPart>>& parts,
                                  const CancelTokenPtr& cancel) {
  Status error = parts.status();
  if (error.ok() && IsCancelled(cancel)) error = Status::Cancelled("the transfer was cancelled");
  if (error.ok()) {
    auto done = store.CompleteMultipartUpload(key, upload_id, *parts);
    if (done.ok() && done->etag.empty()) {
      done = Status::Corruption("CompleteMultipartUpload of '" + EscapeForLog(key) +
                                "' returned no ETag");
    }
    if (done.ok()) return done;
    error = done.status().WithContext("completing the upload");
  }
  Status aborted = store.AbortMultipartUpload(key, upload_id);
  if (!aborted.ok()) {
    spdlog::warn(
        "aborting the multipart upload of '{}' failed (its parts stay until the "
        "bucket's lifecycle rule removes them): {}",
        EscapeForLog(key), EscapeForLog(aborted.ToString()));
  }
  return error;
}

}  // namespace

uint64_t PartSizeFor(uint64_t size, uint64_t part_size) {
  const uint64_t by_count = (size + kMaxParts - 1) / kMaxParts;
  const uint64_t rounded = (by_count + kMiB - 1) / kMiB * kMiB;
  return std::max({part_size, rounded, kMinPartSize});
}

Result<PutResult> UploadObject(ObjectStore& store, const std::string& key, const Body& body,
                               const ObjectAttrs& attrs, const TransferOptions& options) {
  const uint64_t size = body.length;
  if (size > kMaxUploadSize) {
    return Status::InvalidArgument("'" + EscapeForLog(key) + "': " + std::to_string(size) +
                                   " bytes is more than the 5 TiB an object can hold");
  }
  if (IsCancelled(options.cancel)) return Status::Cancelled("the upload was cancelled");
  const uint64_t part_size = PartSizeFor(size, options.part_size);
  if (size <= part_size && size <= kMaxSinglePut) {
    PutRequest req{.key = key, .body = body, .attrs = attrs, .cancel = options.cancel};
    auto put = store.Put(req);
    if (put.ok() && put->etag.empty()) {
      return Status::Corruption("PUT of '" + EscapeForLog(key) + "' returned no ETag");
    }
    return put;
  }
  DSFS_ASSIGN_OR_RETURN(std::string upload_id, store.CreateMultipartUpload(key, attrs));
  auto parts = RunParts(PlanParts(size, part_size), options.parallel, options.cancel,
                        [&](const PartPlan& p, const CancelTokenPtr& stop) -> Result<std::string> {
                          UploadPartRequest req;
                          req.key = key;
                          req.upload_id = upload_id;
                          req.part_number = p.number;
                          req.body = body;
                          if (body.fd >= 0) {
                            req.body.offset = body.offset + p.offset;
                          } else {
                            req.body.data = body.data + p.offset;
                          }
                          req.body.length = p.length;
                          req.cancel = stop;
                          return store.UploadPart(req);
                        });
  return FinishMultipart(store, key, upload_id, parts, options.cancel);
}

Result<PutResult> CopyObject(ObjectStore& store, const std::string& src_key,
                             const std::string& src_etag, uint64_t size, const std::string& dst_key,
                             const std::optional<ObjectAttrs>& attrs,
                             const TransferOptions& options) {
  if (IsCancelled(options.cancel)) return Status::Cancelled("the copy was cancelled");
  if (size <= options.max_single_copy) {
    CopyRequest req;
    req.source_key = src_key;
    req.source_if_match = src_etag;
    req.key = dst_key;
    req.attrs = attrs;
    req.cancel = options.cancel;
    auto copied = store.Copy(req);
    if (copied.ok() && copied->etag.empty()) {
      return Status::Corruption("copy to '" + EscapeForLog(dst_key) + "' returned no ETag");
    }
    return copied;
  }
  // A multipart upload takes its metadata at the start: the source's,
  // unless the caller gave new ones.
  ObjectAttrs dst_attrs;
  if (attrs) {
    dst_attrs = *attrs;
  } else {
    DSFS_ASSIGN_OR_RETURN(ObjectInfo head, store.Head(src_key));
    if (!src_etag.empty() && head.etag != src_etag) {
      return Status::PreconditionFailed("'" + EscapeForLog(src_key) +
                                        "' changed before it was copied");
    }
    dst_attrs.meta = head.meta;
    dst_attrs.content_type = head.content_type;
  }
  // Copied parts have no 5 GiB limit but the part count is the same.
  const uint64_t part_size = PartSizeFor(size, options.part_size);
  DSFS_ASSIGN_OR_RETURN(std::string upload_id, store.CreateMultipartUpload(dst_key, dst_attrs));
  auto parts = RunParts(PlanParts(size, part_size), options.parallel, options.cancel,
                        [&](const PartPlan& p, const CancelTokenPtr& stop) -> Result<std::string> {
                          UploadPartRequest req;
                          req.key = dst_key;
                          req.upload_id = upload_id;
                          req.part_number = p.number;
                          req.copy_source = src_key;
                          req.copy_range = ByteRange{p.offset, p.length};
                          req.copy_source_if_match = src_etag;
                          req.cancel = stop;
                          return store.UploadPart(req);
                        });
  return FinishMultipart(store, dst_key, upload_id, parts, options.cancel);
}

}  // namespace dsfs
