// S3Store TLS verification against `openssl s_server -WWW` on 127.0.0.1
// with a self-signed certificate made at test time: verification is on by
// default, ca_file= trusts a private CA, the host name is checked, and
// verify_tls=false turns it all off.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/s3_store.h"

namespace dsfs {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";

// fork + exec with cwd; stdout/stderr to /dev/null. Returns the pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& cwd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class S3StoreTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    if (::access(kOpenssl, X_OK) != 0) GTEST_SKIP() << kOpenssl << " not installed";
    char tmpl[] = "/tmp/dsfs-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::mkdir((dir_ + "/www").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((dir_ + "/www/bkt").c_str(), 0700), 0);
    std::ofstream(dir_ + "/www/bkt/k") << "tls body";
    pid_t req = Spawn({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
                       "-addext", "subjectAltName=IP:127.0.0.1"},
                      dir_);
    ASSERT_GT(req, 0);
    int st = 0;
    ASSERT_EQ(::waitpid(req, &st, 0), req);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "openssl req failed";
    port_ = FreePort();
    server_ =
        Spawn({kOpenssl, "s_server", "-quiet", "-accept", "127.0.0.1:" + std::to_string(port_),
               "-cert", "../cert.pem", "-key", "../key.pem", "-WWW"},
              dir_ + "/www");
    ASSERT_GT(server_, 0);
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {  // bounded: 10 s
      up = Accepts(port_);
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(up) << "openssl s_server did not start";
  }

  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGTERM);
      ::waitpid(server_, nullptr, 0);
    }
    for (const char* f : {"/www/bkt/k", "/cert.pem", "/key.pem"}) ::unlink((dir_ + f).c_str());
    for (const char* d : {"/www/bkt", "/www", ""}) ::rmdir((dir_ + d).c_str());
  }

  S3Config Config(const std::string& host = "127.0.0.1") const {
    S3Config c;
    c.endpoint = "https://" + host + ":" + std::to_string(port_);
    c.path_style = true;
    c.max_retries = 2;
    c.retry_base = std::chrono::milliseconds(1);
    c.retry_cap = std::chrono::milliseconds(5);
    return c;
  }
  Result<GetResult> GetK(const S3Config& config, Metrics* metrics, char* buf, size_t len) {
    auto store = S3Store::Create(config, Credentials{"AK", "SK", ""}, "bkt", metrics);
    EXPECT_TRUE(store.ok());
    if (!store.ok()) return store.status();
    return (*store)->Get({"k", std::nullopt, ""}, buf, len);
  }

  std::string dir_;
  int port_ = 0;
  pid_t server_ = -1;
};

TEST_F(S3StoreTlsTest, UntrustedCertificateIsRefusedWithoutRetry) {
  Metrics metrics;
  char buf[64];
  auto n = GetK(Config(), &metrics, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kUnavailable) << n.status().ToString();
  EXPECT_NE(n.status().message().find("TLS"), std::string::npos) << n.status().message();
  EXPECT_EQ(metrics.CounterTotal("dsfs_s3_requests_total"), 1u);
}

TEST_F(S3StoreTlsTest, CaFileTrustsAPrivateCa) {
  S3Config c = Config();
  c.ca_file = dir_ + "/cert.pem";
  char buf[64];
  auto n = GetK(c, nullptr, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(buf, n->bytes), "tls body");
}

TEST_F(S3StoreTlsTest, HostNameIsChecked) {
  S3Config c = Config("localhost");  // the certificate is for 127.0.0.1 only
  c.ca_file = dir_ + "/cert.pem";
  char buf[64];
  auto n = GetK(c, nullptr, buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kUnavailable) << n.status().ToString();
}

TEST_F(S3StoreTlsTest, VerificationCanBeTurnedOff) {
  S3Config c = Config();
  c.verify_tls = false;
  char buf[64];
  auto n = GetK(c, nullptr, buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(buf, n->bytes), "tls body");
}

}  // namespace
}  // namespace dsfs
