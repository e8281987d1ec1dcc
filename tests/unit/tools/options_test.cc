#include "tools/options.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

Result<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "dsfs");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(Options, ObsfsFstabLineAsMountFusePassesIt) {
  auto cl = Parse({"deepseek-model-weights", "/mnt/models", "-o",
                   "rw,dev,suid,_netdev,nofail,x-systemd.automount,defaults,allow_other,"
                   "url=https://obs.cn-north-4.myhuaweicloud.com/,passwd_file=/etc/passwd-obsfs,"
                   "use_path_request_style,uid=1000,gid=100,umask=022,dbglevel=info,big_writes,"
                   "max_write=131072,use_cache=/tmp"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  const Config& c = cl->config;
  EXPECT_EQ(c.fs.bucket, "deepseek-model-weights");
  EXPECT_EQ(c.fs.prefix, "");
  EXPECT_EQ(c.daemon.mountpoint, "/mnt/models");
  EXPECT_EQ(c.s3.endpoint, "https://obs.cn-north-4.myhuaweicloud.com");
  EXPECT_TRUE(c.s3.path_style);
  EXPECT_TRUE(c.fs.allow_other);
  EXPECT_EQ(c.fs.uid, 1000u);
  EXPECT_EQ(c.fs.gid, 100u);
  EXPECT_TRUE(c.fs.umask_set);
  EXPECT_EQ(c.fs.umask, 022u);
  EXPECT_EQ(c.daemon.passwd_file, "/etc/passwd-obsfs");
  EXPECT_EQ(c.daemon.log_level, "info");
  EXPECT_FALSE(c.daemon.foreground);
  EXPECT_GE(cl->ignored.size(), 9u);
}

TEST(Options, RoAndRwSetTheMountMode) {
  auto rw = Parse({"b", "/m", "-o", "rw"});
  ASSERT_TRUE(rw.ok()) << rw.status().ToString();
  EXPECT_FALSE(rw->config.fs.read_only);
  auto ro = Parse({"b", "/m", "-o", "rw,ro"});  // the last one wins
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(ro->config.fs.read_only);
}

TEST(Options, WriteOptionsAndRoRw) {
  auto cl = Parse({"b", "/mnt/m"});
  ASSERT_TRUE(cl.ok());
  EXPECT_FALSE(cl->config.fs.read_only);  // rw, as s3fs
  cl = Parse({"b", "/mnt/m", "-o",
              "ro,multipart_size=64,parallel_count=3,max_dirty=1G,tmpdir=/scratch"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_TRUE(cl->config.fs.read_only);
  EXPECT_EQ(cl->config.write.multipart_size, uint64_t{64} << 20);
  EXPECT_EQ(cl->config.write.parallel_count, 3);
  EXPECT_EQ(cl->config.write.max_dirty, uint64_t{1} << 30);
  EXPECT_EQ(cl->config.write.tmpdir, "/scratch");
  cl = Parse({"b", "/mnt/m", "-o", "ro,rw"});
  ASSERT_TRUE(cl.ok());
  EXPECT_FALSE(cl->config.fs.read_only);
  EXPECT_FALSE(Parse({"b", "/mnt/m", "-o", "multipart_size=4"}).ok());
  EXPECT_FALSE(Parse({"b", "/mnt/m", "-o", "parallel_count=0"}).ok());
  EXPECT_FALSE(Parse({"b", "/mnt/m", "-o", "tmpdir=relative"}).ok());
}

TEST(Options, SourceWithPrefix) {
  FsConfig fs;
  ASSERT_TRUE(ParseSource("bucket:/models/deepseek/", &fs).ok());
  EXPECT_EQ(fs.bucket, "bucket");
  EXPECT_EQ(fs.prefix, "models/deepseek/");
  ASSERT_TRUE(ParseSource("bucket:models", &fs).ok());
  EXPECT_EQ(fs.prefix, "models/");
  EXPECT_FALSE(ParseSource("bucket:/a/../b", &fs).ok());
  EXPECT_FALSE(ParseSource(":/x", &fs).ok());
  EXPECT_FALSE(ParseSource("a/b", &fs).ok());
}

TEST(Options, UnknownOptionIsAnError) {
  auto cl = Parse({"b", "/m", "-o", "url=http://x,frobnicate=1"});
  ASSERT_FALSE(cl.ok());
  EXPECT_NE(cl.status().message().find("unknown option 'frobnicate'"), std::string::npos);
}

TEST(Options, BadValuesAreErrors) {
  EXPECT_FALSE(Parse({"b", "/m", "-o", "url=ftp://x"}).ok());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "uid=abc"}).ok());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "umask=99"}).ok());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "stat_ttl=soon"}).ok());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "dbglevel=loud"}).ok());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "passwd_file"}).ok());  // needs a value
  EXPECT_FALSE(Parse({"b"}).ok());                             // no mountpoint
  EXPECT_FALSE(Parse({"b", "/m", "--bogus"}).ok());
}

TEST(Options, DurationsAndFlags) {
  auto cl = Parse({"b", "/m", "-o", "stat_ttl=500ms", "-o", "list_ttl=2,retries=7", "-d"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->config.fs.stat_ttl.count(), 500);
  EXPECT_EQ(cl->config.fs.list_ttl.count(), 2000);
  EXPECT_EQ(cl->config.s3.max_retries, 7);
  EXPECT_TRUE(cl->config.daemon.foreground);  // -d implies -f
  EXPECT_EQ(cl->config.daemon.log_level, "debug");
  auto v = Parse({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->show_version);
  auto h = Parse({"-h"});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->show_help);
  EXPECT_NE(UsageText().find("passwd_file="), std::string::npos);
}

TEST(Options, Fallback) {
  auto cl = Parse({"b", "/m", "-o",
                   "fallback=/mnt/deepseek-shared/models,fallback_threshold=5,"
                   "fallback_probe_interval=2s"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->config.fallback.dir, "/mnt/deepseek-shared/models");
  EXPECT_EQ(cl->config.fallback.failure_threshold, 5);
  EXPECT_EQ(cl->config.fallback.probe_interval.count(), 2000);
  EXPECT_TRUE(Parse({"b", "/m"})->config.fallback.dir.empty());
  EXPECT_FALSE(Parse({"b", "/m", "-o", "fallback_threshold=x"}).ok());
}

TEST(Options, FallbackParallel) {
  EXPECT_TRUE(Parse({"b", "/m"})->config.fallback.parallel);
  EXPECT_FALSE(Parse({"b", "/m", "-o", "fallback_parallel=off"})->config.fallback.parallel);
  EXPECT_TRUE(Parse({"b", "/m", "-o", "fallback_parallel=on"})->config.fallback.parallel);
  EXPECT_FALSE(Parse({"b", "/m", "-o", "fallback_parallel=0"})->config.fallback.parallel);
  EXPECT_FALSE(Parse({"b", "/m", "-o", "fallback_parallel=maybe"}).ok());
}

TEST(Options, NumericOptionsHaveDocumentedRanges) {
  auto refused = [](const char* opt, const char* want) {
    auto cl = Parse({"b", "/m", "-o", opt});
    EXPECT_FALSE(cl.ok()) << opt;
    if (!cl.ok()) {
      EXPECT_NE(cl.status().message().find(want), std::string::npos) << cl.status().message();
    }
  };
  refused("stat_ttl=3000000h", "stat_ttl must be between 0 and 24h");
  refused("list_ttl=25h", "list_ttl must be between");
  refused("negative_ttl=2d", "not a duration");
  refused("request_timeout=0", "request_timeout must be between 1s and 1h");
  refused("connect_timeout=10ms", "connect_timeout must be between");
  refused("first_byte_timeout=1h", "first_byte_timeout must be between");
  refused("fallback_probe_interval=0", "fallback_probe_interval must be between");
  refused("list_timeout=0", "list_timeout must be between");
  refused("prefetch_mem=1T", "prefetch_mem must be between");
  refused("readahead_max=64G", "readahead_max must be between");
  refused("max_get_size=2G", "max_get_size must be between");
  refused("max_get_size=1M", "max_get_size must be between");  // below block_size
  refused("readahead_warm=1M", "readahead_warm must be between");  // below block_size
  refused("readahead_warm=8G", "readahead_warm must be between");
  refused("readahead_gets=0", "readahead_gets must be between 1 and 256");
  refused("max_threads=100000", "max_threads must be between 1 and 1024");
  refused("max_threads=0", "max_threads must be at least 1");
  refused("list_mem=100K", "list_mem must be between 1M and 64G");
  refused("fallback_threshold=5000", "fallback_threshold must be between");
  auto ok = Parse({"b", "/m", "-o",
                   "stat_ttl=24h,list_ttl=0,request_timeout=1s,first_byte_timeout=0,"
                   "max_threads=1024,list_mem=1G,list_timeout=10m,prefetch_mem=256G,"
                   "readahead_max=4G,max_get_size=1G,readahead_gets=256,readahead_warm=64M"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->config.cache.max_get_size, uint64_t{1} << 30);
  EXPECT_EQ(ok->config.cache.readahead_gets, 256);
  EXPECT_EQ(ok->config.cache.readahead_warm, uint64_t{64} << 20);
  EXPECT_EQ(ok->config.fs.list_mem, uint64_t{1} << 30);
  EXPECT_EQ(ok->config.fs.list_timeout, std::chrono::minutes(10));
}

TEST(Options, CacheBackfillAndWarmSplitAreOnOffSwitches) {
  auto def = Parse({"b", "/m"});
  ASSERT_TRUE(def.ok());
  EXPECT_TRUE(def->config.cache.cache_backfill);
  EXPECT_TRUE(def->config.cache.warm_split);
  auto off = Parse({"b", "/m", "-o", "cache_backfill=off,warm_split=no"});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->config.cache.cache_backfill);
  EXPECT_FALSE(off->config.cache.warm_split);
  auto on = Parse({"b", "/m", "-o", "cache_backfill=on,warm_split=1"});
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->config.cache.cache_backfill);
  EXPECT_TRUE(on->config.cache.warm_split);
  auto bad = Parse({"b", "/m", "-o", "warm_split=sometimes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a boolean: 'sometimes'"), std::string::npos)
      << bad.status().ToString();
}

TEST(Options, TlsVerificationNeedsAnExplicitOption) {
  auto cl = Parse({"b", "/m"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->config.s3.verify_tls);
  EXPECT_FALSE(Parse({"b", "/m", "-o", "ssl_verify=0"})->config.s3.verify_tls);
  EXPECT_FALSE(Parse({"b", "/m", "-o", "no_check_certificate"})->config.s3.verify_tls);
}

}  // namespace
}  // namespace dsfs

#include <unistd.h>

#include "tools/daemon.h"

namespace dsfs {
namespace {

TEST(Daemon, RelativeMountpointBecomesAbsolute) {
  char tmpl[] = "/tmp/dsfs-mnt-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  char old[PATH_MAX];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_EQ(chdir("/tmp"), 0);
  auto abs = AbsoluteMountpoint(std::string(tmpl).substr(5));  // "dsfs-mnt-..."
  ASSERT_EQ(chdir(old), 0);
  ASSERT_TRUE(abs.ok()) << abs.status().ToString();
  EXPECT_EQ(*abs, tmpl);
  rmdir(tmpl);
  EXPECT_FALSE(AbsoluteMountpoint("/nonexistent/dir").ok());
}

TEST(Daemon, LocalInputChecks) {
  Config c;
  c.daemon.mountpoint = "/nonexistent-dsfs";
  EXPECT_NE(CheckLocalInput(c).message().find("does not exist"), std::string::npos);
  c.daemon.mountpoint = "/etc/hostname";
  EXPECT_NE(CheckLocalInput(c).message().find("not a directory"), std::string::npos);
  c.daemon.mountpoint = "/tmp";
  EXPECT_TRUE(CheckLocalInput(c).ok());
}

TEST(Daemon, RefusesAMountPointAndACacheInsideTheMount) {
  const std::string mountinfo =
      "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
      "99 22 0:55 / /mnt/models rw,nosuid - fuse.dsfs bucket rw\n";
  Config c;
  c.daemon.mountpoint = "/mnt/models";
  auto twice = CheckMountTargets(c, mountinfo);
  EXPECT_NE(twice.message().find("is already a mount point"), std::string::npos) << twice.message();
  c.daemon.mountpoint = "/mnt/other";
  EXPECT_TRUE(CheckMountTargets(c, mountinfo).ok());
  for (const char* inside : {"/mnt/other", "/mnt/other/", "/mnt/other/cache/x"}) {
    c.cache.dir = inside;
    auto s = CheckMountTargets(c, mountinfo);
    EXPECT_NE(s.message().find("is inside the mountpoint"), std::string::npos) << inside;
  }
  c.cache.dir = "/mnt/other-cache";  // a sibling whose name starts the same
  EXPECT_TRUE(CheckMountTargets(c, mountinfo).ok());
  // Through a symlink to the mountpoint.
  char tmpl[] = "/tmp/dsfs-mnt-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string link = std::string(tmpl) + "-link";
  ASSERT_EQ(symlink(tmpl, link.c_str()), 0);
  c.daemon.mountpoint = tmpl;
  c.cache.dir = link + "/not-yet/cache";
  EXPECT_FALSE(CheckMountTargets(c, mountinfo).ok());
  unlink(link.c_str());
  rmdir(tmpl);
}

TEST(Daemon, ProbeFailureMessages) {
  Config c;
  c.fs.bucket = "b";
  c.s3.endpoint = "http://127.0.0.1:1";
  auto denied = DescribeProbeFailure(Status::AccessDenied("InvalidAccessKeyId"), c);
  EXPECT_NE(denied.message().find("access denied"), std::string::npos);
  auto down = DescribeProbeFailure(Status::Unavailable("refused"), c);
  EXPECT_NE(down.message().find("cannot connect to http://127.0.0.1:1"), std::string::npos);
  auto slow = DescribeProbeFailure(Status::Transient("Operation timed out"), c);
  EXPECT_NE(slow.message().find("timed out"), std::string::npos);
  auto failing = DescribeProbeFailure(Status::Transient("LIST '': 500 InternalError"), c);
  EXPECT_EQ(failing.message().find("cannot connect"), std::string::npos);
  EXPECT_NE(failing.message().find("did not answer"), std::string::npos);
}

}  // namespace
}  // namespace dsfs
