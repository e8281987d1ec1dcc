#include "cache/caching_reader.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <vector>

namespace dsfs {

CachingReader::CachingReader(ObjectStore& store, BlockCache* cache, const ReadAheadOptions& options,
                             Metrics* metrics)
    : cache_(cache),
      readahead_bytes_(
          metrics ? &metrics->GetCounter("dsfs_readahead_bytes_served_total",
                                         "Bytes served to reads from read-ahead buffers (the "
                                         "read-ahead memory tier)")
                  : nullptr),
      budget_(options.prefetch_mem,
              metrics ? &metrics->GetGauge("dsfs_readahead_memory_bytes",
                                           "Read-ahead memory in use (blocks in flight and "
                                           "buffered ahead of readers)")
                      : nullptr),
      fetcher_(store, cache, options, metrics),
      prefetcher_(fetcher_, budget_, options, metrics) {}

namespace {

// How often a waiting reader looks at its cancel token: an interrupted
// read is answered within this; a completed fetch wakes the wait at once.
constexpr std::chrono::milliseconds kCancelPoll{50};

// The future's result, or Cancelled once `cancel` is set.
Result<BlockData> Await(const BlockFetcher::Future& future, const CancelTokenPtr& cancel) {
  if (cancel) {
    while (future.wait_for(kCancelPoll) != std::future_status::ready) {
      if (cancel->cancelled()) return Status::Cancelled("read interrupted");
    }
  }
  return future.get();
}

}  // namespace

bool CachingReader::SmallRead(const ObjectId& id, uint64_t offset, uint64_t len) const {
  return cache_ != nullptr && len < fetcher_.block_size() / kPartialReadDivisor &&
         !prefetcher_.Sequential(id, offset);
}

Result<SliceList> CachingReader::ReadSlices(const ObjectId& id, uint64_t offset, size_t len,
                                            const CancelTokenPtr& cancel) {
  if (len == 0 || offset >= id.size) return SliceList{};
  const uint64_t n = std::min<uint64_t>(len, id.size - offset);
  const uint64_t bs = fetcher_.block_size();
  const uint64_t first = offset / bs;
  const uint64_t last = (offset + n - 1) / bs;

  // A small read the prefetcher does not follow reads only its bytes of
  // a cached block (see SmallRead).
  const bool small = SmallRead(id, offset, n);
  prefetcher_.ReadStarting(id);
  std::vector<Part> parts;
  parts.reserve(last - first + 1);
  // Start every block of the read before waiting for any.
  for (uint64_t idx = first; idx <= last; ++idx) {
    Part p{BlockKey{id, idx}, std::nullopt, nullptr, false, std::nullopt};
    const uint64_t block_start = idx * bs;
    const uint64_t from = std::max(offset, block_start);
    const uint64_t to = std::min(offset + n, block_start + bs);
    if (auto f = prefetcher_.Take(p.key)) {
      p.future = std::move(*f);
      p.from_buffer = true;
    } else if (auto kept = small ? fetcher_.LookupRecent(p.key) : std::nullopt) {
      // A small read of a block a recent read brought from the disk.
      p.data = std::move(*kept);
    } else if (small && fetcher_.Cached(p.key)) {
      p.partial_from = from;
      if (auto hit = fetcher_.LookupCacheRange(p.key, from - block_start, to - from)) {
        p.data = std::move(*hit);
      } else {
        p.future = fetcher_.Fetch(p.key, FetchPriority::kDemand, /*check_cache=*/false);
        p.partial_from = std::nullopt;
      }
    } else if (auto hit = fetcher_.LookupCache(p.key)) {
      p.data = std::move(*hit);
    } else {
      p.future = fetcher_.Fetch(p.key, FetchPriority::kDemand, /*check_cache=*/false);
    }
    parts.push_back(std::move(p));
  }
  prefetcher_.OnRead(id, offset, n);
  struct ReadEnd {
    Prefetcher& prefetcher;
    const ObjectId& id;
    ~ReadEnd() { prefetcher.ReadEnded(id); }
  } read_end{prefetcher_, id};

  SliceList out;
  out.reserve(parts.size());
  for (Part& p : parts) {
    if (!p.data) {
      Result<BlockData> r = Await(*p.future, cancel);
      if (!r.ok() && p.from_buffer && !IsCancelled(cancel)) {
        // The read-ahead failed or was cancelled (not this read): a demand
        // fetch retries once before failing.
        r = Await(fetcher_.Fetch(p.key, FetchPriority::kDemand), cancel);
      }
      if (!r.ok()) return r.status();
      p.data = *r;
    }
    // A part of a block is never offered: the stream keeps whole blocks.
    if (!p.from_buffer && !p.partial_from) prefetcher_.Offer(p.key, p.data);
    // Where p.data starts in the object: the block's start, or the first
    // byte asked for of a part.
    const uint64_t data_start = p.partial_from ? *p.partial_from : p.key.index * bs;
    const uint64_t from = std::max(offset, data_start);
    const uint64_t to = std::min(offset + n, data_start + p.data->size());
    if (to <= from) {  // the block ends before the bytes asked for
      return Status::Corruption("block " + std::to_string(p.key.index) + " of '" + id.key +
                                "' is shorter than the object");
    }
    if (p.from_buffer && readahead_bytes_ != nullptr) readahead_bytes_->Add(to - from);
    out.push_back(ReadSlice{p.data, p.data->data() + (from - data_start), to - from});
  }
  return out;
}

Result<ObjectReader::WarmCounts> CachingReader::Warm(const ObjectId& id, uint64_t first,
                                                     uint64_t count, const CancelTokenPtr& cancel) {
  if (cache_ == nullptr) return ObjectReader::Warm(id, first, count, cancel);
  if (id.etag.empty()) return Status::NotSupported("an object without an ETag is never cached");
  WarmCounts out;
  out.block_size = fetcher_.block_size();
  out.blocks = fetcher_.BlockCount(id);
  const uint64_t end = first >= out.blocks ? first : std::min(out.blocks, first + count);
  std::vector<std::pair<BlockKey, BlockFetcher::Future>> fetches;
  for (uint64_t idx = first; idx < end; ++idx) {
    BlockKey key{id, idx};
    if (fetcher_.Cached(key)) {
      ++out.skipped;
    } else {
      fetches.emplace_back(key, fetcher_.Fetch(key, FetchPriority::kPrefetch, false));
    }
  }
  Status failed;
  for (auto& [key, future] : fetches) {
    Result<BlockData> r = Await(future, cancel);
    if (!r.ok()) {
      if (failed.ok()) failed = r.status();
      continue;
    }
    ++out.fetched;
  }
  if (!failed.ok()) return failed;
  // The fetcher queues its cache writes (and may drop one when the queue
  // is full): the reply promises the blocks are on disk.
  fetcher_.FlushCacheWrites();
  for (auto& [key, future] : fetches) {
    if (cache_->Contains(key)) continue;
    DSFS_RETURN_IF_ERROR(cache_->Put(key, *future.get()));
  }
  return out;
}

}  // namespace dsfs
