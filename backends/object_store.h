// ObjectStore: the narrow interface every backend implements (S3Store,
// MemoryStore, later DirStore and FallbackStore). One method per operation,
// parameter structs, errors as values. Implementations are thread-safe.
//
// Keys are full object keys (the bucket prefix already applied by the
// caller); they never start with '/'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
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
  std::string delimiter;      // "/" for one directory level, "" for recursive
  std::string continuation;   // from the previous page's next_continuation
  int max_keys = 1000;
  // Set and cancelled (a FUSE interrupt: the lister was killed): the store
  // stops the transfer at its next check and fails with Cancelled.
  CancelTokenPtr cancel;
};

struct ListPage {
  std::vector<ObjectInfo> objects;          // key, size, etag, mtime only
  std::vector<std::string> common_prefixes;  // full prefixes ending in the delimiter
  std::string next_continuation;           // empty when this is the last page
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

  // For logs: "s3://bucket@host", "dir:/mnt/share".
  virtual std::string Describe() const = 0;
};

}  // namespace dsfs
