// CacheIndex: the RocksDB index of the disk block cache.
//
// Keys (all in the default column family):
//   "b" + id (16 bytes, big-endian high then low)  -> block record
//   "m:used"                                      -> u64 bytes held (files' sizes)
//   "m:seq"                                       -> u64 highest recency seq issued
//   "m:blkfmt"                                    -> u64 block format version of
//                                                    the ids (0: written before v3)
// Block record: u8 record version (1), u64 file bytes, u64 recency seq
// (little-endian). The file path is derived from the id (see
// DiskBlockCache), so it is not stored.
//
// The block files are the truth; this index is an accelerator that can be
// rebuilt from them. Thread-safe (RocksDB is).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cache/block_file.h"
#include "common/status.h"

namespace dsfs {

struct IndexRecord {
  uint64_t bytes = 0;  // size of the block file
  uint64_t seq = 0;    // recency: higher = used more recently
  bool operator==(const IndexRecord&) const = default;
};

struct IndexMeta {
  uint64_t used_bytes = 0;
  uint64_t max_seq = 0;
  // kBlockFormatVersion of the blocks the ids name; an index of blocks
  // older than kOldestServedBlockFormat (0: 1/2) is rebuilt once, which
  // deletes them.
  uint64_t block_format = 0;
};

// How CacheIndex::Open found the index.
enum class IndexOpenOutcome {
  kExisting,   // opened what was there
  kCreated,    // there was none: a new, empty index
  kRecreated,  // it was corrupt: moved aside, a new, empty index
};

class CacheIndex {
 public:
  // A group of changes applied atomically.
  class Batch {
   public:
    void Put(const BlockId& id, const IndexRecord& rec);
    void Delete(const BlockId& id);
    void SetMeta(const IndexMeta& meta);
    size_t count() const { return static_cast<size_t>(batch_.Count()); }

   private:
    friend class CacheIndex;
    rocksdb::WriteBatch batch_;
  };

  // Opens or creates the index at path. If the database exists but is
  // corrupt (RocksDB says Corruption: garbage files, a broken manifest), it
  // is moved aside to path.broken (replacing an older one; deleted if the
  // rename fails), one warning is logged and an empty index is created.
  // Any other failure (permissions, its LOCK held by another process, a
  // full disk) is returned as an error and the index is left alone: it is
  // not known to be broken. *outcome says which happened; after kCreated
  // or kRecreated the caller must rebuild the index from the block files.
  static Result<std::unique_ptr<CacheIndex>> Open(const std::string& path,
                                                  IndexOpenOutcome* outcome);

  // Moves this index's directory aside and returns a fresh one at the same
  // path (for corruption found after Open, or an index of an older block
  // format). `index` is closed first.
  static Result<std::unique_ptr<CacheIndex>> Recreate(std::unique_ptr<CacheIndex> index,
                                                      const std::string& reason);

  ~CacheIndex();
  CacheIndex(const CacheIndex&) = delete;
  CacheIndex& operator=(const CacheIndex&) = delete;

  Status Write(Batch& batch);
  Result<std::optional<IndexRecord>> Get(const BlockId& id) const;
  // Meta keys; zeros on a new index.
  Result<IndexMeta> ReadMeta() const;
  // Whether the index holds no block record.
  Result<bool> Empty() const;
  // Calls fn for every block record (in id order) until it returns false.
  // Corruption if a record or the database is unreadable.
  Status ForEach(const std::function<bool(const BlockId&, const IndexRecord&)>& fn) const;
  // Flushes the memtable to disk so the next Open replays little WAL.
  Status Flush();
  const std::string& path() const { return path_; }

  static std::string EncodeKey(const BlockId& id);
  static std::string EncodeRecord(const IndexRecord& rec);
  static bool DecodeKey(const rocksdb::Slice& key, BlockId* id);
  static bool DecodeRecord(const rocksdb::Slice& value, IndexRecord* rec);

 private:
  CacheIndex(std::string path, rocksdb::DB* db) : path_(std::move(path)), db_(db) {}
  static Result<std::unique_ptr<CacheIndex>> OpenDb(const std::string& path, bool create);

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace dsfs
