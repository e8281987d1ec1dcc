#include "common/posix.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>

#include "tests/unit/temp_dir.h"

namespace dsfs {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(Fd, ClosesOnDestructionAndMovesOwnership) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd a(raw);
    Fd b(std::move(a));
    EXPECT_EQ(a.get(), -1);
    EXPECT_EQ(b.get(), raw);
    Fd c;
    c = std::move(b);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(Fd, ReleaseGivesUpOwnershipAndCloseReportsTheResult) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd a(raw);
    EXPECT_EQ(a.release(), raw);
  }
  EXPECT_TRUE(IsOpen(raw));
  Fd b(raw);
  EXPECT_EQ(b.Close(), 0);
  EXPECT_EQ(b.get(), -1);
  EXPECT_FALSE(IsOpen(raw));
  Fd none;
  EXPECT_EQ(none.Close(), -1);  // nothing to close: EBADF, not a crash
}

TEST(ErrnoText, IsStrerror) {
  EXPECT_EQ(ErrnoText(ENOENT), "No such file or directory");
}

TEST(ReadDirChildren, ListsTypesWithoutDotEntries) {
  testing::TempDir t;
  ASSERT_EQ(::mkdir(t.Sub("d").c_str(), 0700), 0);
  Fd f(::open(t.Sub("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_GE(f.get(), 0);
  ASSERT_EQ(::symlink("d", t.Sub("link").c_str()), 0);
  ASSERT_EQ(::mkfifo(t.Sub("fifo").c_str(), 0600), 0);

  auto by_path = ReadDirChildren(t.path());
  ASSERT_TRUE(by_path.ok()) << by_path.status().ToString();
  std::map<std::string, DirChild::Type> got;
  for (const DirChild& c : *by_path) got[c.name] = c.type;
  const std::map<std::string, DirChild::Type> want = {{"d", DirChild::Type::kDir},
                                                      {"f", DirChild::Type::kFile},
                                                      {"link", DirChild::Type::kOther},
                                                      {"fifo", DirChild::Type::kOther}};
  EXPECT_EQ(got, want);

  // The fd form sees the same, and leaves the caller's fd open and usable.
  Fd dir(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.get(), 0);
  for (int pass = 0; pass < 2; ++pass) {
    auto by_fd = ReadDirChildren(dir.get(), "t");
    ASSERT_TRUE(by_fd.ok()) << by_fd.status().ToString();
    EXPECT_EQ(by_fd->size(), 4u) << "pass " << pass;
  }
}

TEST(ReadDirChildren, MissingIsNotFoundAndAFileIsAnError) {
  testing::TempDir t;
  auto missing = ReadDirChildren(t.Sub("nope"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  Fd f(::open(t.Sub("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  auto file = ReadDirChildren(t.Sub("f"));
  EXPECT_EQ(file.status().code(), StatusCode::kIoError);
  auto empty = ReadDirChildren(t.path());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 1u);  // just "f"
}

}  // namespace
}  // namespace dsfs
