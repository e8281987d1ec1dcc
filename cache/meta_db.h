// MetaDb: what the node has learnt about the bucket, kept on the cache disk
// so that it survives remounts: object metadata and listings OBS returned
// (offline mode, cache/offline_store.h) and share proofs
// (cache/persistent_proofs.h).
//
// A RocksDB database in <cache_dir>/meta, separate from the block index:
// its records are small and written on the metadata path, the block
// index's on the data path, and either can be dropped without the other.
// Writes go to the WAL without fsync: a crash of the machine may lose the
// last records, which only means asking OBS again.
//
// Records are namespaced by a one-byte kind and a NUL: "h\0<key>" (a HEAD
// answer), "l\0<request>" (a LIST page), "p\0<key>\0<share etag>" (a share
// proof). Values are encoded with MetaWriter / MetaReader (length-prefixed,
// little-endian) and carry a format byte: a record of another format reads
// as absent.
//
// A nearly full disk: Open refuses and Put skips (IoError) while less than
// kMinFreeBytes are free (checked at most once a second): RocksDB on a
// full disk fails in ways that are not always errors, and these records
// are worth less than the room the other jobs on the disk need.
//
// Thread-safe (RocksDB is; the free-space check is atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rocksdb {
class DB;
}

namespace dsfs {

class MetaDb {
 public:
  static constexpr uint64_t kMinFreeBytes = uint64_t{64} << 20;
  // Free bytes of the filesystem holding path (0 when it cannot be read).
  static uint64_t FreeBytes(const std::string& path);
  // Opens (creating) the database in dir. A database that cannot be opened
  // as such (corrupt) is moved aside to dir + ".broken" and recreated: it
  // only holds what OBS can tell again.
  static Result<std::unique_ptr<MetaDb>> Open(const std::string& dir);
  ~MetaDb();
  MetaDb(const MetaDb&) = delete;
  MetaDb& operator=(const MetaDb&) = delete;

  Status Put(std::string_view key, std::string_view value);
  Result<std::optional<std::string>> Get(std::string_view key) const;
  Status Delete(std::string_view key);
  // Deletes every record whose key starts with prefix (one batch).
  Status DeletePrefix(std::string_view prefix);

 private:
  MetaDb(rocksdb::DB* db, std::string dir);
  bool RoomToWrite();
  std::unique_ptr<rocksdb::DB> db_;
  const std::string dir_;
  std::atomic<int64_t> next_check_ms_{0};  // steady clock, ms
  std::atomic<bool> room_{true};
};

// Length-prefixed little-endian encoding of records.
class MetaWriter {
 public:
  void U64(uint64_t v);
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Str(std::string_view s);
  const std::string& data() const { return out_; }

 private:
  std::string out_;
};

class MetaReader {
 public:
  explicit MetaReader(std::string_view in) : in_(in) {}
  // False once anything was short or malformed (and from then on).
  bool U64(uint64_t* v);
  bool I64(int64_t* v);
  bool Str(std::string* s);
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }

 private:
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace dsfs
