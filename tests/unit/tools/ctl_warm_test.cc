// dsfsctl warm/verify parsing, and the fs layer's warm request names.
#include <gtest/gtest.h>

#include "fs/filesystem.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/warm.h"

namespace dsfs::ctl {
namespace {

TEST(CtlWarm, ParsesTheDaemonsReply) {
  auto r = ParseWarmReply("fetched 3 skipped 1 blocks 9 block_size 4194304\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->fetched, 3u);
  EXPECT_EQ(r->skipped, 1u);
  EXPECT_EQ(r->blocks, 9u);
  EXPECT_EQ(r->block_size, 4194304u);
  EXPECT_FALSE(ParseWarmReply("fetched 3").has_value());
  EXPECT_FALSE(ParseWarmReply("got 3 skipped 1 blocks 9 block_size 4").has_value());
}

TEST(CtlWarm, WarmXattrNames) {
  auto r = Filesystem::ParseWarmXattr("user.dsfs.warm.12.4");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 12u);
  EXPECT_EQ(r->count, 4u);
  EXPECT_TRUE(Filesystem::ParseWarmXattr("user.dsfs.warm.0.0").has_value());
  for (const char* bad : {"user.dsfs.warm.", "user.dsfs.warm.1", "user.dsfs.warm.1.",
                          "user.dsfs.warm..2", "user.dsfs.warm.1.2.3", "user.dsfs.warm.-1.2",
                          "user.dsfs.warm.1.2x", "user.dsfs.prove"}) {
    EXPECT_FALSE(Filesystem::ParseWarmXattr(bad).has_value()) << bad;
  }
}

TEST(CtlVerify, ParsesTheProveReport) {
  auto lines = ParseProveReport(
      "proven a/x\ndiffers a/y\nmissing a/z\n... 2 more\n"
      "total 5 proven 1 differs 1 missing 1 unprovable 0 error 0\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].result, "proven");
  EXPECT_EQ(lines[1].path, "a/y");
  EXPECT_EQ(lines[2].result, "missing");
}

TEST(CtlWarm, ANonDsfsPathIsNotDsfs) {
  std::string message;
  EXPECT_EQ(CheckDsfsPath("/tmp", &message), kNotDsfs) << message;
  EXPECT_EQ(CheckDsfsPath("/no/such/path", &message), kFailed);
}

}  // namespace
}  // namespace dsfs::ctl
