// Prefetcher: read-ahead state per object version and the bounded buffer
// of prefetched blocks.
//
// State is keyed by ObjectId (key + ETag), not by handle, so several
// handles or processes reading one shard still look sequential.
// - A read within seq_tolerance of the expected next offset (or the first
//   read of an object at offset 0) is sequential. The first sequential read
//   opens a window of window_initial bytes; each later sequential read that
//   reaches a new block doubles it, up to window_max. Blocks up to `window`
//   past the read are kept in flight or buffered.
// - Any other read is a seek: the window resets to 0 (the read fetches only
//   the blocks it needs), and buffered blocks of that object become
//   evictable.
// - Objects whose name matches the prefetch_whole glob are prefetched whole
//   from Opened() on, as fast as the memory budget allows (reads and
//   Released() free budget, which lets the prefetch continue).
// - Every prefetched block is charged to the MemoryBudget from the moment
//   its fetch is issued until it is dropped: consumed and passed by a
//   sequential reader, evicted for room (only blocks already read, or
//   orphaned by a seek/close, are evicted; never unread read-ahead), or its
//   object released. A block in flight when dropped stays charged until its
//   fetch completes. The BlockFetcher also fills the BlockCache.
// - Released() on the last handle forgets the state and the buffered blocks
//   (cached blocks stay in the BlockCache).
//
// Thread-safe. Lock order: Prefetcher::mu_ -> BlockFetcher's locks ->
// MemoryBudget's lock (the fetcher never calls back into the prefetcher).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "common/metrics.h"

namespace dsfs {

// fnmatch(3) of glob against key's last component (or the whole key when
// glob contains '/'). An empty glob matches nothing.
bool MatchesPrefetchGlob(const std::string& glob, const std::string& key);

class Prefetcher {
 public:
  // What the prefetcher knows about one object (tests, stats).
  struct ObjectState {
    bool tracked = false;
    int handles = 0;
    bool whole = false;
    uint64_t window = 0;           // bytes of read-ahead past the last read
    uint64_t next_offset = 0;      // where a sequential read is expected
    uint64_t scheduled_until = 0;  // next block index read-ahead may issue
  };

  // fetcher, budget and metrics must outlive the prefetcher.
  Prefetcher(BlockFetcher& fetcher, MemoryBudget& budget, const ReadAheadOptions& options,
             Metrics* metrics = nullptr);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // A handle opened / released the object (counted per object).
  void Opened(const ObjectId& id);
  void Released(const ObjectId& id);

  // A demand read wants this block: its future if it is buffered or in
  // flight (marks it read; a queued fetch is expedited), else nullopt.
  std::optional<BlockFetcher::Future> Take(const BlockKey& key);
  // Records a read of [offset, offset+len) and issues read-ahead.
  void OnRead(const ObjectId& id, uint64_t offset, uint64_t len);
  // Keeps a block a demand read fetched, so following small reads of the
  // same block find it (only if the budget has room).
  void Offer(const BlockKey& key, BlockData data);

  // Returns the budget of dropped blocks whose fetch has completed (every
  // other call does this too).
  void Reclaim();

  ObjectState StateOf(const ObjectId& id) const;
  size_t buffered_blocks() const;
  uint64_t prefetched_blocks() const;  // fetches issued for read-ahead

 private:
  using ObjKey = std::pair<std::string, std::string>;  // key, etag
  struct State {
    ObjectId id;
    int handles = 0;
    bool whole = false;
    bool has_history = false;
    bool starved = false;  // waiting in starved_ for budget
    uint64_t next_offset = 0;
    uint64_t window = 0;
    uint64_t last_block = 0;  // last block of the latest read
    uint64_t scheduled_until = 0;
    uint64_t last_use = 0;
  };
  struct Buffered {
    BlockFetcher::Future future;
    uint64_t bytes = 0;
    bool consumed = false;  // read, or orphaned: evictable once ready
    uint64_t last_use = 0;
  };
  struct Draining {
    BlockFetcher::Future future;
    uint64_t bytes = 0;
  };
  enum class ScheduleResult { kDone, kStarved, kMore };

  static ObjKey KeyOf(const ObjectId& id) { return {id.key, id.etag}; }
  // The following require mu_.
  State& GetStateLocked(const ObjectId& id);
  void ForgetStateLocked(const ObjKey& k);
  // Issues up to max_blocks read-ahead fetches for st.
  ScheduleResult ScheduleLocked(State& st, uint64_t max_blocks);
  void PumpStarvedLocked();
  bool ReserveLocked(uint64_t bytes);
  bool EvictableLocked(const BlockKey& key, const Buffered& b) const;
  void DropLocked(std::map<BlockKey, Buffered, readahead_internal::BlockKeyLess>::iterator it);
  void DropObjectLocked(const ObjectId& id, bool all);
  void ReapDrainingLocked();

  BlockFetcher& fetcher_;
  MemoryBudget& budget_;
  const ReadAheadOptions options_;
  const uint64_t block_size_;
  Counter* prefetch_metric_ = nullptr;
  Counter* wait_metric_ = nullptr;
  Counter* hit_metric_ = nullptr;

  mutable std::mutex mu_;
  std::map<ObjKey, State> states_;                                         // guarded by mu_
  std::map<BlockKey, Buffered, readahead_internal::BlockKeyLess> buffer_;  // guarded by mu_
  std::vector<Draining> draining_;                                         // guarded by mu_
  std::deque<ObjKey> starved_;                                             // guarded by mu_
  uint64_t tick_ = 0;                                                      // guarded by mu_
  uint64_t prefetched_ = 0;                                                // guarded by mu_
};

}  // namespace dsfs
