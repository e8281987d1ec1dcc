#include "cache/read_split.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

using std::chrono::milliseconds;
using Clock = ReadSplit::Clock;
constexpr uint64_t kMiB = 1 << 20;

// Two disk reads in flight, each having delivered `disk_ms` per 4 MiB; one
// GET of 4 MiB in `store_ms`, `ago` before now.
bool BusyDiverts(int disk_ms, int store_ms, Clock::time_point now,
                 Clock::duration ago = std::chrono::seconds(0), bool enabled = true) {
  ReadSplit s(enabled);
  s.DiskReadStarted();
  s.DiskReadDone(4 * kMiB, milliseconds(disk_ms));
  s.StoreGetDone(4 * kMiB, milliseconds(store_ms), now - ago);
  s.DiskReadStarted();
  s.DiskReadStarted();
  return s.ShouldDivert(now);
}

TEST(ReadSplit, ASlowBusyDiskSendsBlocksToAFasterStore) {
  const auto now = Clock::now();
  // Disk 40 MiB/s per read (a throttled EVS disk shared by readers),
  // GET 100 MiB/s.
  EXPECT_TRUE(BusyDiverts(100, 40, now));
}

TEST(ReadSplit, AFastDiskNeverDoes) {
  const auto now = Clock::now();
  // 4 MiB in 5 ms: 800 MiB/s per read, even against a store twice as fast.
  EXPECT_FALSE(BusyDiverts(5, 2, now));
  // Slower than the store, but not by half.
  EXPECT_FALSE(BusyDiverts(100, 60, now));
}

TEST(ReadSplit, AnIdleDiskAStaleStoreOrOffIsNeverDiverted) {
  const auto now = Clock::now();
  {
    ReadSplit s(true);  // one read in flight only: the disk has room
    s.DiskReadStarted();
    s.DiskReadDone(4 * kMiB, milliseconds(100));
    s.StoreGetDone(4 * kMiB, milliseconds(10), now);
    s.DiskReadStarted();
    EXPECT_FALSE(s.ShouldDivert(now));
    s.DiskReadStarted();
    EXPECT_TRUE(s.ShouldDivert(now));
  }
  // The store last answered long ago (or never: offline, a fresh mount):
  // a disk at 40 MiB/s per read sends one probe a second to the store; one
  // at 80 MiB/s none.
  {
    ReadSplit s(true);
    s.StoreGetDone(4 * kMiB, milliseconds(10), now - std::chrono::seconds(11));
    s.DiskReadStarted();
    s.DiskReadDone(4 * kMiB, milliseconds(100));
    s.DiskReadStarted();
    s.DiskReadStarted();
    EXPECT_TRUE(s.ShouldDivert(now));
    EXPECT_FALSE(s.ShouldDivert(now + milliseconds(500)));
    EXPECT_TRUE(s.ShouldDivert(now + milliseconds(1000)));
    // The probe's answer: the store is known again, and faster.
    s.StoreGetDone(4 * kMiB, milliseconds(10), now + milliseconds(1000));
    EXPECT_TRUE(s.ShouldDivert(now + milliseconds(1001)));
  }
  {
    ReadSplit s(true);
    s.DiskReadStarted();
    s.DiskReadDone(4 * kMiB, milliseconds(50));  // 80 MiB/s
    s.DiskReadStarted();
    s.DiskReadStarted();
    EXPECT_FALSE(s.ShouldDivert(now));
  }
  EXPECT_FALSE(BusyDiverts(100, 10, now, std::chrono::seconds(0), /*enabled=*/false));
}

TEST(ReadSplit, RatesAreMovingMeans) {
  ReadSplit s(true);
  const auto now = Clock::now();
  s.StoreGetDone(100 * kMiB, std::chrono::seconds(1), now);
  EXPECT_DOUBLE_EQ(s.store_rate(), 100.0 * kMiB);
  s.StoreGetDone(200 * kMiB, std::chrono::seconds(1), now);
  EXPECT_DOUBLE_EQ(s.store_rate(), (0.8 * 100 + 0.2 * 200) * kMiB);
  s.StoreGetDone(64 << 10, std::chrono::seconds(1), now);  // too small: no sample
  EXPECT_DOUBLE_EQ(s.store_rate(), (0.8 * 100 + 0.2 * 200) * kMiB);
  s.DiskReadStarted();
  s.DiskReadDone(0, milliseconds(1));  // a miss: no sample
  EXPECT_EQ(s.disk_rate(), 0);
}

}  // namespace
}  // namespace dsfs
