#include "cache/prefetcher.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <future>

namespace dsfs {

namespace {
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
    : fetcher_(fetcher), budget_(budget), options_(options), block_size_(fetcher.block_size()) {
  if (metrics) {
    prefetch_metric_ =
        &metrics->GetCounter("dsfs_prefetch_blocks_total", "Blocks fetched by read-ahead");
    wait_metric_ = &metrics->GetCounter("dsfs_budget_wait_total",
                                        "Times read-ahead waited for the memory budget");
    hit_metric_ = &metrics->GetCounter("dsfs_prefetch_hits_total",
                                       "Demand blocks found in the read-ahead buffer");
  }
}

Prefetcher::~Prefetcher() {
  std::lock_guard lock(mu_);
  for (auto& [key, b] : buffer_) budget_.Release(b.bytes);
  for (auto& d : draining_) budget_.Release(d.bytes);
  buffer_.clear();
  draining_.clear();
}

Prefetcher::State& Prefetcher::GetStateLocked(const ObjectId& id) {
  auto [it, inserted] = states_.try_emplace(KeyOf(id));
  State& st = it->second;
  st.last_use = ++tick_;
  if (!inserted) return st;
  st.id = id;
  if (states_.size() > options_.max_tracked_objects) {
    // Forget the least recently used object nobody has open.
    auto victim = states_.end();
    for (auto s = states_.begin(); s != states_.end(); ++s) {
      if (s == it || s->second.handles > 0) continue;
      if (victim == states_.end() || s->second.last_use < victim->second.last_use) victim = s;
    }
    if (victim != states_.end()) ForgetStateLocked(victim->first);
  }
  return st;
}

void Prefetcher::ForgetStateLocked(const ObjKey& k) {
  auto it = states_.find(k);
  if (it == states_.end()) return;
  DropObjectLocked(it->second.id, /*all=*/true);
  std::erase(starved_, k);
  states_.erase(it);
}

void Prefetcher::DropLocked(
    std::map<BlockKey, Buffered, readahead_internal::BlockKeyLess>::iterator it) {
  if (Ready(it->second.future)) {
    budget_.Release(it->second.bytes);
  } else {
    // Still in flight: its bytes stay charged until the GET completes.
    draining_.push_back({std::move(it->second.future), it->second.bytes});
  }
  buffer_.erase(it);
}

// all: drop every buffered block of id; else only mark them evictable.
void Prefetcher::DropObjectLocked(const ObjectId& id, bool all) {
  auto it = buffer_.lower_bound(BlockKey{id, 0});
  while (it != buffer_.end() && it->first.object.key == id.key &&
         it->first.object.etag == id.etag) {
    if (all) {
      DropLocked(it++);
    } else {
      it->second.consumed = true;
      ++it;
    }
  }
}

void Prefetcher::ReapDrainingLocked() {
  std::erase_if(draining_, [&](Draining& d) {
    if (!Ready(d.future)) return false;
    budget_.Release(d.bytes);
    return true;
  });
}

bool Prefetcher::EvictableLocked(const BlockKey& key, const Buffered& b) const {
  if (!Ready(b.future)) return false;
  if (!b.future.get().ok()) return true;  // a failed prefetch is retried on demand
  if (!b.consumed) return false;          // unread read-ahead is kept
  auto st = states_.find(KeyOf(key.object));
  // The block its reader is in is kept for the following small reads.
  return st == states_.end() || key.index != st->second.last_block;
}

bool Prefetcher::ReserveLocked(uint64_t bytes) {
  ReapDrainingLocked();
  while (!budget_.TryReserve(bytes)) {
    auto victim = buffer_.end();
    for (auto it = buffer_.begin(); it != buffer_.end(); ++it) {
      if (!EvictableLocked(it->first, it->second)) continue;
      if (victim == buffer_.end() || it->second.last_use < victim->second.last_use) victim = it;
    }
    if (victim == buffer_.end()) return false;
    DropLocked(victim);
  }
  return true;
}

Prefetcher::ScheduleResult Prefetcher::ScheduleLocked(State& st, uint64_t max_blocks) {
  const uint64_t count = fetcher_.BlockCount(st.id);
  uint64_t start = st.scheduled_until;
  uint64_t end = count;
  if (!st.whole) {
    if (st.window == 0 || !st.has_history) return ScheduleResult::kDone;
    uint64_t window_blocks = (st.window + block_size_ - 1) / block_size_;
    start = std::max(start, st.last_block + 1);
    end = std::min(count, st.last_block + 1 + window_blocks);
  }
  uint64_t issued = 0;
  for (uint64_t idx = start; idx < end; ++idx) {
    BlockKey key{st.id, idx};
    if (!buffer_.contains(key)) {
      if (issued == max_blocks) return ScheduleResult::kMore;
      uint64_t len = fetcher_.BlockLength(st.id, idx);
      if (!ReserveLocked(len)) {
        if (!st.starved) {
          st.starved = true;
          starved_.push_back(KeyOf(st.id));
          if (wait_metric_) wait_metric_->Add();
        }
        return ScheduleResult::kStarved;
      }
      Buffered b;
      b.future = fetcher_.Fetch(key, FetchPriority::kPrefetch);
      b.bytes = len;
      b.last_use = ++tick_;
      buffer_.emplace(key, std::move(b));
      ++prefetched_;
      ++issued;
      if (prefetch_metric_) prefetch_metric_->Add();
    }
    st.scheduled_until = idx + 1;
  }
  return ScheduleResult::kDone;
}

void Prefetcher::PumpStarvedLocked() {
  // Round robin, one block per object per turn, so objects share the
  // budget as it frees.
  while (!starved_.empty()) {
    ObjKey k = starved_.front();
    starved_.pop_front();
    auto it = states_.find(k);
    if (it == states_.end()) continue;
    State& st = it->second;
    st.starved = false;
    ScheduleResult r = ScheduleLocked(st, 1);
    if (r == ScheduleResult::kStarved) {
      // ScheduleLocked re-queued it at the back; keep FIFO order instead.
      std::erase(starved_, k);
      starved_.push_front(k);
      return;
    }
    if (r == ScheduleResult::kMore) {
      st.starved = true;
      starved_.push_back(k);
    }
  }
}

void Prefetcher::Opened(const ObjectId& id) {
  std::lock_guard lock(mu_);
  State& st = GetStateLocked(id);
  ++st.handles;
  if (!st.whole && MatchesPrefetchGlob(options_.prefetch_whole, id.key)) {
    st.whole = true;
    st.scheduled_until = 0;
  }
  ReapDrainingLocked();
  PumpStarvedLocked();
  if (!st.starved) (void)ScheduleLocked(st, UINT64_MAX);
}

void Prefetcher::Released(const ObjectId& id) {
  std::lock_guard lock(mu_);
  auto it = states_.find(KeyOf(id));
  if (it == states_.end()) return;
  if (--it->second.handles > 0) return;
  ForgetStateLocked(it->first);
  ReapDrainingLocked();
  PumpStarvedLocked();
}

std::optional<BlockFetcher::Future> Prefetcher::Take(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = buffer_.find(key);
  if (it == buffer_.end()) return std::nullopt;
  Buffered& b = it->second;
  if (Ready(b.future) && !b.future.get().ok()) {
    // Failed read-ahead: drop it; the caller fetches afresh.
    DropLocked(it);
    return std::nullopt;
  }
  b.consumed = true;
  b.last_use = ++tick_;
  if (!Ready(b.future)) fetcher_.Expedite(key);
  if (hit_metric_) hit_metric_->Add();
  return b.future;
}

void Prefetcher::OnRead(const ObjectId& id, uint64_t offset, uint64_t len) {
  if (len == 0) return;
  std::lock_guard lock(mu_);
  State& st = GetStateLocked(id);
  const uint64_t first = offset / block_size_;
  const uint64_t last = (offset + len - 1) / block_size_;
  if (st.whole) {
    st.next_offset = offset + len;
    st.last_block = last;
    st.has_history = true;
  } else {
    bool sequential;
    if (!st.has_history) {
      sequential = offset == 0;
    } else {
      uint64_t tol = options_.seq_tolerance;
      sequential = offset + tol >= st.next_offset && offset <= st.next_offset + tol;
    }
    if (sequential) {
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
      const uint64_t keep = 1 + options_.seq_tolerance / block_size_;
      auto it = buffer_.lower_bound(BlockKey{id, 0});
      while (it != buffer_.end() && it->first.object == id && it->first.index + keep < first) {
        if (it->second.consumed || it->first.index + 4 * keep < first) {
          DropLocked(it++);
        } else {
          ++it;
        }
      }
    } else {
      st.window = 0;
      st.next_offset = offset + len;
      st.last_block = last;
      st.scheduled_until = 0;
      DropObjectLocked(id, /*all=*/false);
    }
    st.has_history = true;
  }
  ReapDrainingLocked();
  PumpStarvedLocked();
  if (!st.starved) (void)ScheduleLocked(st, UINT64_MAX);
}

void Prefetcher::Offer(const BlockKey& key, BlockData data) {
  std::lock_guard lock(mu_);
  if (!data || buffer_.contains(key) || !states_.contains(KeyOf(key.object))) return;
  if (!ReserveLocked(data->size())) return;
  std::promise<Result<BlockData>> p;
  Buffered b;
  b.bytes = data->size();
  p.set_value(std::move(data));
  b.future = p.get_future().share();
  b.consumed = true;
  b.last_use = ++tick_;
  buffer_.emplace(key, std::move(b));
}

void Prefetcher::Reclaim() {
  std::lock_guard lock(mu_);
  ReapDrainingLocked();
  PumpStarvedLocked();
}

Prefetcher::ObjectState Prefetcher::StateOf(const ObjectId& id) const {
  std::lock_guard lock(mu_);
  ObjectState out;
  auto it = states_.find(KeyOf(id));
  if (it == states_.end()) return out;
  const State& st = it->second;
  out.tracked = true;
  out.handles = st.handles;
  out.whole = st.whole;
  out.window = st.window;
  out.next_offset = st.next_offset;
  out.scheduled_until = st.scheduled_until;
  return out;
}

size_t Prefetcher::buffered_blocks() const {
  std::lock_guard lock(mu_);
  return buffer_.size();
}

uint64_t Prefetcher::prefetched_blocks() const {
  std::lock_guard lock(mu_);
  return prefetched_;
}

}  // namespace dsfs
