// Prefetcher: the read-ahead policy, and the registry of one
// ReadAheadStream per object version (readahead_stream.h), which owns the
// stream's fetches, buffered blocks and budget share.
//
// Streams are keyed by ObjectId (key + ETag), not by handle, so several
// handles or processes reading one shard still look sequential.
// - A read within seq_tolerance of the expected next offset (or the first
//   read of an object at offset 0) is sequential. The first sequential read
//   opens a window of window_initial bytes; each later sequential read that
//   reaches a new block doubles it, up to window_max. Blocks up to `window`
//   past the read are kept in flight or buffered, fetched in runs of
//   window / readahead_gets consecutive blocks (at most max_get_size), one
//   GET per run; a run is issued once that many blocks are missing at the
//   window's end.
// - Any other read is a seek: the window resets to 0 (the read fetches only
//   the blocks it needs) and the stream's blocks become evictable. If the
//   read is far (more than 4x seq_tolerance) from every block the stream
//   holds, its read-ahead still queued or running is cancelled too (a fetch
//   a reader waits for runs on); a read nearer is most likely the kernel's
//   read-ahead arriving out of order, and its fetches are left to finish.
// - Objects whose name matches the prefetch_whole glob are prefetched whole
//   from their first read on (ReadStarting or OnRead; not from Opened(): a
//   handle opened over pages the kernel still holds sends no reads), as
//   fast as the memory budget allows (reads and Released() free budget,
//   which lets the prefetch continue); a block read
//   well behind a later read (seq_tolerance) is dropped once the disk
//   cache holds it.
// - Every prefetched block is charged to the MemoryBudget, on its stream's
//   account, from the moment its fetch is issued until it is dropped:
//   consumed and passed by a sequential reader, evicted for room (blocks
//   already read, or orphaned by a seek), reclaimed by another stream (see
//   below), or its stream closed. A block whose GET still runs when dropped
//   stays charged until the GET ends.
// - Reclaim: a stream short of budget whose handles are reading may take
//   back read-ahead of a stream none of whose handles read within
//   readahead_idle (or that was never read): its queued fetches (never
//   issued) and unread buffered blocks, furthest ahead first. The idle
//   stream fetches them again when it is read again and budget is free.
//   Streams waiting for budget are served reading ones first.
// - Fair share: while several streams read ahead and are read (open,
//   whole-file or with a window, Reading), none schedules past the budget
//   divided by their number, and
//   a reading stream under its share takes back fetches never issued of a
//   stream over it (four shards opened together would otherwise leave the
//   whole budget to the first two, and the others read block by block).
// - Released() on the last handle closes the stream: everything it started
//   is cancelled or dropped (cached blocks stay in the BlockCache); a
//   closed stream whose GETs still run is kept until they end.
//
// - Blocks the disk cache holds (BlockFetcher::Cached) are read ahead at
//   most readahead_warm past the reader, whole-file prefetch included, one
//   fetch each: a cached block comes back in milliseconds, and reading a
//   warm file far ahead only fills fresh memory (page faults, RSS).
//
// Thread-safe. Lock order: Prefetcher::mu_ (guards every stream) ->
// BlockFetcher's locks and the BlockCache's (Contains) -> MemoryBudget's lock (the fetcher never
// calls back into the prefetcher).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "cache/readahead_stream.h"
#include "common/clock.h"
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
    uint64_t charged = 0;          // the stream's share of the budget
    size_t blocks = 0;             // blocks in flight or buffered
    size_t ready = 0;              // of those, fetched (or failed)
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
  // A read of the object is about to take its blocks (before Take): a
  // whole-file prefetch not started yet starts, so the read finds its
  // blocks among the stream's. OnRead starts it too.
  void ReadStarting(const ObjectId& id);
  // Records a read of [offset, offset+len) and issues read-ahead. A read
  // of len > 0 is in progress (its stream is being read, never idle) until
  // ReadEnded.
  void OnRead(const ObjectId& id, uint64_t offset, uint64_t len);
  // The read OnRead recorded has its bytes (or failed).
  void ReadEnded(const ObjectId& id);
  // Whether a read at offset continues the object's reads so far (OnRead's
  // rule: within seq_tolerance of where the last read ended, or offset 0
  // for the first read), for an object prefetched whole too. A read that
  // does not (false) most likely needs only the bytes it asks for.
  bool Sequential(const ObjectId& id, uint64_t offset) const;
  // Keeps a block a demand read fetched, so following small reads of the
  // same block find it (only if the budget has room).
  void Offer(const BlockKey& key, BlockData data);

  // Returns the budget of dropped blocks whose fetch has completed (every
  // other call does this too) and lets starved streams use it.
  void Reclaim();

  ObjectState StateOf(const ObjectId& id) const;
  size_t buffered_blocks() const;
  uint64_t prefetched_blocks() const;  // fetches issued for read-ahead
  uint64_t reclaimed_blocks() const;   // taken back from idle streams
  // Closed streams still waiting for their GETs to end.
  size_t closing_streams() const;

 private:
  using ObjKey = std::pair<std::string, std::string>;  // key, etag
  using Stream = ReadAheadStream;
  // kCapped: the stream holds its fair share (FairShareLocked); it goes on
  // at its next read, not from the starved queue.
  enum class ScheduleResult { kDone, kStarved, kMore, kCapped };

  static ObjKey KeyOf(const ObjectId& id) { return {id.key, id.etag}; }
  Clock::time_point Now() const { return clock_->Now(); }
  // The following require mu_.
  // OnRead's rule: a read at offset continues st's pattern.
  bool SequentialLocked(const Stream& st, uint64_t offset) const;
  Stream* FindLocked(const ObjectId& id) const;
  Stream& GetStreamLocked(const ObjectId& id);
  // Cancels everything the stream started; keeps it in closing_ while its
  // GETs run.
  void CloseStreamLocked(const ObjKey& k);
  void ReapLocked();
  // Blocks per GET of st's read-ahead: its window / readahead_gets, at
  // least 1, at most max_get_size.
  uint64_t RunBlocks(const Stream& st) const;
  // Issues up to max_blocks read-ahead fetches for st, in runs of
  // RunBlocks(st) consecutive blocks (one GET each).
  ScheduleResult ScheduleLocked(Stream& st, uint64_t max_blocks);
  void MarkStarvedLocked(Stream& st);
  void PumpStarvedLocked();
  // Reserves bytes for requester (null: a block offered by a demand read):
  // evicts read blocks, then, for a reading requester, reclaims from idle
  // streams.
  bool ReserveLocked(uint64_t bytes, Stream* requester);
  bool EvictOneLocked();
  bool ReclaimOneLocked(const Stream& requester);
  // The budget divided among the streams that read ahead and are being
  // read (open, whole or with a window, Reading): no stream schedules past
  // it while others share the budget, and a reading one under it takes
  // queued fetches back from one over it.
  uint64_t FairShareLocked() const;
  bool EvictableLocked(const Stream& st, uint64_t index, const Stream::Block& b) const;
  // Read blocks just behind a reader that eviction leaves alone (the
  // kernel still sends requests for them).
  uint64_t KeptBehind() const;
  // Blocks of st in flight or buffered that no reader has taken yet.
  static uint64_t UnreadBlocks(const Stream& st);

  BlockFetcher& fetcher_;
  MemoryBudget& budget_;
  const ReadAheadOptions options_;
  const uint64_t block_size_;
  SteadyClock steady_clock_;
  const Clock* const clock_;
  Counter* prefetch_metric_ = nullptr;
  Counter* wait_metric_ = nullptr;
  Counter* hit_metric_ = nullptr;
  Counter* reclaim_metric_ = nullptr;

  mutable std::mutex mu_;
  std::map<ObjKey, std::unique_ptr<Stream>> streams_;  // guarded by mu_
  std::vector<std::unique_ptr<Stream>> closing_;       // guarded by mu_
  std::deque<ObjKey> starved_;                         // guarded by mu_
  uint64_t tick_ = 0;                                  // guarded by mu_
  uint64_t prefetched_ = 0;                            // guarded by mu_
  uint64_t reclaimed_ = 0;                             // guarded by mu_
};

}  // namespace dsfs
