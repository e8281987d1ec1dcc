// Eviction policy for the disk block cache, kept apart from storage: it
// only orders block ids by recency and picks victims; DiskBlockCache does
// the deleting. Recency is a sequence number chosen by the caller (higher
// = more recently used), so the order survives a restart through the
// sequence numbers saved in the index.
//
// Not thread-safe: DiskBlockCache calls it under its own mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/block_file.h"

namespace dsfs {

class LruPolicy {
 public:
  struct Entry {
    uint64_t bytes = 0;
    uint64_t seq = 0;
  };
  struct Victim {
    BlockId id;
    uint64_t bytes = 0;
  };

  // Records (or replaces) a block of `bytes` last used at `seq`.
  void Add(const BlockId& id, uint64_t bytes, uint64_t seq);
  // Records a block only if unknown (loading an older view must not undo
  // newer knowledge). Returns true if added.
  bool AddIfAbsent(const BlockId& id, uint64_t bytes, uint64_t seq);
  // Marks a block used at `seq` (ignored if seq is older than what we have).
  // Returns false if the block is unknown.
  bool Touch(const BlockId& id, uint64_t seq);
  // Forgets a block; returns its entry if it was known.
  std::optional<Entry> Remove(const BlockId& id);
  std::optional<Entry> Find(const BlockId& id) const;

  // Least recently used blocks, oldest first, until at least `bytes` would
  // be freed (or everything but `keep` is listed). Does not remove them.
  std::vector<Victim> PickVictims(uint64_t bytes, const BlockId* keep = nullptr) const;

  uint64_t total_bytes() const { return total_bytes_; }
  size_t size() const { return entries_.size(); }
  // All ids (a copy, for background checks).
  std::vector<BlockId> Ids() const;

 private:
  struct OrderLess {
    bool operator()(const std::pair<uint64_t, BlockId>& a,
                    const std::pair<uint64_t, BlockId>& b) const {
      if (a.first != b.first) return a.first < b.first;
      if (a.second.high != b.second.high) return a.second.high < b.second.high;
      return a.second.low < b.second.low;
    }
  };
  std::unordered_map<BlockId, Entry, BlockIdHash> entries_;
  std::set<std::pair<uint64_t, BlockId>, OrderLess> order_;  // (seq, id), oldest first
  uint64_t total_bytes_ = 0;
};

}  // namespace dsfs
