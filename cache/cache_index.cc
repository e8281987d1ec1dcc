#include "cache/cache_index.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>

#include "common/endian.h"

namespace dsfs {
namespace {

constexpr char kBlockPrefix = 'b';
constexpr uint8_t kRecordVersion = 1;
const char kMetaUsed[] = "m:used";
const char kMetaSeq[] = "m:seq";
const char kMetaBlockFormat[] = "m:blkfmt";

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IoError(what + ": " + s.ToString());
}

std::string EncodeU64(uint64_t v) {
  std::string s;
  PutU64Le(&s, v);
  return s;
}

// Moves a broken index directory out of the way. Returns where it went
// ("" if it had to be deleted).
std::string MoveAside(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string aside = path + ".broken";
  fs::remove_all(aside, ec);
  fs::rename(path, aside, ec);
  if (!ec) return aside;
  fs::remove_all(path, ec);
  return "";
}

}  // namespace

void CacheIndex::Batch::Put(const BlockId& id, const IndexRecord& rec) {
  batch_.Put(EncodeKey(id), EncodeRecord(rec));
}
void CacheIndex::Batch::Delete(const BlockId& id) { batch_.Delete(EncodeKey(id)); }
void CacheIndex::Batch::SetMeta(const IndexMeta& meta) {
  batch_.Put(kMetaUsed, EncodeU64(meta.used_bytes));
  batch_.Put(kMetaSeq, EncodeU64(meta.max_seq));
  batch_.Put(kMetaBlockFormat, EncodeU64(meta.block_format));
}

std::string CacheIndex::EncodeKey(const BlockId& id) {
  std::string k(1, kBlockPrefix);
  PutU64Be(&k, id.high);
  PutU64Be(&k, id.low);
  return k;
}

bool CacheIndex::DecodeKey(const rocksdb::Slice& key, BlockId* id) {
  if (key.size() != 17 || key[0] != kBlockPrefix) return false;
  id->high = GetU64Be(key.data() + 1);
  id->low = GetU64Be(key.data() + 9);
  return true;
}

std::string CacheIndex::EncodeRecord(const IndexRecord& rec) {
  std::string v(1, static_cast<char>(kRecordVersion));
  PutU64Le(&v, rec.bytes);
  PutU64Le(&v, rec.seq);
  return v;
}

bool CacheIndex::DecodeRecord(const rocksdb::Slice& value, IndexRecord* rec) {
  if (value.size() != 17 || static_cast<uint8_t>(value[0]) != kRecordVersion) return false;
  rec->bytes = GetU64Le(value.data() + 1);
  rec->seq = GetU64Le(value.data() + 9);
  return true;
}

Result<std::unique_ptr<CacheIndex>> CacheIndex::OpenDb(const std::string& path, bool create) {
  rocksdb::Options options;
  options.create_if_missing = create;
  options.paranoid_checks = true;
  // The index is small (tens of bytes per 4 MiB block); keep its WAL and
  // memtable small so a reopen after a crash replays little.
  options.write_buffer_size = 8 << 20;
  options.max_total_wal_size = 32 << 20;
  options.keep_log_file_num = 2;
  options.max_log_file_size = 1 << 20;
  options.info_log_level = rocksdb::WARN_LEVEL;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (!s.ok()) return FromRocks(s, "open cache index " + path);
  return std::unique_ptr<CacheIndex>(new CacheIndex(path, db));
}

Result<std::unique_ptr<CacheIndex>> CacheIndex::Open(const std::string& path,
                                                     IndexOpenOutcome* outcome) {
  namespace fs = std::filesystem;
  *outcome = IndexOpenOutcome::kExisting;
  std::error_code ec;
  // An index directory without CURRENT never held a database (or lost it):
  // the same as none. symlink_status: a symlink here is not our index.
  auto st = fs::symlink_status(path + "/CURRENT", ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IoError("cache index " + path + ": " + ec.message());
  }
  if (!fs::exists(st)) {
    *outcome = IndexOpenOutcome::kCreated;
    return OpenDb(path, true);
  }
  auto index = OpenDb(path, false);
  if (index.ok() || index.status().code() != StatusCode::kCorruption) return index;
  // Corrupt: the block files are the truth, so start a new index and rebuild.
  std::string aside = MoveAside(path);
  spdlog::warn("cache index {} is corrupt ({}); {} and rebuilding it from the block files", path,
               index.status().message(),
               aside.empty() ? std::string("deleted it") : "moved it to " + aside);
  *outcome = IndexOpenOutcome::kRecreated;
  return OpenDb(path, true);
}

Result<std::unique_ptr<CacheIndex>> CacheIndex::Recreate(std::unique_ptr<CacheIndex> index,
                                                         const std::string& reason) {
  std::string path = index->path();
  index.reset();
  std::string aside = MoveAside(path);
  spdlog::warn("cache index {} cannot be used ({}); {} and rebuilding it from the block files",
               path, reason, aside.empty() ? std::string("deleted it") : "moved it to " + aside);
  return OpenDb(path, true);
}

CacheIndex::~CacheIndex() {
  if (db_) {
    rocksdb::Status s = db_->Close();
    if (!s.ok()) spdlog::warn("closing cache index {}: {}", path_, s.ToString());
  }
}

Status CacheIndex::Write(Batch& batch) {
  rocksdb::WriteOptions wo;  // WAL on, no sync: a lost tail is repaired from the files
  return FromRocks(db_->Write(wo, &batch.batch_), "write cache index");
}

Result<std::optional<IndexRecord>> CacheIndex::Get(const BlockId& id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), EncodeKey(id), &value);
  if (s.IsNotFound()) return std::optional<IndexRecord>();
  if (!s.ok()) return FromRocks(s, "read cache index");
  IndexRecord rec;
  if (!DecodeRecord(value, &rec)) return Status::Corruption("bad cache index record");
  return std::optional<IndexRecord>(rec);
}

Result<IndexMeta> CacheIndex::ReadMeta() const {
  IndexMeta meta;
  std::string value;
  for (auto [name, field] : {std::pair{kMetaUsed, &meta.used_bytes},
                             {kMetaSeq, &meta.max_seq},
                             {kMetaBlockFormat, &meta.block_format}}) {
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), name, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return FromRocks(s, "read cache index meta");
    if (value.size() != 8) return Status::Corruption(std::string("bad cache index meta ") + name);
    *field = GetU64Le(value.data());
  }
  return meta;
}

Status CacheIndex::ForEach(
    const std::function<bool(const BlockId&, const IndexRecord&)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::string prefix(1, kBlockPrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    BlockId id;
    IndexRecord rec;
    if (!DecodeKey(it->key(), &id) || !DecodeRecord(it->value(), &rec)) {
      return Status::Corruption("bad cache index record");
    }
    if (!fn(id, rec)) return Status::Ok();
  }
  return FromRocks(it->status(), "scan cache index");
}

Result<bool> CacheIndex::Empty() const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::string prefix(1, kBlockPrefix);
  it->Seek(prefix);
  if (it->Valid()) return !it->key().starts_with(prefix);
  DSFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan cache index"));
  return true;
}

Status CacheIndex::Flush() {
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush cache index");
}

}  // namespace dsfs
