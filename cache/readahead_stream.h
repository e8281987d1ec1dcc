// ReadAheadStream: the read-ahead of one object version (key + ETag).
//
// Every handle and process reading the version shares its one stream. The
// stream owns what it started: its read-ahead fetches (queued or running in
// the BlockFetcher), the blocks they bring (buffered until read and passed),
// and the memory budget those are charged to. So close, seek, shutdown and
// budget pressure take them back here, in one place:
// - Cancel*() cancels fetches nobody waits for (queued: never issued;
//   running: the GET's token is set) and returns their budget;
// - a block that leaves the stream while its fetch still runs (cancelled
//   but a GET can only be aborted, not recalled; or a demand reader joined
//   it) moves to draining_ and stays charged until the fetch completes: its
//   buffer exists until then, and the budget bounds real memory;
// - charged() is the stream's whole share of the budget: blocks plus
//   draining. A closed stream lives on (in Prefetcher's closing list) until
//   charged() is 0.
//
// Not thread-safe: the Prefetcher's mutex guards every stream. The stream
// calls into the BlockFetcher and the MemoryBudget (both below it in the
// lock order), never back into the Prefetcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "common/clock.h"

namespace dsfs {

class ReadAheadStream {
 public:
  struct Block {
    BlockFetcher::Future future;
    uint64_t bytes = 0;
    bool consumed = false;  // read, or orphaned by a seek: evictable once ready
    uint64_t last_use = 0;
  };
  using BlockMap = std::map<uint64_t, Block>;  // by block index

  // fetcher and budget must outlive the stream.
  ReadAheadStream(const ObjectId& id, BlockFetcher& fetcher, MemoryBudget& budget)
      : id_(id), fetcher_(fetcher), budget_(budget) {}
  ~ReadAheadStream();  // returns every charge (the owner cancelled first)
  ReadAheadStream(const ReadAheadStream&) = delete;
  ReadAheadStream& operator=(const ReadAheadStream&) = delete;

  const ObjectId& id() const { return id_; }

  // --- Access pattern (read by Prefetcher's policy) ---
  int handles = 0;
  bool whole = false;
  bool started = false;  // whole-file: read once, read-ahead under way
  bool has_history = false;
  bool starved = false;  // waiting in Prefetcher's starved queue for budget
  uint64_t next_offset = 0;
  uint64_t window = 0;
  uint64_t last_block = 0;  // last block of the latest read (whole-file: of the reader's position)
  int jumps = 0;            // whole-file: reads in a row that were not sequential
  uint64_t scheduled_until = 0;
  uint64_t last_use = 0;                       // Prefetcher's tick of the latest call
  std::optional<Clock::time_point> last_read;  // unset: never read
  int reads_in_progress = 0;                   // OnRead .. ReadEnded

  // Reading: a read is in progress (it may wait for its GET far longer than
  // `idle`), or one ended within `idle` of now.
  bool Reading(Clock::time_point now, std::chrono::milliseconds idle) const {
    return reads_in_progress > 0 || (last_read && now - *last_read < idle);
  }

  // --- Blocks ---
  // Issues a read-ahead fetch of block index (bytes already reserved in the
  // budget by the caller; the stream now owns them).
  void Issue(uint64_t index, uint64_t bytes, uint64_t tick);
  // Issues blocks first .. first + bytes.size() - 1 as one run (one GET;
  // BlockFetcher::FetchRun), bytes[i] reserved for block first + i.
  void IssueRun(uint64_t first, const std::vector<uint64_t>& bytes, uint64_t tick);
  // Keeps a block a demand read fetched (bytes already reserved).
  void Adopt(uint64_t index, BlockData data, uint64_t tick);
  bool Has(uint64_t index) const { return blocks_.contains(index); }
  BlockMap& blocks() { return blocks_; }
  const BlockMap& blocks() const { return blocks_; }

  // Drops one block: ready, its budget returns now; in flight, it is
  // cancelled (if nobody waits for it) and stays charged until done.
  // Returns the next iterator.
  // abort_running=false leaves a running GET alone (still in the fetcher's
  // map, so a reader can join it).
  BlockMap::iterator Drop(BlockMap::iterator it, bool abort_running = true);
  // Whether the stream holds a block in [first - margin, last + margin].
  bool HoldsNear(uint64_t first, uint64_t last, uint64_t margin) const {
    auto it = blocks_.lower_bound(first > margin ? first - margin : 0);
    return it != blocks_.end() && it->first <= last + margin;
  }
  // Cancels the fetches still queued (never issued; their budget returns
  // now). Done before aborting running GETs: a GET thread freed by an abort
  // would otherwise start one of them first.
  void CancelQueued();
  // CancelQueued(), then Drop() of every block.
  void CancelAll();
  // A seek: buffered blocks become evictable; fetches in flight are
  // cancelled (those a reader waits for run on) unless keep_running, which
  // leaves them to finish as evictable blocks.
  void CancelAfterSeek(bool keep_running);
  // Gives back one block's budget to another stream: a queued fetch (never
  // issued) or a buffered block nobody has read, the one furthest ahead.
  // Running GETs are left alone (aborting them would waste the transfer and
  // return nothing until it ends). Returns the bytes freed (0: nothing).
  // Lowers scheduled_until so the block is fetched again when wanted.
  // queued_only: only a fetch never issued (nothing fetched is wasted).
  uint64_t YieldOne(bool queued_only = false);

  // Returns the budget of draining fetches that have completed.
  void Reap();
  uint64_t charged() const { return charged_; }

 private:
  void Release(uint64_t bytes);

  const ObjectId id_;
  BlockFetcher& fetcher_;
  MemoryBudget& budget_;
  BlockMap blocks_;
  struct Draining {
    BlockFetcher::Future future;
    uint64_t bytes = 0;
  };
  std::vector<Draining> draining_;
  uint64_t charged_ = 0;  // bytes of blocks_ and draining_ in the budget
};

}  // namespace dsfs
