#include "cache/recent_blocks.h"

namespace dsfs {

std::optional<BlockData> RecentBlocks::Find(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(key);
  if (it == kept_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.data;
}

Result<std::optional<BlockData>> RecentBlocks::GetOrLoad(const BlockKey& key, uint64_t want,
                                                         const Load& load, bool* from_memory) {
  *from_memory = false;
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock lock(mu_);
    if (auto it = kept_.find(key); it != kept_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      *from_memory = true;
      return std::optional<BlockData>(it->second.data);
    }
    if (auto it = loading_.find(key); it != loading_.end()) {
      // Another thread reads this block now: its result is ours.
      std::shared_ptr<Pending> other = it->second;
      loaded_.wait(lock, [&] { return other->done; });
      *from_memory = other->result.ok() && other->result->has_value();
      return other->result;
    }
    pending = std::make_shared<Pending>();
    loading_.emplace(key, pending);
  }
  Result<std::optional<BlockData>> r = load();
  std::lock_guard lock(mu_);
  pending->result = r;
  pending->done = true;
  loading_.erase(key);
  if (r.ok() && r->has_value() && **r && (**r)->size() == want) KeepLocked(key, **r);
  loaded_.notify_all();
  return r;
}

void RecentBlocks::KeepLocked(const BlockKey& key, BlockData data) {
  const uint64_t size = data->size();
  if (size > capacity_ || kept_.count(key) != 0) return;
  while (bytes_ + size > capacity_ && !lru_.empty()) {
    auto it = kept_.find(lru_.back());
    bytes_ -= it->second.data->size();
    kept_.erase(it);
    lru_.pop_back();
  }
  lru_.push_front(key);
  kept_.emplace(key, Entry{std::move(data), lru_.begin()});
  bytes_ += size;
}

uint64_t RecentBlocks::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t RecentBlocks::blocks() const {
  std::lock_guard lock(mu_);
  return kept_.size();
}

}  // namespace dsfs
