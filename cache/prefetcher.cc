#include "cache/prefetcher.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <vector>

namespace dsfs {

namespace {
// Non-sequential reads in a row after which a whole-file stream's reader is
// taken to read at random: its position no longer moves warm read-ahead.
constexpr int kWholeJumpsRandom = 2;
// At most 1/this of the budget is kept behind one reader (KeptBehind).
constexpr uint64_t kKeptBehindBudgetShare = 8;

bool Ready(const BlockFetcher::Future& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
}  // namespace

bool MatchesPrefetchGlob(const std::string& glob, const std::string& key) {
  if (glob.empty()) return false;
  std::string subject = key;
  if (glob.find('/') == std::string::npos) {
    size_t slash = key.rfind('/');
    if (slash != std::string::npos) subject = key.substr(slash + 1);
  }
  return fnmatch(glob.c_str(), subject.c_str(), 0) == 0;
}

Prefetcher::Prefetcher(BlockFetcher& fetcher, MemoryBudget& budget, const ReadAheadOptions& options,
                       Metrics* metrics)
    : fetcher_(fetcher),
      budget_(budget),
      options_(options),
      block_size_(fetcher.block_size()),
      clock_(options.clock ? options.clock : &steady_clock_) {
  if (metrics) {
    prefetch_metric_ =
        &metrics->GetCounter("dsfs_prefetch_blocks_total", "Blocks fetched by read-ahead");
    wait_metric_ = &metrics->GetCounter("dsfs_budget_wait_total",
                                        "Times read-ahead waited for the memory budget");
    hit_metric_ = &metrics->GetCounter("dsfs_prefetch_hits_total",
                                       "Demand blocks found in the read-ahead buffer");
    reclaim_metric_ =
        &metrics->GetCounter("dsfs_prefetch_reclaimed_total",
                             "Read-ahead blocks taken back from idle streams for a reading one");
  }
}

Prefetcher::~Prefetcher() {
  std::lock_guard lock(mu_);
  // Cancel first (queued fetches are never issued, running GETs are
  // aborted), so the fetcher's destructor has nothing to wait for; each
  // stream's destructor returns what is still charged.
  for (auto& [key, st] : streams_) st->CancelQueued();
  for (auto& [key, st] : streams_) st->CancelAll();
  streams_.clear();
  closing_.clear();
}

Prefetcher::Stream* Prefetcher::FindLocked(const ObjectId& id) const {
  auto it = streams_.find(KeyOf(id));
  return it == streams_.end() ? nullptr : it->second.get();
}

bool Prefetcher::SequentialLocked(const Stream& st, uint64_t offset) const {
  if (!st.has_history) return offset == 0;
  const uint64_t tol = options_.seq_tolerance;
  return offset + tol >= st.next_offset && offset <= st.next_offset + tol;
}

bool Prefetcher::Sequential(const ObjectId& id, uint64_t offset) const {
  std::lock_guard lock(mu_);
  const Stream* st = FindLocked(id);
  return st == nullptr ? offset == 0 : SequentialLocked(*st, offset);
}

Prefetcher::Stream& Prefetcher::GetStreamLocked(const ObjectId& id) {
  auto [it, inserted] = streams_.try_emplace(KeyOf(id));
  if (inserted) it->second = std::make_unique<Stream>(id, fetcher_, budget_);
  Stream& st = *it->second;
  st.last_use = ++tick_;
  if (!inserted) return st;
  if (streams_.size() > options_.max_tracked_objects) {
    // Forget the least recently used object nobody has open.
    auto victim = streams_.end();
    for (auto s = streams_.begin(); s != streams_.end(); ++s) {
      if (s == it || s->second->handles > 0) continue;
      if (victim == streams_.end() || s->second->last_use < victim->second->last_use) victim = s;
    }
    if (victim != streams_.end()) CloseStreamLocked(victim->first);
  }
  return st;
}

void Prefetcher::CloseStreamLocked(const ObjKey& k) {
  auto it = streams_.find(k);
  if (it == streams_.end()) return;
  it->second->CancelAll();
  std::erase(starved_, k);
  if (it->second->charged() > 0) closing_.push_back(std::move(it->second));
  streams_.erase(it);
}

void Prefetcher::ReapLocked() {
  for (auto& [key, st] : streams_) st->Reap();
  std::erase_if(closing_, [](std::unique_ptr<Stream>& st) {
    st->Reap();
    return st->charged() == 0;
  });
}

bool Prefetcher::EvictableLocked(const Stream& st, uint64_t index, const Stream::Block& b) const {
  if (!Ready(b.future)) return false;
  if (!b.future.get().ok()) return true;  // a failed prefetch is retried on demand
  if (!b.consumed) return false;          // unread read-ahead is kept
  // The block its reader is in and those just behind it (within
  // seq_tolerance) are kept for the requests still to come: a block is
  // consumed at its first request, and the kernel's read-ahead (mmap faults
  // above all) sends the rest of it, out of order, while the next blocks
  // are already being read. Evicted there under a whole-file prefetch's
  // budget pressure, a cold 4-shard mmap load read 402 of its 512 blocks
  // back from the disk cache.
  return index + KeptBehind() < st.last_block || index > st.last_block;
}

uint64_t Prefetcher::UnreadBlocks(const Stream& st) {
  uint64_t n = 0;
  for (const auto& [index, b] : st.blocks()) n += b.consumed ? 0 : 1;
  return n;
}

uint64_t Prefetcher::KeptBehind() const {
  // seq_tolerance's worth of blocks, but never so many that the kept blocks
  // of a few readers hold the whole budget and starve every read-ahead.
  const uint64_t budget_blocks = budget_.capacity() / block_size_;
  return std::clamp<uint64_t>(options_.seq_tolerance / block_size_, 0,
                              budget_blocks / kKeptBehindBudgetShare);
}

bool Prefetcher::EvictOneLocked() {
  Stream* victim_stream = nullptr;
  Stream::BlockMap::iterator victim;
  for (auto& [key, st] : streams_) {
    for (auto it = st->blocks().begin(); it != st->blocks().end(); ++it) {
      if (!EvictableLocked(*st, it->first, it->second)) continue;
      if (!victim_stream || it->second.last_use < victim->second.last_use) {
        victim_stream = st.get();
        victim = it;
      }
    }
  }
  if (!victim_stream) return false;
  victim_stream->Drop(victim);
  return true;
}

bool Prefetcher::ReclaimOneLocked(const Stream& requester) {
  const Clock::time_point now = Now();
  // The idle stream holding the most budget gives first.
  std::vector<Stream*> idle;
  for (auto& [key, st] : streams_) {
    if (st.get() == &requester || st->Reading(now, options_.readahead_idle)) continue;
    if (st->charged() > 0) idle.push_back(st.get());
  }
  std::sort(idle.begin(), idle.end(),
            [](const Stream* a, const Stream* b) { return a->charged() > b->charged(); });
  for (Stream* st : idle) {
    if (st->YieldOne() == 0) continue;
    ++reclaimed_;
    if (reclaim_metric_) reclaim_metric_->Add();
    MarkStarvedLocked(*st);  // resumes when budget frees and nobody reading waits
    return true;
  }
  // A reading stream over its fair share gives back a fetch never issued
  // to one under it; it fetches that again at a later read of its own.
  const uint64_t fair = FairShareLocked();
  if (requester.charged() >= fair) return false;
  std::vector<Stream*> over;
  for (auto& [key, st] : streams_) {
    if (st.get() != &requester && st->charged() > fair) over.push_back(st.get());
  }
  std::sort(over.begin(), over.end(),
            [](const Stream* a, const Stream* b) { return a->charged() > b->charged(); });
  for (Stream* st : over) {
    if (st->YieldOne(/*queued_only=*/true) == 0) continue;
    ++reclaimed_;
    if (reclaim_metric_) reclaim_metric_->Add();
    return true;
  }
  return false;
}

uint64_t Prefetcher::FairShareLocked() const {
  // Streams nobody reads are not counted: an idle stream's read-ahead is
  // taken back whole (ReclaimOneLocked).
  const Clock::time_point now = Now();
  uint64_t n = 0;
  for (const auto& [key, st] : streams_) {
    if (st->handles > 0 && (st->whole || st->window > 0) &&
        st->Reading(now, options_.readahead_idle)) {
      ++n;
    }
  }
  return budget_.capacity() / std::max<uint64_t>(n, 1);
}

bool Prefetcher::ReserveLocked(uint64_t bytes, Stream* requester) {
  ReapLocked();
  while (!budget_.TryReserve(bytes)) {
    if (EvictOneLocked()) continue;
    if (requester && requester->Reading(Now(), options_.readahead_idle) &&
        ReclaimOneLocked(*requester)) {
      continue;
    }
    return false;
  }
  return true;
}

void Prefetcher::MarkStarvedLocked(Stream& st) {
  if (st.starved) return;
  st.starved = true;
  starved_.push_back(KeyOf(st.id()));
}

uint64_t Prefetcher::RunBlocks(const Stream& st) const {
  // A whole-file prefetch reads ahead as far as the budget lets it: its
  // runs are those of the largest window.
  const uint64_t window = st.whole ? std::max(options_.window_max, block_size_) : st.window;
  const uint64_t gets = static_cast<uint64_t>(std::max(options_.readahead_gets, 1));
  const uint64_t most = std::max<uint64_t>(1, options_.max_get_size / block_size_);
  return std::clamp<uint64_t>(window / gets / block_size_, 1, most);
}

Prefetcher::ScheduleResult Prefetcher::ScheduleLocked(Stream& st, uint64_t max_blocks) {
  const uint64_t count = fetcher_.BlockCount(st.id());
  uint64_t start = st.scheduled_until;
  uint64_t end = count;
  const uint64_t run = RunBlocks(st);
  uint64_t whole_runs = UINT64_MAX;  // blocks this call may issue
  // A whole-file prefetch starts at the object's first read, not at its
  // open: a handle opened over pages the kernel still caches (a load that
  // runs again) sends no reads, and prefetching it from open read blocks
  // from the disk cache that nobody asked for (36 per hot 4-shard load).
  if (st.whole && !st.started) return ScheduleResult::kDone;
  if (!st.whole) {
    if (st.window == 0 || !st.has_history) return ScheduleResult::kDone;
    uint64_t window_blocks = (st.window + block_size_ - 1) / block_size_;
    start = std::max(start, st.last_block + 1);
    end = std::min(count, st.last_block + 1 + window_blocks);
    if (run > 1 && end < count) {
      // A reader moves the window's end a block at a time: only whole runs
      // are issued before the object's end (the rest waits for the window
      // to move on), else most GETs would be one block.
      uint64_t missing = 0;
      for (uint64_t idx = start; idx < end; ++idx) missing += st.Has(idx) ? 0 : 1;
      whole_runs = missing / run * run;
      if (whole_runs == 0) return ScheduleResult::kDone;
    }
  }
  // Blocks the disk cache holds are read ahead at most warm_blocks past the
  // reader, one fetch each (several workers read the disk at once).
  const uint64_t warm_blocks = std::max<uint64_t>(1, options_.readahead_warm / block_size_);
  const uint64_t reader_block = st.has_history ? st.last_block : 0;
  // What the stream holds ahead of its reader (its evictable blocks aside),
  // against its fair share while other streams read ahead too.
  const uint64_t fair = FairShareLocked();
  uint64_t held = 0;
  if (fair < budget_.capacity()) {
    held = st.charged();
    for (auto it = st.blocks().begin(); it != st.blocks().end(); ++it) {
      if (EvictableLocked(st, it->first, it->second)) held -= std::min(held, it->second.bytes);
    }
  }
  uint64_t issued = 0;
  uint64_t run_first = 0;
  std::vector<uint64_t> run_bytes;  // reserved, not issued yet
  auto flush = [&] {
    if (run_bytes.empty()) return;
    st.IssueRun(run_first, run_bytes, ++tick_);
    prefetched_ += run_bytes.size();
    if (prefetch_metric_) prefetch_metric_->Add(run_bytes.size());
    run_bytes.clear();
  };
  // A run cut short by the budget or the stream's fair share: while the
  // stream still holds a whole run its reader has not reached, the short
  // run is not sent; its blocks wait until the budget frees a whole run.
  // Budget comes back a block at a time as readers move on, and sending
  // what fit made a cold 4-shard load's GETs 8 MiB on average instead of
  // 16 (133 GETs per GiB: the origin's cost per request).
  auto flush_or_defer = [&] {
    if (run_bytes.empty()) return;
    if (run_bytes.size() < run && UnreadBlocks(st) >= run) {
      uint64_t bytes = 0;
      for (uint64_t b : run_bytes) bytes += b;
      budget_.Release(bytes);
      held -= std::min(held, bytes);
      st.scheduled_until = run_first;
      run_bytes.clear();
      return;
    }
    flush();
  };
  for (uint64_t idx = start; idx < end; ++idx) {
    if (!st.Has(idx)) {
      if (issued == whole_runs) break;  // a partial run waits
      if (issued == max_blocks) {
        flush();
        return ScheduleResult::kMore;
      }
      const bool cached = fetcher_.Cached(BlockKey{st.id(), idx});
      if (cached && idx > reader_block + warm_blocks) break;  // the reader moves it on
      if (!run_bytes.empty() && (cached || run_first + run_bytes.size() != idx)) flush();
      uint64_t len = fetcher_.BlockLength(st.id(), idx);
      if (fair < budget_.capacity() && held > 0 && held + len > fair) {
        flush_or_defer();
        return ScheduleResult::kCapped;
      }
      if (!ReserveLocked(len, &st)) {
        flush_or_defer();
        if (!st.starved && wait_metric_) wait_metric_->Add();
        MarkStarvedLocked(st);
        return ScheduleResult::kStarved;
      }
      if (run_bytes.empty()) run_first = idx;
      run_bytes.push_back(len);
      held += len;
      ++issued;
      if (cached || run_bytes.size() >= run) flush();
    }
    st.scheduled_until = std::max(st.scheduled_until, idx + 1);
  }
  flush();
  return ScheduleResult::kDone;
}

void Prefetcher::PumpStarvedLocked() {
  // Round robin, one run per stream per turn, so streams share the
  // budget as it frees; streams being read go before idle ones.
  const Clock::time_point now = Now();
  while (!starved_.empty()) {
    auto pos = std::find_if(starved_.begin(), starved_.end(), [&](const ObjKey& k) {
      auto it = streams_.find(k);
      return it != streams_.end() && it->second->Reading(now, options_.readahead_idle);
    });
    if (pos == starved_.end()) pos = starved_.begin();
    ObjKey k = *pos;
    starved_.erase(pos);
    auto it = streams_.find(k);
    if (it == streams_.end()) continue;
    Stream& st = *it->second;
    st.starved = false;
    ScheduleResult r = ScheduleLocked(st, RunBlocks(st));
    if (r == ScheduleResult::kStarved) {
      // ScheduleLocked re-queued it at the back; keep FIFO order instead.
      std::erase(starved_, k);
      starved_.push_front(k);
      return;
    }
    if (r == ScheduleResult::kMore) MarkStarvedLocked(st);
  }
}

void Prefetcher::Opened(const ObjectId& id) {
  std::lock_guard lock(mu_);
  Stream& st = GetStreamLocked(id);
  ++st.handles;
  if (!st.whole && MatchesPrefetchGlob(options_.prefetch_whole, id.key)) {
    st.whole = true;
    st.scheduled_until = 0;
  }
  ReapLocked();
  PumpStarvedLocked();
  if (!st.starved) (void)ScheduleLocked(st, UINT64_MAX);
}

void Prefetcher::Released(const ObjectId& id) {
  std::lock_guard lock(mu_);
  Stream* st = FindLocked(id);
  if (!st) return;
  if (--st->handles > 0) return;
  CloseStreamLocked(KeyOf(id));
  ReapLocked();
  PumpStarvedLocked();
}

std::optional<BlockFetcher::Future> Prefetcher::Take(const BlockKey& key) {
  std::lock_guard lock(mu_);
  Stream* st = FindLocked(key.object);
  if (!st) return std::nullopt;
  auto it = st->blocks().find(key.index);
  if (it == st->blocks().end()) return std::nullopt;
  Stream::Block& b = it->second;
  if (Ready(b.future) && !b.future.get().ok()) {
    // Failed read-ahead: drop it; the caller fetches afresh.
    st->Drop(it);
    return std::nullopt;
  }
  b.consumed = true;
  b.last_use = ++tick_;
  // A reader waits for it now: never cancelled, served before read-ahead.
  if (!Ready(b.future)) fetcher_.Expedite(key);
  if (hit_metric_) hit_metric_->Add();
  return b.future;
}

void Prefetcher::ReadStarting(const ObjectId& id) {
  std::lock_guard lock(mu_);
  Stream* st = FindLocked(id);
  if (!st || !st->whole || st->started) return;
  st->started = true;
  ReapLocked();
  PumpStarvedLocked();
  if (!st->starved) (void)ScheduleLocked(*st, UINT64_MAX);
}

void Prefetcher::OnRead(const ObjectId& id, uint64_t offset, uint64_t len) {
  if (len == 0) return;
  std::lock_guard lock(mu_);
  Stream& st = GetStreamLocked(id);
  st.started = true;
  st.last_read = Now();
  ++st.reads_in_progress;
  const uint64_t first = offset / block_size_;
  const uint64_t last = (offset + len - 1) / block_size_;
  if (st.whole) {
    // The reader's position (what warm read-ahead follows) moves with
    // sequential reads and with a first jump (a loader moving to another
    // tensor); a reader that keeps jumping reads at random, and moving
    // the position with it would read the cached shard ahead of every jump.
    // Sequential reads arrive out of order (the kernel's read-ahead, many
    // FUSE threads): the position is the furthest of them, so a late
    // request never moves it back over blocks already being read.
    const bool sequential = st.has_history && SequentialLocked(st, offset);
    st.jumps = !st.has_history || sequential ? 0 : st.jumps + 1;
    if (sequential) {
      st.last_block = std::max(st.last_block, last);
      st.next_offset = std::max(st.next_offset, offset + len);
    } else {
      if (st.jumps < kWholeJumpsRandom) st.last_block = last;
      st.next_offset = offset + len;
    }
    st.has_history = true;
    // Read blocks well behind this read that the disk cache holds are
    // dropped: reading one again costs a disk read, not a GET, and keeping
    // every block of a shard until it is closed made each block of a warm
    // load a fresh buffer (a page fault per 4 KiB) instead of a recycled one.
    const uint64_t keep = 1 + options_.seq_tolerance / block_size_;
    for (auto it = st.blocks().begin(); it != st.blocks().end() && it->first + keep < first;) {
      if (it->second.consumed && Ready(it->second.future) &&
          fetcher_.Cached(BlockKey{id, it->first})) {
        it = st.Drop(it, /*abort_running=*/false);
      } else {
        ++it;
      }
    }
  } else {
    if (SequentialLocked(st, offset)) {
      if (st.window == 0) {
        st.window = std::max<uint64_t>(options_.window_initial, 1);
      } else if (last > st.last_block) {
        st.window = std::min(st.window * 2, std::max(options_.window_max, options_.window_initial));
      }
      st.next_offset = st.has_history ? std::max(st.next_offset, offset + len) : offset + len;
      st.last_block = st.has_history ? std::max(st.last_block, last) : last;
      // Blocks the reader has passed are dropped, except those within
      // seq_tolerance behind it: the kernel's read-ahead, served by many
      // FUSE threads, delivers requests that much out of order, and a block
      // dropped too early is fetched twice. A passed block nobody has read
      // yet is most likely such a late request's: it stays 4x as far.
      // A passed block whose GET still runs is not aborted: a late request
      // joins that GET instead of starting another.
      const uint64_t keep = 1 + options_.seq_tolerance / block_size_;
      auto it = st.blocks().begin();
      while (it != st.blocks().end() && it->first + keep < first) {
        if (it->second.consumed || it->first + 4 * keep < first) {
          it = st.Drop(it, /*abort_running=*/false);
        } else {
          ++it;
        }
      }
    } else {
      st.window = 0;
      st.next_offset = offset + len;
      st.last_block = last;
      st.scheduled_until = 0;
      // A read near a block the stream holds (within 4x seq_tolerance, as
      // far as a passed block is kept) is most likely a request the
      // kernel's parallel read-ahead delivered out of order, not a seek
      // away. Its fetches stay (orphaned, evictable once done): cancelling
      // them would fetch them twice when the reader goes on. A read far
      // from everything the stream holds seeked away: what it still
      // fetches is not wanted (fetches a reader waits for run on).
      const uint64_t margin = 4 * (1 + options_.seq_tolerance / block_size_);
      st.CancelAfterSeek(/*keep_running=*/st.HoldsNear(first, last, margin));
    }
    st.has_history = true;
  }
  ReapLocked();
  PumpStarvedLocked();
  if (!st.starved) (void)ScheduleLocked(st, UINT64_MAX);
}

void Prefetcher::ReadEnded(const ObjectId& id) {
  std::lock_guard lock(mu_);
  Stream* st = FindLocked(id);
  if (!st || st->reads_in_progress == 0) return;  // closed and forgotten meanwhile
  --st->reads_in_progress;
  st->last_read = Now();
}

void Prefetcher::Offer(const BlockKey& key, BlockData data) {
  std::lock_guard lock(mu_);
  Stream* st = FindLocked(key.object);
  if (!data || !st || st->Has(key.index)) return;
  if (!ReserveLocked(data->size(), nullptr)) return;
  st->Adopt(key.index, std::move(data), ++tick_);
}

void Prefetcher::Reclaim() {
  std::lock_guard lock(mu_);
  ReapLocked();
  PumpStarvedLocked();
}

Prefetcher::ObjectState Prefetcher::StateOf(const ObjectId& id) const {
  std::lock_guard lock(mu_);
  ObjectState out;
  const Stream* st = FindLocked(id);
  if (!st) return out;
  out.tracked = true;
  out.handles = st->handles;
  out.whole = st->whole;
  out.window = st->window;
  out.next_offset = st->next_offset;
  out.scheduled_until = st->scheduled_until;
  out.charged = st->charged();
  out.blocks = st->blocks().size();
  for (const auto& [index, b] : st->blocks()) out.ready += Ready(b.future) ? 1 : 0;
  return out;
}

size_t Prefetcher::buffered_blocks() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, st] : streams_) n += st->blocks().size();
  return n;
}

uint64_t Prefetcher::prefetched_blocks() const {
  std::lock_guard lock(mu_);
  return prefetched_;
}

uint64_t Prefetcher::reclaimed_blocks() const {
  std::lock_guard lock(mu_);
  return reclaimed_;
}

size_t Prefetcher::closing_streams() const {
  std::lock_guard lock(mu_);
  return closing_.size();
}

}  // namespace dsfs
