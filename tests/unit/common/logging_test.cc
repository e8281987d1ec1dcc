#include "common/logging.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
}  // namespace dsfs
