// ObjectStore: the narrow interface every backend implements (S3Store,
// MemoryStore, later DirStore and FallbackStore). One method per operation,
// parameter structs, errors as values. Implementations are thread-safe.
//
// Keys are full object keys (the bucket prefix already applied by the
// caller); they never start with '/'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/status.h"

namespace dsfs {

// Which kind of store answered.
enum class DataSource {
  kObjectStore,  // the bucket (OBS / S3; MemoryStore in tests)
  kShare,        // the SFS share (DirStore)
};
inline const char* DataSourceName(DataSource source) {
  return source == DataSource::kShare ? "share" : "object store";
}

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;       // opaque, quotes stripped
  int64_t mtime_sec = 0;  // Last-Modified, seconds since epoch
  // User metadata, lower-cased names without the x-amz-meta- prefix
  // (e.g. "mode", "uid", "gid", "mtime"). Only filled by Head.
  std::map<std::string, std::string> meta;
  // Content-Type, only filled by Head (s3fs marks symlinks and dirs by it
  // in some versions).
  std::string content_type;
  // Who answered: the share's answers describe share files, never OBS
  // objects (nothing records them as OBS metadata).
  DataSource source = DataSource::kObjectStore;
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;     // "/" for one directory level, "" for recursive
  std::string continuation;  // from the previous page's next_continuation
  int max_keys = 1000;
  // Set and cancelled (a FUSE interrupt: the lister was killed): the store
  // stops the transfer at its next check and fails with Cancelled.
  CancelTokenPtr cancel;
};

struct ListPage {
  std::vector<ObjectInfo> objects;               // key, size, etag, mtime only
  std::vector<std::string> common_prefixes;      // full prefixes ending in the delimiter
  std::string next_continuation;                 // empty when this is the last page
  DataSource source = DataSource::kObjectStore;  // who answered
};

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;  // > 0
};

struct GetRequest {
  std::string key;
  // Unset: the whole object. Set: exactly these bytes; the caller keeps the
  // range inside the object (it knows the size from Head/List).
  std::optional<ByteRange> range;
  // Non-empty: fail with PreconditionFailed unless the object still has
  // this ETag (If-Match), so a reader never mixes two versions.
  std::string if_match;
  // Set and cancelled: the caller no longer wants the bytes; the store
  // stops the transfer at its next check and fails with Cancelled.
  CancelTokenPtr cancel;
  // GetParts only, and only with a non-empty if_match; may be ignored (the
  // default GetParts and every Get do). A store that honours it calls it on
  // the calling thread, during the call, with n > 0 growing, once parts
  // 0 .. n-1 hold their final bytes: of version if_match (checked before
  // the first byte lands) at the range's offsets. From then on it writes
  // nothing into those parts again: it does not retry the request or fill
  // it from another source; if the rest of the transfer fails, the call
  // fails and the caller fetches the remaining parts again. A wrapper that
  // splits, re-reads or hedges a request clears it in the requests it sends.
  std::function<void(size_t parts_done)> on_parts_done;
};

// What a successful Get returned: how many bytes, which version and from
// where. A store never reports a version it did not check: S3Store takes
// the response's ETag (and refuses one that differs from If-Match),
// DirStore the share file's own "sfs-" identity.
struct GetResult {
  size_t bytes = 0;
  // The version the bytes belong to (quotes stripped). Empty only when the
  // server sent no ETag: such bytes have no identity to be cached under.
  std::string etag;
  DataSource source = DataSource::kObjectStore;
};

// One destination of GetParts: the next `length` bytes of the range.
struct GetPart {
  char* data = nullptr;
  size_t length = 0;
};

// Copies `len` bytes into the parts, starting `at` bytes into the range
// they make up (parts laid end to end); bytes past the last part are
// dropped.
void CopyIntoParts(std::span<const GetPart> parts, uint64_t at, const char* bytes, size_t len);

// GetParts through a store that can only Get into one buffer: one
// temporary buffer of the whole range, then a copy into each part.
Result<GetResult> GetPartsThroughBuffer(std::span<const GetPart> parts,
                                        const std::function<Result<GetResult>(char*, size_t)>& get);

// ---- Writes (the write path; stores that cannot write keep the defaults,
// which fail with NotSupported) ----

// The bytes a PUT or UploadPart sends: `length` bytes from memory
// (`data`, when fd < 0) or from a file at `offset` (a staged file on the
// cache disk, read with pread as it is sent; the caller keeps it open and
// unchanged until the call returns).
struct Body {
  const char* data = nullptr;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What a write stores beside the bytes (the s3fs/obsfs on-bucket format
// lives in these: x-amz-meta-mode/uid/gid/mtime, Content-Type).
struct ObjectAttrs {
  // User metadata, lower-case names without the x-amz-meta- prefix.
  std::map<std::string, std::string> meta;
  // Empty: application/octet-stream.
  std::string content_type;
};

struct PutRequest {
  std::string key;
  Body body;
  ObjectAttrs attrs;
  CancelTokenPtr cancel;
};

// What a completed write created: the new version.
struct PutResult {
  std::string etag;  // quotes stripped; never empty on success
};

// Server-side CopyObject (at most 5 GiB of source; larger objects are
// copied part by part with UploadPart's copy source).
struct CopyRequest {
  std::string source_key;
  // Non-empty: fail with PreconditionFailed unless the source still has
  // this ETag (x-amz-copy-source-if-match), so a rename never copies a
  // version other than the one it looked at.
  std::string source_if_match;
  std::string key;  // the destination
  // Set: the destination gets these attributes (metadata directive
  // REPLACE); unset: the source's are copied.
  std::optional<ObjectAttrs> attrs;
  CancelTokenPtr cancel;
};

struct UploadPartRequest {
  std::string key;
  std::string upload_id;
  int part_number = 0;  // 1..10000
  // The part's bytes: `body`, or when copy_source is non-empty, the bytes
  // copy_range of object copy_source (UploadPartCopy), which must still
  // have ETag copy_source_if_match when that is non-empty.
  Body body;
  std::string copy_source;
  ByteRange copy_range;
  std::string copy_source_if_match;
  CancelTokenPtr cancel;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // as UploadPart returned it
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // NotFound when the key does not exist.
  virtual Result<ObjectInfo> Head(const std::string& key) = 0;

  // One page of ListObjectsV2.
  virtual Result<ListPage> List(const ListRequest& request) = 0;

  // Reads the requested bytes into buf (capacity buf_len). The result's
  // byte count is exactly range.length for a ranged request (the whole
  // object otherwise). A body shorter than promised, or a Content-Range
  // other than the one asked for, is a Transient error, never a short
  // success. A returned ETag other than a non-empty If-Match is
  // PreconditionFailed. Fails with InvalidArgument if buf_len is too small.
  virtual Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) = 0;
  // Get of a ranged request whose bytes land in parts, in order (their
  // lengths add up to range.length): one GET fills several cache blocks,
  // each its own buffer. The default goes through Get and copies (see
  // GetPartsThroughBuffer); stores that can write in place override it.
  virtual Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts);

  // For logs: "s3://bucket@host", "dir:/mnt/share".
  virtual std::string Describe() const = 0;

  // ---- Writes ----
  // A write either creates the whole new version or changes nothing: a
  // failed or cancelled call never leaves a partial object under `key`.
  // Every body is sent with its Content-MD5, so the server refuses bytes
  // damaged on the way; a single-part ETag that is not the body's MD5 is
  // Corruption.

  // PutObject of body.length bytes (at most 5 GiB).
  virtual Result<PutResult> Put(const PutRequest& request);
  virtual Result<PutResult> Copy(const CopyRequest& request);
  // Starts a multipart upload; returns its upload id.
  virtual Result<std::string> CreateMultipartUpload(const std::string& key,
                                                    const ObjectAttrs& attrs);
  // Uploads (or copies) one part; returns the part's ETag.
  virtual Result<std::string> UploadPart(const UploadPartRequest& request);
  // Parts in ascending part_number order. The result's ETag is the new
  // version's ("<md5 of part md5s>-<count>" on S3).
  virtual Result<PutResult> CompleteMultipartUpload(const std::string& key,
                                                    const std::string& upload_id,
                                                    const std::vector<CompletedPart>& parts);
  // Drops an upload and its parts (idempotent: an unknown id is OK).
  virtual Status AbortMultipartUpload(const std::string& key, const std::string& upload_id);
  // Deletes `key` (OK when it does not exist, as S3 answers).
  virtual Status Delete(const std::string& key);
};

}  // namespace dsfs
