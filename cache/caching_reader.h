// CachingReader: the ObjectReader of the read path with a block cache and
// read-ahead. ReadSlices() splits a request into blocks and takes each from the
// read-ahead buffer, the BlockCache, or the BlockFetcher (one ranged GET per
// block, collapsed across concurrent readers) and returns slices of the
// blocks themselves (no copy).
// Reads never fail for a cache fault; store errors pass through with their
// code (PreconditionFailed -> the filesystem's ESTALE).
//
// Owns the fetcher (GET pool, cache writer), the prefetcher and the memory
// budget; the store, cache and metrics must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>

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
  Result<SliceList> ReadSlices(const ObjectId& id, uint64_t offset, size_t len) override;
  void Opened(const ObjectId& id) override { prefetcher_.Opened(id); }
  void Released(const ObjectId& id) override { prefetcher_.Released(id); }

  BlockFetcher& fetcher() { return fetcher_; }
  Prefetcher& prefetcher() { return prefetcher_; }
  MemoryBudget& budget() { return budget_; }

 private:
  // Declaration order is destruction order reversed: the prefetcher goes
  // first (returns its budget), then the fetcher (joins its threads).
  MemoryBudget budget_;
  BlockFetcher fetcher_;
  Prefetcher prefetcher_;
};

}  // namespace dsfs
