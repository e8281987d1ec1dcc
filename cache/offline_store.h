// OfflineStore: remembers what OBS answered, on the cache disk, and answers
// from that memory when OBS cannot (CVMFS's offline mode).
//
// Wraps the store stack (FallbackStore over S3Store, with or without a
// share). Every HEAD answer and LIST page that came from OBS is recorded in
// the MetaDb (a NotFound as a tombstone, so that "is it a file or a
// directory" resolves offline exactly as it did online). When a request
// fails because OBS is down (Unavailable, Throttled, Transient, IoError),
// or the share says NotFound / lists nothing while OBS is down, the record
// answers instead, if there is one. The answer is the OBS version the node
// last saw: its blocks in the block cache are served, and the bytes the
// node does not hold fail (the Get passes through and fails).
//
// Precedence while OBS is down: the share answers first (an unproven share
// file is served as its own version, a proven one as the OBS version; see
// fallback_store.h); the records answer what the share cannot.
//
// Records are never trusted while OBS answers: a HEAD that OBS answers
// overwrites the record, an OBS NotFound replaces it with a tombstone.
//
// Writes pass through to the inner store. A write that changed the key, or
// may have (it failed after its request may have reached OBS: Transient,
// Throttled, Cancelled, Corruption, IoError), forgets the key's HEAD
// record and the LIST records of every directory prefix above it ("", "a/",
// "a/b/" for "a/b/c"), so an offline answer never shows the state before
// the write as current; a Delete that succeeded records a tombstone. A
// write refused before it reached OBS (Unavailable: the circuit is open or
// nothing connected) keeps the records: nothing changed.
//
// Thread-safe (MetaDb is; no state of its own).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "backends/object_store.h"
#include "cache/meta_db.h"
#include "common/metrics.h"

namespace dsfs {

class OfflineStore : public ObjectStore {
 public:
  // inner and db must outlive this store. obs_down says whether OBS is
  // currently considered down (FallbackStore::circuit_open).
  OfflineStore(ObjectStore& inner, MetaDb& db, std::function<bool()> obs_down, Metrics* metrics);

  Result<ObjectInfo> Head(const std::string& key) override;
  Result<ListPage> List(const ListRequest& request) override;
  Result<GetResult> Get(const GetRequest& request, char* buf, size_t buf_len) override {
    return inner_.Get(request, buf, buf_len);
  }
  Result<GetResult> GetParts(const GetRequest& request, std::span<const GetPart> parts) override {
    return inner_.GetParts(request, parts);
  }
  std::string Describe() const override { return inner_.Describe(); }

  Result<PutResult> Put(const PutRequest& request) override;
  Result<PutResult> Copy(const CopyRequest& request) override;
  Result<std::string> CreateMultipartUpload(const std::string& key,
                                            const ObjectAttrs& attrs) override {
    return inner_.CreateMultipartUpload(key, attrs);
  }
  Result<std::string> UploadPart(const UploadPartRequest& request) override {
    return inner_.UploadPart(request);
  }
  Result<PutResult> CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                            const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override {
    return inner_.AbortMultipartUpload(key, upload_id);
  }
  Status Delete(const std::string& key) override;

  // Encodings (exposed for tests).
  static std::string HeadRecordKey(const std::string& key);
  static std::string ListRecordKey(const ListRequest& request);

 private:
  // Whether a failure means "OBS could not answer" (so a record may).
  bool CannotAnswer(const Status& status) const;
  // After a write of key: forgets what was recorded for it and the
  // listings above it, unless `status` says nothing reached OBS.
  void AfterWrite(const std::string& key, const Status& status);
  void Bump(Counter* c) {
    if (c) c->Add();
  }

  ObjectStore& inner_;
  MetaDb& db_;
  const std::function<bool()> obs_down_;
  Counter* offline_answers_ = nullptr;
  Counter* record_errors_ = nullptr;
};

}  // namespace dsfs
