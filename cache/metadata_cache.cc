#include "cache/metadata_cache.h"

#include <algorithm>
#include <vector>

namespace dsfs {

MetadataCache::StatResult MetadataCache::GetStat(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = stats_.find(path);
  if (it == stats_.end()) return {};
  if (clock_.Now() >= it->second.expires) {
    stats_.erase(it);
    return {};
  }
  if (it->second.negative) return {Lookup::kNegative, {}};
  return {Lookup::kFound, it->second.meta};
}

void MetadataCache::PutStat(const std::string& path, const NodeMeta& meta) {
  std::lock_guard lock(mu_);
  MakeRoomLocked();
  stats_[path] = StatEntry{false, meta, clock_.Now() + options_.stat_ttl};
}

void MetadataCache::PutNegative(const std::string& path) {
  std::lock_guard lock(mu_);
  MakeRoomLocked();
  // NodeMeta{}, not {}: GCC 12 -O3 -Werror=maybe-uninitialized rejects {}.
  stats_[path] = StatEntry{true, NodeMeta{}, clock_.Now() + options_.negative_ttl};
}

void MetadataCache::Invalidate(const std::string& path) {
  std::lock_guard lock(mu_);
  stats_.erase(path);
  listings_.erase(path);
}

std::shared_ptr<const Listing> MetadataCache::GetListing(const std::string& dir) {
  std::lock_guard lock(mu_);
  auto it = listings_.find(dir);
  if (it == listings_.end()) return nullptr;
  if (clock_.Now() >= it->second.expires) {
    listings_.erase(it);
    return nullptr;
  }
  return it->second.listing;
}

void MetadataCache::PutListing(const std::string& dir, std::shared_ptr<const Listing> listing) {
  std::lock_guard lock(mu_);
  if (listings_.size() >= options_.max_listings) {
    const auto now = clock_.Now();
    std::erase_if(listings_, [&](const auto& kv) { return now >= kv.second.expires; });
    if (listings_.size() >= options_.max_listings) listings_.clear();
  }
  listings_[dir] = ListingEntry{std::move(listing), clock_.Now() + options_.list_ttl};
}

void MetadataCache::MakeRoomLocked() {
  if (stats_.size() < options_.max_entries) return;
  const auto now = clock_.Now();
  std::erase_if(stats_, [&](const auto& kv) { return now >= kv.second.expires; });
  if (stats_.size() < options_.max_entries) return;
  // Still full of live entries: drop the half that expires first.
  std::vector<Clock::time_point> expiries;
  expiries.reserve(stats_.size());
  for (const auto& kv : stats_) expiries.push_back(kv.second.expires);
  auto mid = expiries.begin() + static_cast<long>(expiries.size() / 2);
  std::nth_element(expiries.begin(), mid, expiries.end());
  const auto cutoff = *mid;
  std::erase_if(stats_, [&](const auto& kv) { return kv.second.expires <= cutoff; });
}

}  // namespace dsfs
