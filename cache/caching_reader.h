// CachingReader: the ObjectReader of the read path with a block cache and
// read-ahead. ReadSlices() splits a request into blocks and takes each from
// its read-ahead stream, the BlockCache, or the BlockFetcher (one ranged GET
// per block, collapsed across concurrent readers) and returns slices of the
// blocks themselves (no copy).
// Reads never fail for a cache fault; store errors pass through with their
// code (PreconditionFailed -> the filesystem's ESTALE).
//
// Owns the fetcher (GET pool, cache writer), the prefetcher and the memory
// budget; the store, cache and metrics must outlive it.
//
// The life of one block
// ---------------------
// 1. FUSE read -> Filesystem -> ReadSlices(id, offset, len). For each block
//    of the range, in this order:
//    a. Prefetcher::Take: the block is in its stream's read-ahead (buffered
//       or in flight). Take marks it read and tells the fetcher a reader
//       waits for it (Expedite): from then on nothing cancels that fetch.
//    b. BlockFetcher::LookupCache: the disk tier, on the reader's thread.
//       A small read (under a quarter of a block) that the prefetcher does
//       not see as sequential takes only its bytes of a block the disk
//       tier holds (LookupCacheRange: the block file's chunks covering
//       them are read and verified, not the whole block), and that part is
//       not offered to the stream. A sequential reader takes whole
//       blocks; so does any read of a block the stream holds (a.).
//    c. BlockFetcher::Fetch(kDemand): joins a GET in flight for the block
//       (one GET however many readers miss it) or queues one ahead of all
//       read-ahead.
//    Prefetcher::OnRead then records the read on the stream of the object
//    version (key + ETag; every handle and process shares it), which grows
//    or resets the window and issues read-ahead (Fetch(kPrefetch)).
// 2. A fetch is an InFlight entry in the fetcher's map until its worker
//    ends it: the worker looks in the cache (read-ahead only), else GETs the
//    block's range with If-Match the ETag into a Buffer from the
//    BufferPool, with the entry's cancellation token in the request.
// 3. Memory: a block's bytes are one Buffer held by shared_ptr (BlockData).
//    Holders: the fetch's future, the stream's buffered Block, each reply's
//    slices, the cache write queue. The Buffer goes back to the pool when
//    the last one lets go. Read-ahead blocks are charged to the
//    MemoryBudget on their stream's account from issue until the stream
//    drops them (passed by the reader, evicted, reclaimed by a reading
//    stream, stream closed); a block dropped while its GET still runs stays
//    charged until the GET ends (the Buffer exists until then). Demand
//    blocks are not charged (bounded by FUSE threads x blocks per read);
//    Offer() keeps one in the stream only if the budget has room.
//    The reader waits for each future in turn; a FUSE interrupt (its
//    cancel token) ends the wait with Cancelled (EINTR), the fetch runs on.
// 4. Reply: ReadSlices returns slices into the Buffers; the filesystem
//    answers with fuse_reply_iov and drops the slices after the reply.
// 5. Cache write: the worker fulfils the future first, then queues the
//    block for the writer thread (bounded queue; read-ahead waits a little
//    for room, a demand block is dropped when it is full), which Puts it
//    into the BlockCache (block file + index).
// 6. Eviction: in memory, when the stream drops the block; on disk, by the
//    disk cache's own LRU under cache_size.
// Who may cancel a fetch: its stream (close of the last handle, far seek,
// shutdown; and, for fetches still queued, a reading stream reclaiming
// budget from an idle one), and the fetcher's destructor (every running
// GET's token). Nobody cancels a fetch a demand reader waits for; a read
// that meets a failed or cancelled read-ahead refetches once on demand.
// Locks (in this order; none is held during a store or cache call):
// Prefetcher::mu_ guards every stream (pattern, blocks, charges) and the
// starved queue -> BlockFetcher::mu_ guards the in-flight map and the GET
// queues -> MemoryBudget::mu_ guards the byte count. BlockFetcher::write_mu_
// guards the cache write queue and is never held with BlockFetcher::mu_.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "backends/object_store.h"
#include "cache/block_cache.h"
#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "cache/object_reader.h"
#include "cache/prefetcher.h"
#include "common/metrics.h"

namespace dsfs {

class CachingReader : public ObjectReader {
 public:
  // cache may be null (no block cache: blocks live only in the read-ahead
  // buffer).
  CachingReader(ObjectStore& store, BlockCache* cache, const ReadAheadOptions& options,
                Metrics* metrics = nullptr);
  ~CachingReader() override = default;

  // Returns exactly min(len, id.size - offset) bytes (0 at or past the end).
  Result<SliceList> ReadSlices(const ObjectId& id, uint64_t offset, size_t len,
                               const CancelTokenPtr& cancel) override;
  // Fetches the blocks the cache lacks (read-ahead priority, all in
  // flight at once), writes them to the cache, counts the rest as skipped.
  Result<WarmCounts> Warm(const ObjectId& id, uint64_t first, uint64_t count,
                          const CancelTokenPtr& cancel) override;
  void Opened(const ObjectId& id) override { prefetcher_.Opened(id); }
  void Released(const ObjectId& id) override { prefetcher_.Released(id); }

  BlockFetcher& fetcher() { return fetcher_; }
  Prefetcher& prefetcher() { return prefetcher_; }
  MemoryBudget& budget() { return budget_; }

 private:
  // A read of fewer than block_size / kPartialReadDivisor bytes may take a
  // part of a cached block. A larger read gains at most 4x from reading
  // less, and a reader of pieces that large most likely reads the rest of
  // the block next.
  static constexpr uint64_t kPartialReadDivisor = 4;
  // One block of a read: where its bytes come from.
  struct Part {
    BlockKey key;
    std::optional<BlockFetcher::Future> future;
    BlockData data;
    bool from_buffer = false;
    // Set: data holds only the bytes asked for, from this object offset on.
    std::optional<uint64_t> partial_from;
  };
  // Whether a read of len bytes at offset takes parts of cached blocks:
  // small, and not sequential for the prefetcher.
  bool SmallRead(const ObjectId& id, uint64_t offset, uint64_t len) const;

  // Declaration order is destruction order reversed: the prefetcher goes
  // first (cancels every stream's fetches, returns its budget), then the
  // fetcher (aborts the GETs still running, joins its threads).
  BlockCache* cache_ = nullptr;
  Counter* readahead_bytes_ = nullptr;  // dsfs_readahead_bytes_served_total; may be null
  MemoryBudget budget_;
  BlockFetcher fetcher_;
  Prefetcher prefetcher_;
};

}  // namespace dsfs
