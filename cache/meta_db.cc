#include "cache/meta_db.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>
#include <utility>

#include "common/logging.h"

namespace dsfs {
namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IoError(what + ": " + s.ToString());
}

}  // namespace

uint64_t MetaDb::FreeBytes(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

Result<std::unique_ptr<MetaDb>> MetaDb::Open(const std::string& dir) {
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  if (FreeBytes(parent.empty() ? "." : parent) < kMinFreeBytes) {
    return Status::IoError("metadata db " + dir + ": the disk is (nearly) full");
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 4 << 20;
  options.max_total_wal_size = 16 << 20;
  options.keep_log_file_num = 2;
  options.max_log_file_size = 1 << 20;
  options.info_log_level = rocksdb::WARN_LEVEL;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (s.IsCorruption()) {
    // Only a cache of OBS's answers: set it aside and start afresh.
    spdlog::warn("metadata db {} is corrupt ({}): moved to {}.broken", EscapeForLog(dir),
                 EscapeForLog(s.ToString()), EscapeForLog(dir));
    std::error_code ec;
    std::filesystem::remove_all(dir + ".broken", ec);
    std::filesystem::rename(dir, dir + ".broken", ec);
    if (ec) return Status::IoError("move aside " + dir + ": " + ec.message());
    s = rocksdb::DB::Open(options, dir, &db);
  }
  DSFS_RETURN_IF_ERROR(FromRocks(s, "open metadata db " + dir));
  return std::unique_ptr<MetaDb>(new MetaDb(db, dir));
}

MetaDb::MetaDb(rocksdb::DB* db, std::string dir) : db_(db), dir_(std::move(dir)) {}

bool MetaDb::RoomToWrite() {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (now >= next_check_ms_.load(std::memory_order_relaxed)) {
    next_check_ms_.store(now + 1000, std::memory_order_relaxed);
    room_.store(FreeBytes(dir_) >= kMinFreeBytes, std::memory_order_relaxed);
  }
  return room_.load(std::memory_order_relaxed);
}

MetaDb::~MetaDb() {
  if (db_) (void)db_->Close();
}

Status MetaDb::Put(std::string_view key, std::string_view value) {
  if (!RoomToWrite()) return Status::IoError("meta put: the disk is (nearly) full");
  return FromRocks(db_->Put(rocksdb::WriteOptions(), ToSlice(key), ToSlice(value)), "meta put");
}

Result<std::optional<std::string>> MetaDb::Get(std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  DSFS_RETURN_IF_ERROR(FromRocks(s, "meta get"));
  return std::optional<std::string>(std::move(value));
}

Status MetaDb::Delete(std::string_view key) {
  return FromRocks(db_->Delete(rocksdb::WriteOptions(), ToSlice(key)), "meta delete");
}

Status MetaDb::DeletePrefix(std::string_view prefix) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  rocksdb::WriteBatch batch;
  const rocksdb::Slice p = ToSlice(prefix);
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    DSFS_RETURN_IF_ERROR(FromRocks(batch.Delete(it->key()), "meta delete"));
  }
  DSFS_RETURN_IF_ERROR(FromRocks(it->status(), "meta scan"));
  if (batch.Count() == 0) return Status::Ok();
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "meta delete");
}

void MetaWriter::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void MetaWriter::Str(std::string_view s) {
  U64(s.size());
  out_.append(s);
}

bool MetaReader::U64(uint64_t* v) {
  if (!ok_ || in_.size() < 8) return ok_ = false;
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = (x << 8) | static_cast<unsigned char>(in_[i]);
  in_.remove_prefix(8);
  *v = x;
  return true;
}

bool MetaReader::I64(int64_t* v) {
  uint64_t x = 0;
  if (!U64(&x)) return false;
  *v = static_cast<int64_t>(x);
  return true;
}

bool MetaReader::Str(std::string* s) {
  uint64_t n = 0;
  if (!U64(&n) || n > in_.size()) return ok_ = false;
  s->assign(in_.data(), n);
  in_.remove_prefix(n);
  return true;
}

}  // namespace dsfs
