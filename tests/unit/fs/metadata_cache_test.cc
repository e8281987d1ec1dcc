// MetadataCache with a manual clock: expired listings are swept without
// the table filling up, and listings are capped in bytes, counting the
// ones open directory handles hold.
#include "fs/metadata_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace dsfs {
namespace {

using std::chrono::milliseconds;

Listing MakeListing(size_t n, const std::string& tag = "") {
  Listing l;
  for (size_t i = 0; i < n; ++i) {
    std::string name = tag + "file-with-a-long-enough-name-" + std::to_string(i);
    Listing::Child c{NodeKind::kFile, i, "0123456789abcdef0123456789abcdef", 0};
    l.bytes += Listing::ChildBytes(name, c);
    l.children.emplace(std::move(name), std::move(c));
  }
  return l;
}

MetadataCacheOptions Options(size_t max_bytes) {
  MetadataCacheOptions o;
  o.list_ttl = milliseconds(1000);
  o.sweep_interval = milliseconds(1000);
  o.max_listing_bytes = max_bytes;
  return o;
}

TEST(MetadataCacheTest, ChildBytesCountsTheStrings) {
  Listing::Child small{NodeKind::kFile, 1, "", 0};
  Listing::Child big{NodeKind::kFile, 1, std::string(32, 'e'), 0};
  EXPECT_GT(Listing::ChildBytes(std::string(100, 'n'), big),
            Listing::ChildBytes("a", small) + 100 + 32);
}

TEST(MetadataCacheTest, ExpiredListingsAreSweptAndFreedWithoutTheTableFilling) {
  ManualClock clock;
  MetadataCache cache(Options(size_t{1} << 30), clock);
  // Ten big directories listed one after another, list_ttl apart.
  for (int d = 0; d < 10; ++d) {
    Listing l = MakeListing(1000, std::to_string(d));
    ASSERT_TRUE(cache.MakeRoomForListing(l.bytes));
    cache.PutListing("dir" + std::to_string(d), cache.Track(std::move(l)));
    clock.Advance(milliseconds(1100));
  }
  // Only the newest can be alive: every older one expired and was swept
  // (and freed) when a later one came in.
  EXPECT_EQ(cache.cached_listings(), 1u);
  const size_t one = MakeListing(1000, "9").bytes;
  EXPECT_EQ(cache.live_listing_bytes(), one);
  EXPECT_EQ(cache.cached_listing_bytes(), one);
  // A lookup after expiry sweeps the last one too.
  EXPECT_EQ(cache.GetListing("dir9"), nullptr);
  EXPECT_EQ(cache.live_listing_bytes(), 0u);
  EXPECT_EQ(cache.cached_listing_bytes(), 0u);
}

TEST(MetadataCacheTest, ExpiredStatEntriesAreSweptToo) {
  ManualClock clock;
  MetadataCacheOptions o = Options(size_t{1} << 30);
  o.stat_ttl = milliseconds(500);
  MetadataCache cache(o, clock);
  cache.PutStat("a", NodeMeta{});
  clock.Advance(milliseconds(1100));
  cache.PutStat("b", NodeMeta{});  // sweeps "a"
  EXPECT_EQ(cache.GetStat("a").state, MetadataCache::Lookup::kMiss);
  EXPECT_EQ(cache.GetStat("b").state, MetadataCache::Lookup::kFound);
}

TEST(MetadataCacheTest, ListingsAreCappedInBytes) {
  ManualClock clock;
  const size_t one = MakeListing(1000).bytes;
  MetadataCache cache(Options(3 * one + one / 2), clock);
  for (int d = 0; d < 10; ++d) {
    Listing l = MakeListing(1000, std::to_string(d));
    ASSERT_TRUE(cache.MakeRoomForListing(l.bytes)) << d;
    cache.PutListing("dir" + std::to_string(d), cache.Track(std::move(l)));
    EXPECT_LE(cache.live_listing_bytes(), 3 * one + one / 2);
    clock.Advance(milliseconds(10));  // none expires
  }
  EXPECT_EQ(cache.cached_listings(), 3u);
  // The oldest went first.
  EXPECT_EQ(cache.GetListing("dir0"), nullptr);
  EXPECT_NE(cache.GetListing("dir9"), nullptr);
}

TEST(MetadataCacheTest, HeldListingsCountAndRefuseNewOnesPastTheCap) {
  ManualClock clock;
  const size_t one = MakeListing(1000, "a").bytes;
  MetadataCache cache(Options(2 * one + one / 2), clock);
  // Two open directory handles hold their listings past expiry.
  auto a = cache.Track(MakeListing(1000, "a"));
  auto b = cache.Track(MakeListing(1000, "b"));
  cache.PutListing("a", a);
  cache.PutListing("b", b);
  EXPECT_FALSE(cache.MakeRoomForListing(one));  // dropping the cache frees nothing
  EXPECT_EQ(cache.live_listing_bytes(), a->bytes + b->bytes);
  EXPECT_EQ(cache.cached_listings(), 0u);  // but it was dropped
  b.reset();                               // its handle closed; the cache no longer held it
  EXPECT_EQ(cache.live_listing_bytes(), a->bytes);
  EXPECT_TRUE(cache.MakeRoomForListing(one));
  // A listing bigger than the whole cap never fits.
  EXPECT_FALSE(cache.MakeRoomForListing(3 * one));
}

TEST(MetadataCacheTest, TrackedListingOutlivingTheCacheIsSafe) {
  ManualClock clock;
  std::shared_ptr<const Listing> held;
  {
    MetadataCache cache(Options(size_t{1} << 30), clock);
    held = cache.Track(MakeListing(10));
  }
  EXPECT_EQ(held->children.size(), 10u);
  held.reset();  // the deleter's counter is shared, not the cache's
}

}  // namespace
}  // namespace dsfs
