// StreamingUpload: a multipart upload whose parts go up while the file is
// still being written, so that close waits only for the parts not started
// yet instead of the whole file (a sequential writer: dd, cp, torch.save,
// safetensors save_file; s3fs calls this streamupload).
//
// The staged file (an fd, read with pread) grows; Advance(size) starts
// every part it now holds whole, `parallel` at most in flight. Part 1 is
// held back until Finish: writers that patch a header at the start once
// they are done (zipfile, tar) then never disturb the upload. A write
// below the end of the parts started (Touches) cannot be streamed: the
// caller Abandon()s the upload (aborted) and uploads the file whole at
// close as before. Finish(size) uploads part 1 and the rest, and completes
// the upload only when every part made it; on any failure it aborts, and
// the caller falls back to a whole upload (UploadObject), so the object
// under the key is either the complete new version or the old one, never
// a part of it.
//
// The object's attributes are those given to Start (S3 takes metadata at
// CreateMultipartUpload): the caller checks at Finish that they still
// hold, and gives the file the mtime it started with.
//
// Not thread-safe: the owner (a file's write state) serializes calls; the
// parts run on threads of their own, all joined by Finish / Abandon.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/object_store.h"
#include "common/cancel.h"
#include "common/status.h"

namespace dsfs {

class StreamingUpload {
 public:
  // CreateMultipartUpload for key with attrs; the fd must stay open until
  // Finish or Abandon returns. part_size at least S3's 5 MiB minimum.
  static Result<std::unique_ptr<StreamingUpload>> Start(ObjectStore& store, const std::string& key,
                                                        const ObjectAttrs& attrs, int fd,
                                                        uint64_t part_size, int parallel);
  ~StreamingUpload();  // Abandon() unless finished
  StreamingUpload(const StreamingUpload&) = delete;
  StreamingUpload& operator=(const StreamingUpload&) = delete;

  // The staged file is `size` bytes: starts the parts after part 1 that it
  // holds whole, while fewer than `parallel` run.
  void Advance(uint64_t size);
  // Whether bytes [offset, offset + len) overlap a part already started:
  // changing them needs Abandon().
  bool Touches(uint64_t offset, uint64_t len) const;
  // End of the parts started (bytes part_size .. streamed_end()).
  uint64_t streamed_end() const { return next_offset_; }
  // Uploads what is left of a `size`-byte file and completes. size must be
  // at least streamed_end(). Any error aborts the upload.
  Result<PutResult> Finish(uint64_t size);
  // Stops the parts in flight, waits for them and aborts the upload.
  void Abandon();
  const std::string& key() const { return key_; }

 private:
  StreamingUpload(ObjectStore& store, std::string key, std::string upload_id, int fd,
                  uint64_t part_size, int parallel)
      : store_(store),
        key_(std::move(key)),
        upload_id_(std::move(upload_id)),
        fd_(fd),
        part_size_(part_size),
        parallel_(std::max(parallel, 1)) {}
  // Starts part `number` of [offset, offset + length) on a thread of its
  // own once fewer than parallel_ run (wait) or not at all (returns false).
  bool StartPart(int number, uint64_t offset, uint64_t length, bool wait);
  void JoinAll();

  ObjectStore& store_;
  const std::string key_;
  const std::string upload_id_;
  const int fd_;
  const uint64_t part_size_;
  const int parallel_;
  const std::shared_ptr<CancelToken> stop_ = std::make_shared<CancelToken>();
  bool done_ = false;
  int next_number_ = 2;               // part 1 waits for Finish
  uint64_t next_offset_ = 0;          // set by Start: part_size_

  std::mutex mu_;
  std::condition_variable cv_;        // a part ended
  int running_ = 0;                   // guarded by mu_
  Status first_error_;                // guarded by mu_
  std::vector<CompletedPart> parts_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace dsfs
