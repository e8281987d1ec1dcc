#include "backends/streaming_upload.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "backends/transfer.h"
#include "common/logging.h"

namespace dsfs {

Result<std::unique_ptr<StreamingUpload>> StreamingUpload::Start(ObjectStore& store,
                                                                const std::string& key,
                                                                const ObjectAttrs& attrs, int fd,
                                                                uint64_t part_size,
                                                                int parallel) {
  if (part_size < kMinPartSize) {
    return Status::InvalidArgument("a streamed upload's parts are at least 5 MiB");
  }
  DSFS_ASSIGN_OR_RETURN(std::string id, store.CreateMultipartUpload(key, attrs));
  std::unique_ptr<StreamingUpload> up(
      new StreamingUpload(store, key, std::move(id), fd, part_size, parallel));
  up->next_offset_ = part_size;
  return up;
}

StreamingUpload::~StreamingUpload() {
  if (!done_) Abandon();
}

bool StreamingUpload::StartPart(int number, uint64_t offset, uint64_t length, bool wait) {
  {
    std::unique_lock lock(mu_);
    if (wait) {
      cv_.wait(lock, [&] { return running_ < parallel_; });
    } else if (running_ >= parallel_) {
      return false;
    }
    ++running_;
  }
  threads_.emplace_back([this, number, offset, length] {
    UploadPartRequest req;
    req.key = key_;
    req.upload_id = upload_id_;
    req.part_number = number;
    req.body.fd = fd_;
    req.body.offset = offset;
    req.body.length = length;
    req.cancel = stop_;
    Result<std::string> etag = stop_->cancelled()
                                   ? Result<std::string>(Status::Cancelled("upload abandoned"))
                                   : store_.UploadPart(req);
    if (etag.ok() && etag->empty()) {
      etag = Status::Corruption("the server returned no ETag");
    }
    std::lock_guard lock(mu_);
    if (etag.ok()) {
      parts_.push_back(CompletedPart{number, std::move(etag).value()});
    } else if (first_error_.ok()) {
      first_error_ = etag.status().WithContext("part " + std::to_string(number));
      // The upload cannot complete: the parts in flight stop, no more
      // start (and a store that is down sees one failure, not one per part).
      stop_->Cancel();
    }
    --running_;
    cv_.notify_all();
  });
  return true;
}

void StreamingUpload::Advance(uint64_t size) {
  if (done_) return;
  {
    std::lock_guard lock(mu_);
    if (!first_error_.ok()) return;  // Finish reports it
  }
  // Part numbers past kMaxParts are never started: Finish then fails and
  // the caller uploads the file whole with larger parts.
  while (next_number_ <= kMaxParts && next_offset_ + part_size_ <= size) {
    if (!StartPart(next_number_, next_offset_, part_size_, /*wait=*/false)) return;
    ++next_number_;
    next_offset_ += part_size_;
  }
}

bool StreamingUpload::Touches(uint64_t offset, uint64_t len) const {
  // Part 1 is not started before Finish: only bytes from part_size_ up.
  return offset < next_offset_ && offset + len > part_size_;
}

void StreamingUpload::JoinAll() {
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Result<PutResult> StreamingUpload::Finish(uint64_t size) {
  auto fail = [&](Status error) -> Result<PutResult> {
    Abandon();
    return error;
  };
  if (done_) return Status::InvalidArgument("the streamed upload is over");
  if (size < next_offset_) {
    return fail(Status::InvalidArgument("the file is shorter than its streamed parts"));
  }
  const uint64_t parts_needed = (size + part_size_ - 1) / part_size_;
  if (parts_needed > static_cast<uint64_t>(kMaxParts)) {
    return fail(Status::NotSupported("more than 10,000 parts of " + std::to_string(part_size_) +
                                     " bytes"));
  }
  // The rest, then part 1, `parallel` at a time, unless a part failed.
  while (next_offset_ < size && !stop_->cancelled()) {
    const uint64_t len = std::min(part_size_, size - next_offset_);
    StartPart(next_number_++, next_offset_, len, /*wait=*/true);
    next_offset_ += len;
  }
  if (!stop_->cancelled()) StartPart(1, 0, std::min(part_size_, size), /*wait=*/true);
  JoinAll();
  std::vector<CompletedPart> parts;
  {
    std::lock_guard lock(mu_);
    if (!first_error_.ok()) {
      Status e = first_error_;
      return fail(e);
    }
    parts = parts_;
  }
  std::sort(parts.begin(), parts.end(),
            [](const CompletedPart& a, const CompletedPart& b) {
              return a.part_number < b.part_number;
            });
  // Never completed with a part missing.
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].part_number != static_cast<int>(i) + 1) {
      return fail(Status::IoError("a part of the streamed upload did not finish"));
    }
  }
  if (parts.size() != parts_needed) {
    return fail(Status::IoError("the streamed upload has " + std::to_string(parts.size()) +
                                " parts, not " + std::to_string(parts_needed)));
  }
  auto done = store_.CompleteMultipartUpload(key_, upload_id_, parts);
  if (done.ok() && done->etag.empty()) {
    done = Status::Corruption("CompleteMultipartUpload returned no ETag");
  }
  if (!done.ok()) return fail(done.status().WithContext("completing the streamed upload"));
  done_ = true;
  return done;
}

void StreamingUpload::Abandon() {
  if (done_) return;
  done_ = true;
  stop_->Cancel();
  JoinAll();
  Status aborted = store_.AbortMultipartUpload(key_, upload_id_);
  if (!aborted.ok()) {
    spdlog::warn(
        "aborting the streamed upload of '{}' failed (its parts stay until the bucket's "
        "lifecycle rule removes them): {}",
        EscapeForLog(key_), EscapeForLog(aborted.ToString()));
  }
}

}  // namespace dsfs
