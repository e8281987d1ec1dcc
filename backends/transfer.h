// Whole-object transfers on top of ObjectStore's single requests: an
// upload of a staged file (one PUT, or a parallel multipart upload) and a
// server-side copy (one CopyObject, or a multipart copy part by part).
//
// Either call creates the whole new version under the destination key or
// nothing: on any failure (or cancel) a multipart upload is aborted, and it
// is never completed with a part missing.
//
// For rename (the namespace helper): CopyObject(store, old_key, old_etag,
// size, new_key, std::nullopt, options) copies the object with its
// metadata, pinned to the version looked at; delete the old key only after
// it returned OK.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends/object_store.h"
#include "common/cancel.h"
#include "common/config.h"
#include "common/status.h"

namespace dsfs {

// S3's limits (OBS has the same): parts per upload, smallest part but the
// last, largest single PUT / CopyObject source, largest object.
inline constexpr int kMaxParts = 10000;
inline constexpr uint64_t kMinPartSize = uint64_t{5} << 20;
inline constexpr uint64_t kMaxSinglePut = uint64_t{5} << 30;
inline constexpr uint64_t kMaxUploadSize = uint64_t{5} << 40;

struct TransferOptions {
  // The smallest part size (multipart_size=); raised per object so that it
  // fits in kMaxParts parts (see PartSizeFor).
  uint64_t part_size = WriteConfig{}.multipart_size;
  // Parts in flight at once (parallel_count=).
  int parallel = WriteConfig{}.parallel_count;
  // Cancelled: no new part starts, parts in flight stop at their next
  // check, and the upload is aborted (Cancelled).
  CancelTokenPtr cancel;
  // CopyObject copies objects up to this size with one Copy request and
  // larger ones part by part. S3's limit; only tests lower it (so the
  // multipart copy runs without a 5 GiB object).
  uint64_t max_single_copy = kMaxSinglePut;
};

// The part size of a `size`-byte object: max(part_size, ceil(size /
// kMaxParts) rounded up to 1 MiB), and never below S3's 5 MiB minimum.
uint64_t PartSizeFor(uint64_t size, uint64_t part_size);

// Uploads body.length bytes of `body` (memory, or a staged fd read with
// pread from body.offset on; kept open and unchanged until this returns)
// as `key` with `attrs`: one Put when it fits in one part, else a
// multipart upload with `parallel` parts in flight. Returns the new
// version's ETag.
Result<PutResult> UploadObject(ObjectStore& store, const std::string& key, const Body& body,
                               const ObjectAttrs& attrs, const TransferOptions& options);

// Copies object `src_key` (which must still have ETag src_etag when that
// is non-empty, and is `size` bytes) to `dst_key`: with `attrs` when set,
// else with the source's metadata and Content-Type. One Copy up to 5 GiB,
// else a multipart copy (UploadPartCopy of byte ranges).
Result<PutResult> CopyObject(ObjectStore& store, const std::string& src_key,
                             const std::string& src_etag, uint64_t size, const std::string& dst_key,
                             const std::optional<ObjectAttrs>& attrs,
                             const TransferOptions& options);

}  // namespace dsfs
