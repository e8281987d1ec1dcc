// Share proofs: whether a file on the SFS share holds the bytes of one OBS
// object version.
//
// A share file is served as an OBS version only once it is proven to hold
// that version's bytes. The proof is a digest the version carries:
//  - the ETag of a single-part upload is the MD5 of the object (32 hex);
//  - the ETag of a multipart upload is "<md5 of the parts' binary MD5s>-N";
//    it is recomputed for each common part size P with ceil(size / P) == N
//    (kMultipartPartSizes), all in one pass over the file.
// An ETag of any other form (SSE-KMS, another store's scheme) is
// unprovable: the share copy is then never served as that version.
//
// A proof is about one share file as it was: its identity is the DirStore
// ETag "sfs-<size>-<mtime_ns>-<inode>", so a rewritten or replaced file is
// unproven again. Verdicts are kept in a ProofBook keyed by
// (key, share ETag): the daemon's is persisted in the cache directory
// (cache/persistent_proofs.h), so each version is proven once and the
// proof survives remounts.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/object_store.h"
#include "common/cancel.h"
#include "common/status.h"

namespace dsfs {

// Part sizes multipart uploaders use (s3fs/obsfs 10 MiB, AWS CLI and boto3
// 8 MiB, rclone 5 MiB, others 16-512 MiB and 1 GiB).
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kMultipartPartSizes[] = {5 * kMiB,   8 * kMiB,   10 * kMiB, 15 * kMiB,
                                                   16 * kMiB,  32 * kMiB,  64 * kMiB, 100 * kMiB,
                                                   128 * kMiB, 256 * kMiB, 512 * kMiB, 1024 * kMiB};

enum class ProofVerdict {
  kProven,      // the share file holds exactly this OBS version's bytes
  kDiffers,     // it does not (other bytes, or another size)
  kUnprovable,  // the ETag carries no digest we can recompute
};
const char* ProofVerdictName(ProofVerdict verdict);

struct ProofRecord {
  std::string obs_etag;  // the OBS version the share file was checked against
  ProofVerdict verdict = ProofVerdict::kDiffers;
};

// Where verdicts are kept. Thread-safe.
class ProofBook {
 public:
  virtual ~ProofBook() = default;
  // The verdict for the share file of `key` whose share ETag is share_etag.
  virtual std::optional<ProofRecord> Find(const std::string& key,
                                          const std::string& share_etag) = 0;
  virtual void Record(const std::string& key, const std::string& share_etag,
                      const ProofRecord& record) = 0;
};

// A bounded LRU in memory (no cache_dir, and tests).
class MemoryProofBook : public ProofBook {
 public:
  explicit MemoryProofBook(size_t max_entries = 100000) : max_entries_(max_entries) {}
  std::optional<ProofRecord> Find(const std::string& key, const std::string& share_etag) override;
  void Record(const std::string& key, const std::string& share_etag,
              const ProofRecord& record) override;

 private:
  struct Entry {
    ProofRecord record;
    std::list<std::string>::iterator lru;
  };
  const size_t max_entries_;
  std::mutex mu_;
  std::list<std::string> lru_;                     // guarded by mu_, front = newest
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

// Whether an ETag carries a digest this module can check.
bool IsProvableEtag(std::string_view etag);

// Paces reads to `bytes_per_second` (0: unlimited). Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_second) : rate_(bytes_per_second) {}
  // Waits until `bytes` more may be read, or until cancel is set (false).
  bool Acquire(uint64_t bytes, const CancelTokenPtr& cancel);

 private:
  const uint64_t rate_;
  std::mutex mu_;
  double next_free_ = 0;  // guarded by mu_: seconds (steady clock) when the budget is free
};

// Reads `key` (share ETag share_etag, `size` bytes) from `share` in chunks
// and compares it with obs_etag. kProven / kDiffers / kUnprovable, or the
// share's error (a file that changes during the read is PreconditionFailed).
Result<ProofVerdict> ProveShareFile(ObjectStore& share, const std::string& key,
                                    const std::string& share_etag, uint64_t size,
                                    const std::string& obs_etag, RateLimiter* limiter,
                                    const CancelTokenPtr& cancel);

}  // namespace dsfs
