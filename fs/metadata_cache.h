// MetadataCache: stat and directory-listing results with TTLs, negative
// (ENOENT) entries with a shorter TTL. Paths are relative to the mount root
// ("" is the root, "a/b").
//
// Bounded whatever users do:
// - stat/negative entries: at most max_entries; expired ones are pruned
//   when the table is full, and the half expiring first is dropped if that
//   is not enough;
// - listings: every Listing made by Track() counts its bytes as "live"
//   until its last holder (the cache or an open directory handle) drops it;
//   MakeRoomForListing() evicts cached listings so that all live listings
//   fit in max_listing_bytes, and says no when open handles hold the rest;
// - expired entries of both kinds are swept every sweep_interval (on the
//   next call), not only when a table is full, so memory comes back after a
//   burst of big listings.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/config.h"

namespace dsfs {

enum class NodeKind { kFile, kDir, kSymlink };

// What the filesystem knows about one name.
struct NodeMeta {
  NodeKind kind = NodeKind::kFile;
  uint64_t size = 0;
  std::string etag;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  // x-amz-meta-atime / -ctime. Both zero: not known, the mtime stands in.
  int64_t atime_sec = 0;
  uint32_t atime_nsec = 0;
  int64_t ctime_sec = 0;
  uint32_t ctime_nsec = 0;
  mode_t mode = 0;  // full st_mode (type bits included)
  uid_t uid = 0;
  gid_t gid = 0;
};

// One directory's children: name -> what the listing said. Files carry
// size/etag/mtime from the listing (no user metadata); dirs carry nothing.
// Immutable once made: open directory handles and the cache share one.
struct Listing {
  struct Child {
    NodeKind kind = NodeKind::kFile;
    uint64_t size = 0;
    std::string etag;
    int64_t mtime_sec = 0;
  };
  std::map<std::string, Child> children;
  // Approximate heap bytes of `children` (ChildBytes of each).
  size_t bytes = sizeof(Listing);

  // What one child costs: the map node, and the heap parts of its strings.
  static size_t ChildBytes(const std::string& name, const Child& child);
};

// Filled by MetadataCacheOptionsFrom (fs/filesystem.h); the defaults are a
// default FsConfig's (the reasons are there).
struct MetadataCacheOptions {
  std::chrono::milliseconds stat_ttl = FsConfig{}.stat_ttl;
  std::chrono::milliseconds negative_ttl = FsConfig{}.negative_ttl;
  std::chrono::milliseconds list_ttl = FsConfig{}.list_ttl;
  size_t max_entries = FsConfig{}.max_stat_entries;  // stat + negative entries
  // All live listings (cached or held by open directory handles).
  size_t max_listing_bytes = FsConfig{}.list_mem;
  // How often expired entries are swept.
  std::chrono::milliseconds sweep_interval = FsConfig{}.list_sweep_interval;
};

class MetadataCache {
 public:
  enum class Lookup { kMiss, kFound, kNegative };
  struct StatResult {
    Lookup state = Lookup::kMiss;
    NodeMeta meta;  // valid when kFound
  };

  MetadataCache(MetadataCacheOptions options, const Clock& clock);

  StatResult GetStat(const std::string& path);
  void PutStat(const std::string& path, const NodeMeta& meta);
  void PutNegative(const std::string& path);
  void Invalidate(const std::string& path);
  // Drops the cached listing of `dir` only (a name in it was added or
  // removed: the next readdir lists again).
  void InvalidateListing(const std::string& dir);
  // Drops stat entries and listings of `path` and of everything under it.
  void InvalidateTree(const std::string& path);

  std::shared_ptr<const Listing> GetListing(const std::string& dir);
  // Caches a listing made by Track(); not cached when it does not fit.
  void PutListing(const std::string& dir, std::shared_ptr<const Listing> listing);

  // Makes room for `bytes` more of live listings: drops cached listings,
  // expired ones first, then those expiring soonest. False when the live
  // listings still do not fit (open handles hold them).
  bool MakeRoomForListing(size_t bytes);
  // A listing being loaded counts its bytes as live as it grows, so
  // concurrent loads cannot each fill list_mem: Reserve makes room and
  // adds `bytes` to the live count (false, nothing added, when it does not
  // fit); Unreserve takes them back (before Track counts the finished
  // listing, or when the load fails).
  bool ReserveListingBytes(size_t bytes);
  void UnreserveListingBytes(size_t bytes);
  // A finished listing whose bytes count as live until its last holder
  // drops it.
  std::shared_ptr<const Listing> Track(Listing listing);
  // Bytes of all live listings, and of the cached ones.
  size_t live_listing_bytes() const { return live_->load(); }
  size_t cached_listing_bytes();
  size_t max_listing_bytes() const { return options_.max_listing_bytes; }
  size_t cached_listings();

 private:
  struct StatEntry {
    bool negative = false;
    NodeMeta meta;
    Clock::time_point expires;
  };
  struct ListingEntry {
    std::shared_ptr<const Listing> listing;
    Clock::time_point expires;
  };
  void MakeRoomLocked();
  void SweepIfDueLocked();
  void EraseListingLocked(std::unordered_map<std::string, ListingEntry>::iterator it);

  const MetadataCacheOptions options_;
  const Clock& clock_;
  // Shared with the deleters of tracked listings, which may outlive the cache.
  const std::shared_ptr<std::atomic<size_t>> live_;
  std::mutex mu_;
  std::unordered_map<std::string, StatEntry> stats_;        // guarded by mu_
  std::unordered_map<std::string, ListingEntry> listings_;  // guarded by mu_
  size_t cached_bytes_ = 0;                                 // guarded by mu_
  Clock::time_point next_sweep_;                            // guarded by mu_
};

}  // namespace dsfs
