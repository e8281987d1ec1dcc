#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "../temp_dir.h"

namespace dsfs {
namespace {

TEST(EscapeForLogTest, KeepsPrintableTextAndUtf8) {
  EXPECT_EQ(EscapeForLog("models/llama-3/weights.safetensors"),
            "models/llama-3/weights.safetensors");
  EXPECT_EQ(EscapeForLog("模型/数据.bin"), "模型/数据.bin");
  EXPECT_EQ(EscapeForLog(""), "");
}

TEST(EscapeForLogTest, ANewlineCannotStartALine) {
  const std::string forged = EscapeForLog("x\nfallback: OBS recovered\r\n");
  EXPECT_EQ(forged, "x\\nfallback: OBS recovered\\r\\n");
  EXPECT_EQ(forged.find('\n'), std::string::npos);
  EXPECT_EQ(forged.find('\r'), std::string::npos);
}

TEST(EscapeForLogTest, ControlBytesAndBadUtf8BecomeHex) {
  EXPECT_EQ(EscapeForLog(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(EscapeForLog("\x1b[2J\x7f\t"), "\\x1b[2J\\x7f\\t");
  EXPECT_EQ(EscapeForLog("\xff\xc3"), "\\xff\\xc3");           // not UTF-8, truncated
  EXPECT_EQ(EscapeForLog("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(EscapeForLog("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

TEST(EscapeForLogTest, UnicodeLineBreaksAndC1AreEscaped) {
  EXPECT_EQ(EscapeForLog("a\xe2\x80\xa8"
                         "b"),
            "a\\xe2\\x80\\xa8b");                     // U+2028
  EXPECT_EQ(EscapeForLog("\xc2\x85"), "\\xc2\\x85");  // NEL
}

TEST(EscapeForLogTest, BackslashIsDoubledSoEscapesCannotBeForged) {
  EXPECT_EQ(EscapeForLog("a\\nb"), "a\\\\nb");
}

}  // namespace
}  // namespace dsfs

namespace dsfs {
namespace {

TEST(SetupLoggingTest, MissingLogDirectoryIsRefusedNotCreated) {
  auto s = SetupLogging("/nonexistent-dsfs-dir/x.log", "warn");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << s.message();
  struct stat st;
  EXPECT_NE(stat("/nonexistent-dsfs-dir", &st), 0);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// logrotate's way: move the file, then SIGHUP; the next lines must land in
// a new file of the old name, not in the moved one.
TEST(SetupLoggingTest, ReopenLogStartsANewFileAfterARotation) {
  testing::TempDir dir;
  const std::string log = dir.path() + "/dsfs.log";
  ASSERT_TRUE(SetupLogging(log, "info").ok());
  spdlog::info("before rotation");
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  spdlog::info("still the old file");
  ASSERT_TRUE(ReopenLog().ok());
  spdlog::info("after reopen");
  spdlog::default_logger()->flush();
  const std::string old_file = Slurp(log + ".1");
  const std::string new_file = Slurp(log);
  EXPECT_NE(old_file.find("before rotation"), std::string::npos);
  EXPECT_NE(old_file.find("still the old file"), std::string::npos);
  EXPECT_EQ(old_file.find("after reopen"), std::string::npos);
  EXPECT_NE(new_file.find("after reopen"), std::string::npos) << new_file;
  EXPECT_EQ(new_file.find("before rotation"), std::string::npos);
  spdlog::drop("dsfs");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("restored"));
}

}  // namespace
}  // namespace dsfs
