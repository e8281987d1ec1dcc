#include "backends/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace dsfs {
namespace {

constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kOtherSecret[] = "OTHERSECRETo9aZ0/Qx+EXAMPLEKEYEXAMPLE";

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dsfs-cred-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& p : files_) ::unlink(p.c_str());
    ::rmdir((dir_ + "/subdir").c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    files_.push_back(path);
    return path;
  }
  // Every failure message: no secret in it.
  static void ExpectNoSecret(const Status& s) {
    EXPECT_EQ(s.message().find(kSecret), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(kOtherSecret), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find("K7MDENG"), std::string::npos) << s.message();
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(CredentialsTest, DefaultLine) {
  auto c = LoadCredentials(Write("p", std::string("AKDEFAULT:") + kSecret + "\n"), "bkt");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AKDEFAULT");
  EXPECT_EQ(c->secret_key, kSecret);
  EXPECT_TRUE(c->session_token.empty());
}

TEST_F(CredentialsTest, BucketLineWinsOverDefaultWhateverTheOrder) {
  std::string content = std::string("# comment\n\n   \nAKDEFAULT:") + kOtherSecret +
                        "\nother:AKOTHER:" + kOtherSecret + "\n  bkt:AKBUCKET:" + kSecret +
                        "  \r\n";
  auto c = LoadCredentials(Write("p", content), "bkt");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AKBUCKET");
  EXPECT_EQ(c->secret_key, kSecret);
  // Another bucket falls back to the default line.
  auto d = LoadCredentials(Write("p2", content), "unlisted");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->access_key, "AKDEFAULT");
  // No trailing newline, bucket line first.
  auto e =
      ParseCredentialsFile(std::string("bkt:AKB:") + kSecret + "\nAKD:" + kOtherSecret, "bkt", "x");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->access_key, "AKB");
}

TEST_F(CredentialsTest, NoMatchingLine) {
  auto c = LoadCredentials(Write("p", std::string("other:AK:") + kSecret + "\n#x\n"), "bkt");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("no key line for bucket 'bkt'"), std::string::npos);
  ExpectNoSecret(c.status());
}

TEST_F(CredentialsTest, MalformedLinesNameTheLineButNotTheSecret) {
  const std::string bad[] = {
      std::string("# c\nAKONLY\n"),
      std::string("a:b:AK:") + kSecret + "\n",
      std::string(":") + kSecret + "\n",
      std::string("AK:\n"),
      std::string("AK:") + kSecret + "\nAK2:" + kOtherSecret + "\n",
      std::string("b:AK:") + kSecret + "\nb:AK2:" + kOtherSecret + "\n",
  };
  for (const auto& content : bad) {
    auto c = ParseCredentialsFile(content, "b", "/etc/passwd-dsfs");
    ASSERT_FALSE(c.ok()) << content;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("/etc/passwd-dsfs line "), std::string::npos)
        << c.status().message();
    ExpectNoSecret(c.status());
  }
}

TEST_F(CredentialsTest, ByteOrderMarkIsStripped) {
  auto c = ParseCredentialsFile(std::string("\xEF\xBB\xBF") + "AKBOM:" + kSecret + "\n", "b", "x");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AKBOM");
  EXPECT_EQ(c->secret_key, kSecret);
}

TEST_F(CredentialsTest, GroupOrOtherBitsRefused) {
  for (mode_t mode : {0640, 0604, 0660, 0601, 0610}) {
    std::string path = Write("p" + std::to_string(mode), std::string("AK:") + kSecret, mode);
    auto c = LoadCredentials(path, "b");
    ASSERT_FALSE(c.ok()) << mode;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("accessible by group or others"), std::string::npos);
    EXPECT_NE(c.status().message().find(path), std::string::npos);
    EXPECT_NE(c.status().message().find("chmod 600"), std::string::npos);
    ExpectNoSecret(c.status());
  }
  EXPECT_TRUE(LoadCredentials(Write("ok400", std::string("AK:") + kSecret, 0400), "b").ok());
}

TEST_F(CredentialsTest, MissingFileNamesPathAndError) {
  std::string path = dir_ + "/does-not-exist";
  auto c = LoadCredentials(path, "b");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(path), std::string::npos);
  EXPECT_NE(c.status().message().find("No such file or directory"), std::string::npos)
      << c.status().message();
}

TEST_F(CredentialsTest, DirectoryIsRefused) {
  std::string path = dir_ + "/subdir";
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  auto c = LoadCredentials(path, "b");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not a regular file"), std::string::npos);
}

TEST_F(CredentialsTest, UnreadableFileWhenNotRoot) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads mode-000 files";
  std::string path = Write("p", "AK:SK", 0000);
  auto c = LoadCredentials(path, "b");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("Permission denied"), std::string::npos);
}

TEST(CredentialsEnv, FromEnvironment) {
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "AKENV"},
                                            {"AWS_SECRET_ACCESS_KEY", kSecret},
                                            {"AWS_SESSION_TOKEN", "TOKEN"}};
  auto lookup = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto c = CredentialsFromEnv(lookup);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AKENV");
  EXPECT_EQ(c->secret_key, kSecret);
  EXPECT_EQ(c->session_token, "TOKEN");

  env.erase("AWS_SESSION_TOKEN");
  ASSERT_TRUE(CredentialsFromEnv(lookup).ok());
  EXPECT_TRUE(CredentialsFromEnv(lookup)->session_token.empty());

  env.erase("AWS_SECRET_ACCESS_KEY");
  auto half = CredentialsFromEnv(lookup);
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("AWS_SECRET_ACCESS_KEY is not"), std::string::npos);

  env = {{"AWS_SECRET_ACCESS_KEY", kSecret}};
  auto other_half = CredentialsFromEnv(lookup);
  ASSERT_FALSE(other_half.ok());
  EXPECT_EQ(other_half.status().message().find(kSecret), std::string::npos);

  env.clear();
  auto none = CredentialsFromEnv(lookup);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no credentials"), std::string::npos);
}

TEST(CredentialsEnv, EmptyPasswdFileReadsRealEnvironment) {
  // Saves and restores the three variables around the check.
  const char* names[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
  std::map<std::string, std::string> saved;
  for (const char* n : names) {
    if (const char* v = std::getenv(n)) saved[n] = v;
  }
  ::setenv("AWS_ACCESS_KEY_ID", "AKREAL", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "SKREAL", 1);
  ::unsetenv("AWS_SESSION_TOKEN");
  auto c = LoadCredentials("", "b");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  auto none = LoadCredentials("", "b");
  for (const char* n : names) {
    if (saved.count(n)) ::setenv(n, saved[n].c_str(), 1);
  }
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AKREAL");
  EXPECT_EQ(c->secret_key, "SKREAL");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no credentials"), std::string::npos);
}

}  // namespace
}  // namespace dsfs
