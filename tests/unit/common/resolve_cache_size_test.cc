// ResolveCacheSize: cache_size= as a size or a share of the disk.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/config.h"

namespace dsfs {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dsfs-size-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(ResolveCacheSize, AbsoluteAndPercent) {
  TempDir tmp;
  EXPECT_EQ(*ResolveCacheSize("200G", tmp.path()), 200ull << 30);
  EXPECT_EQ(*ResolveCacheSize("4096", tmp.path()), 4096u);
  auto ten = ResolveCacheSize("10%", tmp.path());
  ASSERT_TRUE(ten.ok()) << ten.status().ToString();
  std::error_code ec;
  auto space = std::filesystem::space(tmp.path(), ec);
  ASSERT_FALSE(ec);
  EXPECT_NEAR(static_cast<double>(*ten), static_cast<double>(space.capacity) / 10, 1 << 20);
  // A dir that does not exist yet is measured on its nearest parent.
  auto later = ResolveCacheSize("12.5%", tmp.Sub("not/yet/there"));
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_NEAR(static_cast<double>(*later), static_cast<double>(space.capacity) / 8, 1 << 20);
}

TEST(ResolveCacheSize, RejectsWhatDoesNotParse) {
  for (const char* bad : {"", "abc", "12Q", "0", "0%", "150%", "%", "ten%", "-5%", "5%%"}) {
    auto r = ResolveCacheSize(bad, "/tmp");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace dsfs
