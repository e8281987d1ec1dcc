#include "cache/caching_reader.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace dsfs {

CachingReader::CachingReader(ObjectStore& store, BlockCache* cache, const ReadAheadOptions& options,
                             Metrics* metrics)
    : budget_(options.prefetch_mem),
      fetcher_(store, cache, options, metrics),
      prefetcher_(fetcher_, budget_, options, metrics) {}

Result<SliceList> CachingReader::ReadSlices(const ObjectId& id, uint64_t offset, size_t len) {
  if (len == 0 || offset >= id.size) return SliceList{};
  const uint64_t n = std::min<uint64_t>(len, id.size - offset);
  const uint64_t bs = fetcher_.block_size();
  const uint64_t first = offset / bs;
  const uint64_t last = (offset + n - 1) / bs;

  struct Part {
    BlockKey key;
    std::optional<BlockFetcher::Future> future;
    BlockData data;
    bool from_buffer = false;
  };
  std::vector<Part> parts;
  parts.reserve(last - first + 1);
  // Start every block of the read before waiting for any.
  for (uint64_t idx = first; idx <= last; ++idx) {
    Part p{BlockKey{id, idx}, std::nullopt, nullptr, false};
    if (auto f = prefetcher_.Take(p.key)) {
      p.future = std::move(*f);
      p.from_buffer = true;
    } else if (auto hit = fetcher_.LookupCache(p.key)) {
      p.data = std::move(*hit);
    } else {
      p.future = fetcher_.Fetch(p.key, FetchPriority::kDemand, /*check_cache=*/false);
    }
    parts.push_back(std::move(p));
  }
  prefetcher_.OnRead(id, offset, n);

  SliceList out;
  out.reserve(parts.size());
  for (Part& p : parts) {
    if (!p.data) {
      Result<BlockData> r = p.future->get();
      if (!r.ok() && p.from_buffer) {
        // Read-ahead failed: a demand fetch retries once before failing.
        r = fetcher_.Fetch(p.key, FetchPriority::kDemand).get();
      }
      if (!r.ok()) return r.status();
      p.data = *r;
    }
    if (!p.from_buffer) prefetcher_.Offer(p.key, p.data);
    const uint64_t block_start = p.key.index * bs;
    const uint64_t from = std::max(offset, block_start);
    const uint64_t to = std::min(offset + n, block_start + p.data->size());
    if (to <= from) {  // the block ends before the bytes asked for
      return Status::Corruption("block " + std::to_string(p.key.index) + " of '" + id.key +
                                "' is shorter than the object");
    }
    out.push_back(ReadSlice{p.data, p.data->data() + (from - block_start), to - from});
  }
  return out;
}

}  // namespace dsfs
