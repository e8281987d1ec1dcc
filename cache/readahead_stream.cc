#include "cache/readahead_stream.h"

#include <future>
#include <utility>

namespace dsfs {

namespace {
bool Ready(const BlockFetcher::Future& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
}  // namespace

ReadAheadStream::~ReadAheadStream() {
  // Whatever still runs is no longer counted: the owner is going away
  // (shutdown) and has cancelled it.
  Release(charged_);
}

void ReadAheadStream::Release(uint64_t bytes) {
  charged_ -= bytes;
  budget_.Release(bytes);
}

void ReadAheadStream::Issue(uint64_t index, uint64_t bytes, uint64_t tick) {
  Block b;
  b.future = fetcher_.Fetch(BlockKey{id_, index}, FetchPriority::kPrefetch);
  b.bytes = bytes;
  b.last_use = tick;
  charged_ += bytes;
  blocks_.emplace(index, std::move(b));
}

void ReadAheadStream::IssueRun(uint64_t first, const std::vector<uint64_t>& bytes, uint64_t tick) {
  if (bytes.size() == 1) return Issue(first, bytes[0], tick);
  std::vector<BlockFetcher::Future> futures = fetcher_.FetchRun(BlockKey{id_, first}, bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    Block b;
    b.future = std::move(futures[i]);
    b.bytes = bytes[i];
    b.last_use = tick;
    charged_ += bytes[i];
    blocks_.emplace(first + i, std::move(b));
  }
}

void ReadAheadStream::Adopt(uint64_t index, BlockData data, uint64_t tick) {
  std::promise<Result<BlockData>> p;
  Block b;
  b.bytes = data->size();
  p.set_value(std::move(data));
  b.future = p.get_future().share();
  b.consumed = true;
  b.last_use = tick;
  charged_ += b.bytes;
  blocks_.emplace(index, std::move(b));
}

ReadAheadStream::BlockMap::iterator ReadAheadStream::Drop(BlockMap::iterator it,
                                                          bool abort_running) {
  Block& b = it->second;
  if (!Ready(b.future)) {
    (void)fetcher_.CancelPrefetch(BlockKey{id_, it->first}, abort_running);
  }
  if (Ready(b.future)) {
    Release(b.bytes);
  } else {
    // Running (being aborted, or a reader waits for it): its buffer exists
    // until the GET ends, so its bytes stay charged until then.
    draining_.push_back({std::move(b.future), b.bytes});
  }
  return blocks_.erase(it);
}

void ReadAheadStream::CancelQueued() {
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (!Ready(it->second.future) &&
        fetcher_.CancelPrefetch(BlockKey{id_, it->first}, /*abort_running=*/false) ==
            CancelOutcome::kDequeued) {
      Release(it->second.bytes);
      it = blocks_.erase(it);
    } else {
      ++it;
    }
  }
}

void ReadAheadStream::CancelAll() {
  CancelQueued();
  for (auto it = blocks_.begin(); it != blocks_.end();) it = Drop(it);
  Reap();
}

void ReadAheadStream::CancelAfterSeek(bool keep_running) {
  if (!keep_running) CancelQueued();
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (!keep_running && !Ready(it->second.future)) {
      it = Drop(it);
    } else {
      it->second.consumed = true;
      ++it;
    }
  }
}

uint64_t ReadAheadStream::YieldOne(bool queued_only) {
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    const uint64_t index = it->first;
    Block& b = it->second;
    if (Ready(b.future)) {
      if (b.consumed || queued_only) continue;  // the global eviction takes these first
    } else {
      CancelOutcome c = fetcher_.CancelPrefetch(BlockKey{id_, index}, /*abort_running=*/false);
      if (c != CancelOutcome::kDequeued && !Ready(b.future)) continue;  // running: leave it
    }
    const uint64_t bytes = b.bytes;
    Release(bytes);
    blocks_.erase(index);
    scheduled_until = std::min(scheduled_until, index);
    return bytes;
  }
  return 0;
}

void ReadAheadStream::Reap() {
  std::erase_if(draining_, [&](Draining& d) {
    if (!Ready(d.future)) return false;
    Release(d.bytes);
    return true;
  });
}

}  // namespace dsfs
