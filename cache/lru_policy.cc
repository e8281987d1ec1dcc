#include "cache/lru_policy.h"

namespace dsfs {

void LruPolicy::Add(const BlockId& id, uint64_t bytes, uint64_t seq) {
  Remove(id);
  entries_[id] = Entry{bytes, seq};
  order_.emplace(seq, id);
  total_bytes_ += bytes;
}

bool LruPolicy::AddIfAbsent(const BlockId& id, uint64_t bytes, uint64_t seq) {
  if (entries_.count(id)) return false;
  Add(id, bytes, seq);
  return true;
}

bool LruPolicy::Touch(const BlockId& id, uint64_t seq) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  if (seq <= it->second.seq) return true;
  order_.erase({it->second.seq, id});
  it->second.seq = seq;
  order_.emplace(seq, id);
  return true;
}

std::optional<LruPolicy::Entry> LruPolicy::Remove(const BlockId& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  Entry e = it->second;
  order_.erase({e.seq, id});
  total_bytes_ -= e.bytes;
  entries_.erase(it);
  return e;
}

std::optional<LruPolicy::Entry> LruPolicy::Find(const BlockId& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::vector<LruPolicy::Victim> LruPolicy::PickVictims(uint64_t bytes, const BlockId* keep) const {
  std::vector<Victim> out;
  uint64_t freed = 0;
  for (auto it = order_.begin(); it != order_.end() && freed < bytes; ++it) {
    if (keep && it->second == *keep) continue;
    uint64_t b = entries_.at(it->second).bytes;
    out.push_back(Victim{it->second, b});
    freed += b;
  }
  return out;
}

std::vector<BlockId> LruPolicy::Ids() const {
  std::vector<BlockId> ids;
  ids.reserve(entries_.size());
  for (const auto& [id, e] : entries_) ids.push_back(id);
  return ids;
}

}  // namespace dsfs
