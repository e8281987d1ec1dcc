// RecentBlocks: the last blocks read (and verified) from the disk cache,
// kept in memory for the kernel requests that follow.
//
// The kernel asks for a block in several FUSE requests (1 MiB each at most,
// 128 KiB for some mmap faults), often in parallel on several FUSE threads,
// while the disk cache reads and verifies a whole block per lookup. Without
// this, a 4 MiB block read by four requests was read from the disk and
// checksummed four times: a cold four-shard mmap load read 3.9 GiB from the
// disk cache for 2 GiB of shards (the read-ahead buffers that would have
// served them had no room left under prefetch_mem). Here the first lookup
// of a block reads it, concurrent lookups of the same block wait for that
// read instead of starting their own, and the block stays for the next
// ones, the least recently used dropped past `capacity` bytes.
//
// A key names one object version (key, ETag, size) and one block of it: a
// kept block is never served for another version. Loads that fail, miss or
// return other than `want` bytes are not kept (every waiter gets what the
// load returned; a later lookup loads again).
//
// Thread-safe. The load runs on the first caller's thread without the lock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "cache/block_cache.h"
#include "common/status.h"

namespace dsfs {

class RecentBlocks {
 public:
  using Load = std::function<Result<std::optional<BlockData>>()>;

  // capacity 0: nothing is kept (concurrent lookups still share a load).
  explicit RecentBlocks(uint64_t capacity) : capacity_(capacity) {}

  // The block from memory (*from_memory = true), or what load() returned;
  // a full block of `want` bytes is kept.
  Result<std::optional<BlockData>> GetOrLoad(const BlockKey& key, uint64_t want, const Load& load,
                                             bool* from_memory);
  // The block if it is kept, else nullopt (no load).
  std::optional<BlockData> Find(const BlockKey& key);

  uint64_t bytes() const;
  size_t blocks() const;

 private:
  struct Pending {
    bool done = false;
    Result<std::optional<BlockData>> result = std::optional<BlockData>{};
  };
  struct Entry {
    BlockData data;
    std::list<BlockKey>::iterator lru;  // position in lru_ (front = newest)
  };
  void KeepLocked(const BlockKey& key, BlockData data);

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::map<BlockKey, Entry, BlockKeyLess> kept_;           // guarded by mu_
  std::map<BlockKey, std::shared_ptr<Pending>, BlockKeyLess> loading_;  // mu_
  std::list<BlockKey> lru_;  // guarded by mu_
  uint64_t bytes_ = 0;       // guarded by mu_
};

}  // namespace dsfs
