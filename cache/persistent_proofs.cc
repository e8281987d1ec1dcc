#include "cache/persistent_proofs.h"

namespace dsfs {
namespace {
constexpr uint64_t kProofFormat = 1;
}  // namespace

std::string PersistentProofBook::RecordKey(const std::string& key, const std::string& share_etag) {
  std::string k = std::string("p") + '\0' + key;
  k += '\0';
  k += share_etag;
  return k;
}

std::optional<ProofRecord> PersistentProofBook::Find(const std::string& key,
                                                     const std::string& share_etag) {
  auto rec = db_.Get(RecordKey(key, share_etag));
  if (!rec.ok() || !rec->has_value()) return std::nullopt;
  MetaReader r(**rec);
  uint64_t format = 0;
  uint64_t verdict = 0;
  ProofRecord out;
  if (!r.U64(&format) || format != kProofFormat || !r.Str(&out.obs_etag) || !r.U64(&verdict) ||
      !r.done() || verdict > static_cast<uint64_t>(ProofVerdict::kUnprovable)) {
    return std::nullopt;  // unreadable: as if never proven
  }
  out.verdict = static_cast<ProofVerdict>(verdict);
  return out;
}

void PersistentProofBook::Record(const std::string& key, const std::string& share_etag,
                                 const ProofRecord& record) {
  MetaWriter w;
  w.U64(kProofFormat);
  w.Str(record.obs_etag);
  w.U64(static_cast<uint64_t>(record.verdict));
  // A lost record only means proving the copy again.
  (void)db_.Put(RecordKey(key, share_etag), w.data());
}

}  // namespace dsfs
