// The adapter's pure helpers (the callbacks themselves are covered by the
// mount tests).
#include "fs/fuse_adapter.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

TEST(FuseAdapter, FindMountDeviceTakesTheLastMatchAndUnescapes) {
  const std::string info =
      "22 1 254:0 / / rw - ext4 /dev/vda rw\n"
      "40 22 0:39 / /mnt/models rw - fuse.dsfs bucket rw\n"
      "41 22 0:41 / /mnt/with\\040space rw - fuse.dsfs b rw\n"
      "42 40 0:45 / /mnt/models rw - fuse.dsfs bucket rw\n";
  EXPECT_EQ(FindMountDevice(info, "/mnt/models"), "0:45");
  EXPECT_EQ(FindMountDevice(info, "/mnt/with space"), "0:41");
  EXPECT_EQ(FindMountDevice(info, "/mnt/other"), "");
}

}  // namespace
}  // namespace dsfs
