// MetadataCache: stat and directory-listing results with TTLs, negative
// (ENOENT) entries with a shorter TTL. Bounded: expired entries are pruned
// when the table is full, and the oldest half is dropped if that is not
// enough. Paths are relative to the mount root ("" is the root, "a/b").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace dsfs {

enum class NodeKind { kFile, kDir, kSymlink };

// What the filesystem knows about one name.
struct NodeMeta {
  NodeKind kind = NodeKind::kFile;
  uint64_t size = 0;
  std::string etag;
  int64_t mtime_sec = 0;
  mode_t mode = 0;  // full st_mode (type bits included)
  uid_t uid = 0;
  gid_t gid = 0;
};

// One directory's children: name -> what the listing said. Files carry
// size/etag/mtime from the listing (no user metadata); dirs carry nothing.
struct Listing {
  struct Child {
    NodeKind kind = NodeKind::kFile;
    uint64_t size = 0;
    std::string etag;
    int64_t mtime_sec = 0;
  };
  std::map<std::string, Child> children;
};

struct MetadataCacheOptions {
  std::chrono::milliseconds stat_ttl{5000};
  std::chrono::milliseconds negative_ttl{1000};
  std::chrono::milliseconds list_ttl{5000};
  size_t max_entries = 200'000;   // stat + negative entries
  size_t max_listings = 10'000;
};

class MetadataCache {
 public:
  enum class Lookup { kMiss, kFound, kNegative };
  struct StatResult {
    Lookup state = Lookup::kMiss;
    NodeMeta meta;  // valid when kFound
  };

  MetadataCache(MetadataCacheOptions options, const Clock& clock)
      : options_(options), clock_(clock) {}

  StatResult GetStat(const std::string& path);
  void PutStat(const std::string& path, const NodeMeta& meta);
  void PutNegative(const std::string& path);
  void Invalidate(const std::string& path);

  std::shared_ptr<const Listing> GetListing(const std::string& dir);
  void PutListing(const std::string& dir, std::shared_ptr<const Listing> listing);

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

  const MetadataCacheOptions options_;
  const Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, StatEntry> stats_;        // guarded by mu_
  std::unordered_map<std::string, ListingEntry> listings_;  // guarded by mu_
};

}  // namespace dsfs
