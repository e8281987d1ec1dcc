// PersistentProofBook: share proofs (backends/share_proof.h) kept in the
// MetaDb, so a share copy is proven once per version and the proof
// survives remounts. Record key "p\0<key>\0<share etag>"; the share etag
// names the share file as it was (size, mtime, inode), so a changed file
// has no record.
#pragma once

#include "backends/share_proof.h"
#include "cache/meta_db.h"

namespace dsfs {

class PersistentProofBook : public ProofBook {
 public:
  explicit PersistentProofBook(MetaDb& db) : db_(db) {}
  std::optional<ProofRecord> Find(const std::string& key, const std::string& share_etag) override;
  void Record(const std::string& key, const std::string& share_etag,
              const ProofRecord& record) override;

 private:
  static std::string RecordKey(const std::string& key, const std::string& share_etag);
  MetaDb& db_;
};

}  // namespace dsfs
