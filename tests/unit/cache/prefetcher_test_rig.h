// The prefetcher tests' rig: small blocks, a real fetcher over a
// MemoryStore that can hold its GETs, and the budget. Test-only code.
#pragma once

#include <cstdint>

#include "cache/block_fetcher.h"
#include "cache/memory_budget.h"
#include "cache/prefetcher.h"
#include "common/metrics.h"
#include "readahead_test_util.h"

namespace dsfs::prefetcher_test {

constexpr uint64_t kBlock = 1024;

inline ReadAheadOptions Options() {
  ReadAheadOptions o;
  o.block_size = kBlock;
  o.max_inflight = 4;
  o.window_initial = kBlock;
  o.window_max = 16 * kBlock;
  o.seq_tolerance = kBlock;
  o.prefetch_mem = 1024 * kBlock;
  o.prefetch_whole = "*.safetensors";
  // One GET per block: most tests here count blocks and GETs one to one.
  // RunOptions() below fetches runs of blocks, as a default Config does.
  o.max_get_size = kBlock;
  return o;
}

// Read-ahead in runs: window / 4 blocks per GET, up to 4.
inline ReadAheadOptions RunOptions() {
  ReadAheadOptions o = Options();
  o.max_get_size = 4 * kBlock;
  o.readahead_gets = 4;
  o.window_initial = 8 * kBlock;
  return o;
}

// A handle opens the object and reads its first bytes (a whole-file
// prefetch starts at the first read, not at the open).
inline void OpenAndRead(Prefetcher& p, const ObjectId& id) {
  p.Opened(id);
  p.OnRead(id, 0, 10);
  p.ReadEnded(id);
}

// A prefetcher over a real fetcher and MemoryStore.
struct Rig {
  explicit Rig(ReadAheadOptions o = Options())
      : options(o),
        budget(o.prefetch_mem),
        fetcher(store, nullptr, o, &metrics),
        prefetcher(fetcher, budget, o, &metrics) {}
  ReadAheadOptions options;
  readahead_test::CancellableStore store;  // a MemoryStore unless told to hold GETs
  Metrics metrics;
  MemoryBudget budget;
  BlockFetcher fetcher;
  Prefetcher prefetcher;
};

}  // namespace dsfs::prefetcher_test
