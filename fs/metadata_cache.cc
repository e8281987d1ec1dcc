#include "fs/metadata_cache.h"

#include <algorithm>
#include <vector>

namespace dsfs {
namespace {

// Heap bytes of a std::string beyond the object itself (libstdc++ keeps up
// to 15 chars inline; malloc adds ~16 bytes of overhead).
size_t HeapBytes(const std::string& s) { return s.size() > 15 ? s.size() + 1 + 16 : 0; }

}  // namespace

size_t Listing::ChildBytes(const std::string& name, const Child& child) {
  // An rb-tree node: header (32) + key + value, plus malloc overhead (16).
  return 48 + sizeof(std::string) + sizeof(Child) + HeapBytes(name) + HeapBytes(child.etag);
}

MetadataCache::MetadataCache(MetadataCacheOptions options, const Clock& clock)
    : options_(options),
      clock_(clock),
      live_(std::make_shared<std::atomic<size_t>>(0)),
      next_sweep_(clock.Now() + options.sweep_interval) {}

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
  SweepIfDueLocked();
  MakeRoomLocked();
  stats_[path] = StatEntry{false, meta, clock_.Now() + options_.stat_ttl};
}

void MetadataCache::PutNegative(const std::string& path) {
  std::lock_guard lock(mu_);
  SweepIfDueLocked();
  MakeRoomLocked();
  // NodeMeta{}, not {}: GCC 12 -O3 -Werror=maybe-uninitialized rejects {}.
  stats_[path] = StatEntry{true, NodeMeta{}, clock_.Now() + options_.negative_ttl};
}

void MetadataCache::Invalidate(const std::string& path) {
  std::lock_guard lock(mu_);
  stats_.erase(path);
  if (auto it = listings_.find(path); it != listings_.end()) EraseListingLocked(it);
}

void MetadataCache::InvalidateListing(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto it = listings_.find(dir); it != listings_.end()) EraseListingLocked(it);
}

void MetadataCache::InvalidateTree(const std::string& path) {
  const std::string under = path + "/";
  auto inside = [&](const std::string& p) {
    return path.empty() || p == path || p.starts_with(under);
  };
  std::lock_guard lock(mu_);
  std::erase_if(stats_, [&](const auto& e) { return inside(e.first); });
  for (auto it = listings_.begin(); it != listings_.end();) {
    auto next = std::next(it);
    if (inside(it->first)) EraseListingLocked(it);
    it = next;
  }
}

std::shared_ptr<const Listing> MetadataCache::GetListing(const std::string& dir) {
  std::lock_guard lock(mu_);
  SweepIfDueLocked();
  auto it = listings_.find(dir);
  if (it == listings_.end()) return nullptr;
  if (clock_.Now() >= it->second.expires) {
    EraseListingLocked(it);
    return nullptr;
  }
  return it->second.listing;
}

void MetadataCache::PutListing(const std::string& dir, std::shared_ptr<const Listing> listing) {
  if (!listing) return;
  std::lock_guard lock(mu_);
  SweepIfDueLocked();
  if (auto it = listings_.find(dir); it != listings_.end()) EraseListingLocked(it);
  // Caching it costs nothing while it is live anyway; a listing bigger than
  // the whole budget is never kept past its last handle.
  if (listing->bytes > options_.max_listing_bytes) return;
  cached_bytes_ += listing->bytes;
  listings_[dir] = ListingEntry{std::move(listing), clock_.Now() + options_.list_ttl};
}

bool MetadataCache::MakeRoomForListing(size_t bytes) {
  const size_t max = options_.max_listing_bytes;
  if (bytes > max) return false;
  auto fits = [&] { return live_->load() + bytes <= max; };
  if (fits()) return true;
  std::vector<std::shared_ptr<const Listing>> dropped;  // freed outside the lock
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.Now();
    std::vector<std::pair<Clock::time_point, std::string>> order;
    order.reserve(listings_.size());
    for (const auto& [dir, e] : listings_) {
      // Expired ones sort first: their expiry is in the past.
      order.emplace_back(e.expires, dir);
    }
    std::sort(order.begin(), order.end());
    size_t freed = 0;  // bytes of dropped listings nobody else holds
    for (const auto& [expires, dir] : order) {
      if (expires > now && live_->load() - freed + bytes <= max) break;
      auto it = listings_.find(dir);
      if (it->second.listing.use_count() == 1) freed += it->second.listing->bytes;
      dropped.push_back(it->second.listing);
      EraseListingLocked(it);
    }
  }
  dropped.clear();  // the live count drops as the last references go
  return fits();
}

bool MetadataCache::ReserveListingBytes(size_t bytes) {
  if (!MakeRoomForListing(bytes)) return false;
  const size_t max = options_.max_listing_bytes;
  size_t live = live_->load();
  do {
    if (live + bytes > max) return false;  // another load took the room first
  } while (!live_->compare_exchange_weak(live, live + bytes));
  return true;
}

void MetadataCache::UnreserveListingBytes(size_t bytes) { *live_ -= bytes; }

std::shared_ptr<const Listing> MetadataCache::Track(Listing listing) {
  const size_t bytes = listing.bytes;
  *live_ += bytes;
  return std::shared_ptr<const Listing>(new Listing(std::move(listing)),
                                        [live = live_, bytes](const Listing* l) {
                                          *live -= bytes;
                                          delete l;
                                        });
}

size_t MetadataCache::cached_listing_bytes() {
  std::lock_guard lock(mu_);
  return cached_bytes_;
}

size_t MetadataCache::cached_listings() {
  std::lock_guard lock(mu_);
  return listings_.size();
}

void MetadataCache::EraseListingLocked(std::unordered_map<std::string, ListingEntry>::iterator it) {
  cached_bytes_ -= it->second.listing->bytes;
  listings_.erase(it);
}

void MetadataCache::SweepIfDueLocked() {
  const auto now = clock_.Now();
  if (now < next_sweep_) return;
  next_sweep_ = now + options_.sweep_interval;
  std::erase_if(stats_, [&](const auto& kv) { return now >= kv.second.expires; });
  for (auto it = listings_.begin(); it != listings_.end();) {
    auto next = std::next(it);
    if (now >= it->second.expires) EraseListingLocked(it);
    it = next;
  }
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
