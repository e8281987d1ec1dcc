#include "tools/options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <ctime>
#include <functional>
#include <sstream>

#include "common/logging.h"
#include "common/strings.h"
#include "fs/names.h"

namespace dsfs {
namespace {

using Setter = std::function<Status(const std::string& value, Config* c)>;

struct OptionSpec {
  const char* name;
  bool takes_value;
  const char* default_text;
  const char* help;
  Setter set;
};

Status SetDuration(const std::string& v, milliseconds* out) {
  DSFS_ASSIGN_OR_RETURN(*out, ParseDuration(v));
  return Status::Ok();
}

template <typename T>
Status SetNumber(const std::string& v, T* out, int base = 10) {
  if (!ParseInteger(v, out, base)) return Status::InvalidArgument("not a number: '" + v + "'");
  return Status::Ok();
}

Status SetSize(const std::string& v, uint64_t* out) {
  DSFS_ASSIGN_OR_RETURN(*out, ParseSize(v));
  return Status::Ok();
}

Status SetBool(const std::string& v, bool* out) {
  if (v.empty() || v == "1" || v == "true" || v == "yes" || v == "on")
    *out = true;
  else if (v == "0" || v == "false" || v == "no" || v == "off")
    *out = false;
  else
    return Status::InvalidArgument("not a boolean: '" + v + "'");
  return Status::Ok();
}

// clang-format off
const std::vector<OptionSpec>& OptionTable() {
  static const std::vector<OptionSpec> kTable = {
    {"url", true, "https://s3.amazonaws.com", "endpoint, scheme://host[:port]",
     [](const std::string& v, Config* c) {
       if (!v.starts_with("http://") && !v.starts_with("https://")) {
         return Status::InvalidArgument("url must start with http:// or https://: '" + v + "'");
       }
       c->s3.endpoint = v;
       while (c->s3.endpoint.ends_with("/")) c->s3.endpoint.pop_back();
       return Status::Ok();
     }},
    {"region", true, "from an OBS host, else us-east-1", "SigV4 signing region",
     [](const std::string& v, Config* c) { c->s3.region = v; return Status::Ok(); }},
    {"endpoint", true, "", "s3fs's name for region=",
     [](const std::string& v, Config* c) { c->s3.region = v; return Status::Ok(); }},
    {"use_path_request_style", false, "off", "path-style URLs (host/bucket/key)",
     [](const std::string& v, Config* c) { return SetBool(v, &c->s3.path_style); }},
    {"passwd_file", true, "env AWS_ACCESS_KEY_ID/...", "credentials file, AK:SK or bucket:AK:SK, mode 0600",
     [](const std::string& v, Config* c) { c->daemon.passwd_file = v; return Status::Ok(); }},
    {"ca_file", true, "system CAs", "extra CA bundle (PEM) to trust",
     [](const std::string& v, Config* c) { c->s3.ca_file = v; return Status::Ok(); }},
    {"ssl_verify", true, "1", "0 disables TLS verification (logged as a warning)",
     [](const std::string& v, Config* c) { return SetBool(v, &c->s3.verify_tls); }},
    {"no_check_certificate", false, "off", "same as ssl_verify=0",
     [](const std::string&, Config* c) { c->s3.verify_tls = false; return Status::Ok(); }},
    {"allow_other", false, "off", "let other users access the mount",
     [](const std::string& v, Config* c) { return SetBool(v, &c->fs.allow_other); }},
    {"uid", true, "mounting user", "owner of objects without x-amz-meta-uid",
     [](const std::string& v, Config* c) { c->fs.uid_set = true; return SetNumber(v, &c->fs.uid); }},
    {"gid", true, "mounting group", "group of objects without x-amz-meta-gid",
     [](const std::string& v, Config* c) { c->fs.gid_set = true; return SetNumber(v, &c->fs.gid); }},
    {"umask", true, "none (modes as stored)", "octal mask applied to every mode",
     [](const std::string& v, Config* c) { c->fs.umask_set = true; return SetNumber(v, &c->fs.umask, 8); }},
    {"dbglevel", true, "warn", "crit, err, warn, info, debug or trace",
     [](const std::string& v, Config* c) {
       DSFS_RETURN_IF_ERROR(ParseLogLevel(v).status());
       c->daemon.log_level = v;
       return Status::Ok();
     }},
    {"logfile", true, "stderr with -f, else syslog", "log file path or 'syslog'",
     [](const std::string& v, Config* c) { c->daemon.logfile = v; return Status::Ok(); }},
    {"stat_ttl", true, "5s", "how long a stat result is trusted",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fs.stat_ttl); }},
    {"stat_cache_expire", true, "5s", "s3fs's name for stat_ttl= (seconds)",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fs.stat_ttl); }},
    {"list_ttl", true, "5s", "how long a directory listing is trusted",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fs.list_ttl); }},
    {"list_mem", true, "256M", "memory for all directory listings (cached or held by open directories)",
     [](const std::string& v, Config* c) { return SetSize(v, &c->fs.list_mem); }},
    {"list_timeout", true, "300s", "deadline of one whole directory listing (all pages)",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fs.list_timeout); }},
    {"negative_ttl", true, "1s", "how long a 'no such file' answer is trusted",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fs.negative_ttl); }},
    {"connect_timeout", true, "3s", "TCP/TLS connect timeout",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->s3.connect_timeout); }},
    {"request_timeout", true, "30s", "deadline of one request attempt (HEAD, LIST, a block GET)",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->s3.request_timeout); }},
    {"first_byte_timeout", true, "2s", "retry a request whose answer has not started by then (0 = off)",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->s3.first_byte_timeout); }},
    {"retries", true, "4", "retries of a throttled/failed request",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->s3.max_retries); }},
    {"cache_dir", true, "none", "persistent block cache directory (e.g. /data/dsfs-cache)",
     [](const std::string& v, Config* c) { c->cache.dir = v; return Status::Ok(); }},
    {"cache_size", true, "10%", "cache cap: a size (200G) or a share of its disk (10%)",
     [](const std::string& v, Config* c) { c->cache.size = v; return Status::Ok(); }},
    {"block_size", true, "4M", "unit of caching and of one ranged GET",
     [](const std::string& v, Config* c) { return SetSize(v, &c->cache.block_size); }},
    {"prefetch_mem", true, "min(1G, RAM/8)", "memory for all read-ahead data",
     [](const std::string& v, Config* c) { return SetSize(v, &c->cache.prefetch_mem); }},
    {"prefetch_whole", true, "*.safetensors", "glob of names fetched whole on open ('' = none)",
     [](const std::string& v, Config* c) { c->cache.prefetch_whole = v; return Status::Ok(); }},
    {"max_inflight", true, "32", "ranged GETs in flight across all files",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->cache.max_inflight); }},
    {"readahead_max", true, "256M", "largest read-ahead window of one reader",
     [](const std::string& v, Config* c) { return SetSize(v, &c->cache.readahead_max); }},
    {"readahead_warm", true, "32M", "how far ahead of a reader blocks the disk cache holds are read",
     [](const std::string& v, Config* c) { return SetSize(v, &c->cache.readahead_warm); }},
    {"max_get_size", true, "64M", "largest ranged GET of a sequential reader's read-ahead",
     [](const std::string& v, Config* c) { return SetSize(v, &c->cache.max_get_size); }},
    {"readahead_gets", true, "16", "GETs a sequential reader's window is split into",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->cache.readahead_gets); }},
    {"cache_backfill", true, "on", "write blocks the cache disk could not keep up with once idle (fetched again)",
     [](const std::string& v, Config* c) { return SetBool(v, &c->cache.cache_backfill); }},
    {"warm_split", true, "on", "fetch part of a warm read from OBS while the cache disk is slower",
     [](const std::string& v, Config* c) { return SetBool(v, &c->cache.warm_split); }},
    {"fallback", true, "none", "directory (SFS/NFS share) mirroring bucket:/prefix, served while OBS fails",
     [](const std::string& v, Config* c) { c->fallback.dir = v; return Status::Ok(); }},
    {"fallback_threshold", true, "3", "consecutive OBS failures that switch reads to the share",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->fallback.failure_threshold); }},
    {"fallback_probe_interval", true, "5s", "how often OBS is probed while serving from the share",
     [](const std::string& v, Config* c) { return SetDuration(v, &c->fallback.probe_interval); }},
    {"proof_rate", true, "64M", "bytes/s the background prover reads from the share (0 = no background proofs)",
     [](const std::string& v, Config* c) { return SetSize(v, &c->fallback.proof_rate); }},
    {"fallback_parallel", true, "on", "read proven share copies and OBS at once, each in proportion to its measured rate (off = OBS only while healthy)",
     [](const std::string& v, Config* c) {
       if (v == "on" || v == "off") { c->fallback.parallel = v == "on"; return Status::Ok(); }
       return SetBool(v, &c->fallback.parallel);
     }},
    {"share_workers", true, "8", "threads that do share I/O (a hung share costs a read its deadline, not a FUSE thread)",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->fallback.share_workers); }},
    {"max_threads", true, "16", "FUSE worker threads",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->daemon.max_threads); }},
    {"ro", false, "off (rw)", "mount read-only: every write and namespace change is EROFS",
     [](const std::string&, Config* c) { c->fs.read_only = true; return Status::Ok(); }},
    {"rw", false, "on", "mount read-write (the default)",
     [](const std::string&, Config* c) { c->fs.read_only = false; return Status::Ok(); }},
    {"multipart_size", true, "16", "upload part size in MiB (s3fs's unit); larger files go up as parallel multipart uploads",
     [](const std::string& v, Config* c) {
       uint64_t mib = 0;
       DSFS_RETURN_IF_ERROR(SetNumber(v, &mib));
       if (mib < 5 || mib > 5120) return Status::InvalidArgument("must be between 5 and 5120 (MiB)");
       c->write.multipart_size = mib << 20;
       return Status::Ok();
     }},
    {"parallel_count", true, "8", "parts of one file uploaded at once",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->write.parallel_count); }},
    {"streamupload", true, "on", "upload the parts of a sequentially written file while it is written",
     [](const std::string& v, Config* c) { return SetBool(v, &c->write.stream_upload); }},
    {"max_dirty", true, "5G", "written but not yet uploaded data over all files; past it a writer's file is uploaded early",
     [](const std::string& v, Config* c) { return SetSize(v, &c->write.max_dirty); }},
    {"tmpdir", true, "/tmp", "where files being written are staged when there is no cache_dir",
     [](const std::string& v, Config* c) { c->write.tmpdir = v; return Status::Ok(); }},
    {"metrics_port", true, "0", "serve /metrics (Prometheus text) on this TCP port (0 = off)",
     [](const std::string& v, Config* c) { return SetNumber(v, &c->daemon.metrics_port); }},
    {"metrics_addr", true, "127.0.0.1", "IPv4 or IPv6 address the metrics endpoint listens on",
     [](const std::string& v, Config* c) { c->daemon.metrics_addr = v; return Status::Ok(); }},
  };
  return kTable;
}
// clang-format on

// Accepted and ignored: options for mount(8), systemd and FUSE that dsfs
// sets itself, and s3fs/obsfs options that have no meaning here.
bool IsIgnoredOption(const std::string& name) {
  static const char* const kIgnored[] = {
      // mount(8) / fstab
      "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime",
      "relatime", "norelatime", "strictatime", "diratime", "nodiratime", "sync", "async",
      "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
      "nofail", "loop", "comment",
      // FUSE options dsfs decides itself
      "nonempty", "big_writes", "max_write", "max_read", "default_permissions", "fsname", "subtype",
      "kernel_cache", "auto_cache",
      // s3fs/obsfs options without a meaning in dsfs
      "use_cache", "del_cache", "enable_noobj_cache", "max_stat_cache_size",
      "multireq_max", "complement_stat", "notsup_compat_dir", "compat_dir",
      "noxmlns", "sigv2", "sigv4", "nomultipart", "enable_content_md5", "use_xattr", "mp_umask",
      "readwrite_timeout", "curldbg", "obsfslog", "storage_class", "ensure_diskfree"};
  if (name.starts_with("x-") || name.starts_with("comment=")) return true;
  for (const char* i : kIgnored) {
    if (name == i) return true;
  }
  return false;
}

}  // namespace

namespace {

// Every numeric option has a documented range (README options table): a
// value outside it is a typo or would overflow a deadline.
Status CheckRange(const char* name, milliseconds v, milliseconds lo, milliseconds hi,
                  const char* range) {
  if (v < lo || v > hi) {
    return Status::InvalidArgument(std::string(name) + " must be between " + range + " (got " +
                                   std::to_string(v.count()) + " ms)");
  }
  return Status::Ok();
}

template <typename T>
Status CheckRange(const char* name, T v, T lo, T hi, const char* range) {
  if (v < lo || v > hi) {
    return Status::InvalidArgument(std::string(name) + " must be between " + range + " (got " +
                                   std::to_string(v) + ")");
  }
  return Status::Ok();
}

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr milliseconds kDay{24LL * 3600 * 1000};

}  // namespace

Status ValidateConfig(const Config& c) {
  const uint64_t bs = c.cache.block_size;
  if (bs < (64u << 10) || bs > (64u << 20)) {
    return Status::InvalidArgument("block_size must be between 64K and 64M");
  }
  if (c.cache.max_inflight < 1 || c.cache.max_inflight > 256) {
    return Status::InvalidArgument("max_inflight must be between 1 and 256");
  }
  if (c.cache.readahead_max < bs) {
    return Status::InvalidArgument("readahead_max must be at least block_size");
  }
  DSFS_RETURN_IF_ERROR(
      CheckRange("readahead_max", c.cache.readahead_max, bs, 4 * kGiB, "block_size and 4G"));
  DSFS_RETURN_IF_ERROR(CheckRange("readahead_warm", c.cache.readahead_warm, bs, 4 * kGiB,
                                  "block_size and 4G"));
  DSFS_RETURN_IF_ERROR(
      CheckRange("max_get_size", c.cache.max_get_size, bs, 1 * kGiB, "block_size and 1G"));
  if (c.cache.readahead_gets < 1 || c.cache.readahead_gets > 256) {
    return Status::InvalidArgument("readahead_gets must be between 1 and 256");
  }
  if (c.cache.prefetch_mem != 0 && c.cache.prefetch_mem < 2 * bs) {
    return Status::InvalidArgument("prefetch_mem must be at least two blocks");
  }
  if (c.cache.prefetch_mem != 0) {
    DSFS_RETURN_IF_ERROR(CheckRange("prefetch_mem", c.cache.prefetch_mem, 2 * bs, 256 * kGiB,
                                    "two blocks and 256G"));
  }
  if (c.fallback.failure_threshold < 1) {
    return Status::InvalidArgument("fallback_threshold must be at least 1");
  }
  if (c.fallback.share_workers < 1 || c.fallback.share_workers > 256) {
    return Status::InvalidArgument("share_workers must be between 1 and 256");
  }
  DSFS_RETURN_IF_ERROR(
      CheckRange("fallback_threshold", c.fallback.failure_threshold, 1, 1000, "1 and 1000"));
  if (c.s3.max_retries < 0 || c.s3.max_retries > 20) {
    return Status::InvalidArgument("retries must be between 0 and 20");
  }
  if (c.daemon.max_threads < 1) return Status::InvalidArgument("max_threads must be at least 1");
  DSFS_RETURN_IF_ERROR(CheckRange("max_threads", c.daemon.max_threads, 1u, 1024u, "1 and 1024"));
  DSFS_RETURN_IF_ERROR(
      CheckRange("metrics_port", c.daemon.metrics_port, 0u, 65535u, "0 and 65535"));
  DSFS_RETURN_IF_ERROR(CheckRange("list_mem", c.fs.list_mem, kMiB, 64 * kGiB, "1M and 64G"));
  DSFS_RETURN_IF_ERROR(CheckRange("stat_ttl", c.fs.stat_ttl, milliseconds(0), kDay, "0 and 24h"));
  DSFS_RETURN_IF_ERROR(CheckRange("list_ttl", c.fs.list_ttl, milliseconds(0), kDay, "0 and 24h"));
  DSFS_RETURN_IF_ERROR(
      CheckRange("negative_ttl", c.fs.negative_ttl, milliseconds(0), kDay, "0 and 24h"));
  DSFS_RETURN_IF_ERROR(
      CheckRange("list_timeout", c.fs.list_timeout, milliseconds(1000), kDay, "1s and 24h"));
  DSFS_RETURN_IF_ERROR(CheckRange("connect_timeout", c.s3.connect_timeout, milliseconds(100),
                                  milliseconds(300000), "100ms and 5m"));
  // 0 would mean "no deadline at all" to curl: refused.
  DSFS_RETURN_IF_ERROR(CheckRange("request_timeout", c.s3.request_timeout, milliseconds(1000),
                                  milliseconds(3600000), "1s and 1h"));
  DSFS_RETURN_IF_ERROR(CheckRange("first_byte_timeout", c.s3.first_byte_timeout, milliseconds(0),
                                  milliseconds(300000), "0 (off) and 5m"));
  DSFS_RETURN_IF_ERROR(
      CheckRange("parallel_count", c.write.parallel_count, 1, 128, "1 and 128"));
  DSFS_RETURN_IF_ERROR(CheckRange("max_dirty", c.write.max_dirty, kMiB, uint64_t{64} << 40,
                                  "1M and 64T"));
  if (c.write.tmpdir.empty() || c.write.tmpdir.front() != '/') {
    return Status::InvalidArgument("tmpdir must be an absolute path");
  }
  DSFS_RETURN_IF_ERROR(CheckRange("fallback_probe_interval", c.fallback.probe_interval,
                                  milliseconds(100), milliseconds(3600000), "100ms and 1h"));
  return Status::Ok();
}

Status ApplyMountOption(const std::string& item, Config* config,
                        std::vector<std::string>* ignored) {
  if (item.empty()) return Status::Ok();
  size_t eq = item.find('=');
  std::string name = item.substr(0, eq);
  std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
  for (const auto& spec : OptionTable()) {
    if (name != spec.name) continue;
    if (spec.takes_value && eq == std::string::npos) {
      return Status::InvalidArgument("option '" + name + "' needs a value (" + name + "=...)");
    }
    return spec.set(value, config).WithContext("option '" + name + "'");
  }
  if (IsIgnoredOption(name)) {
    if (ignored) ignored->push_back(item);
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown option '" + name + "' (see dsfs --help)");
}

Status ParseSource(const std::string& source, FsConfig* fs) {
  size_t colon = source.find(':');
  fs->bucket = source.substr(0, colon);
  std::string prefix = colon == std::string::npos ? "" : source.substr(colon + 1);
  if (fs->bucket.empty()) return Status::InvalidArgument("no bucket in '" + source + "'");
  if (fs->bucket.find('/') != std::string::npos) {
    return Status::InvalidArgument("bad bucket name '" + fs->bucket + "' (use bucket:/prefix)");
  }
  while (prefix.starts_with("/")) prefix.erase(0, 1);
  while (prefix.ends_with("/")) prefix.pop_back();
  if (!prefix.empty()) {
    if (!IsValidKeyPath(prefix)) {
      return Status::InvalidArgument("bad prefix '" + prefix + "' in '" + source + "'");
    }
    prefix += "/";
  }
  fs->prefix = prefix;
  return Status::Ok();
}

Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cl;
  cl.config.fs.uid = getuid();
  cl.config.fs.gid = getgid();
  cl.config.fs.implicit_dir_mtime_sec = time(nullptr);
  CLI::App app{"dsfs: mount an S3/OBS bucket"};
  app.set_help_flag();  // handled below, so errors never print CLI11's text
  std::string source;
  std::vector<std::string> opts;
  bool help = false;
  app.add_flag("-h,--help", help);
  app.add_flag("-V,--version", cl.show_version);
  app.add_flag("-f", cl.config.daemon.foreground);
  app.add_flag("-d", cl.config.daemon.fuse_debug);
  app.add_flag(
      "-s", [](int64_t) {}, "single-threaded (accepted for compatibility)");
  app.add_option("-o", opts)->allow_extra_args(false)->take_all();
  app.add_option("source", source);
  app.add_option("mountpoint", cl.config.daemon.mountpoint);
  try {
    app.parse(argc, const_cast<char**>(argv));
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(e.what());
  }
  if (help) {
    cl.show_help = true;
    return cl;
  }
  if (cl.show_version) return cl;
  if (source.empty() || cl.config.daemon.mountpoint.empty()) {
    return Status::InvalidArgument(
        "usage: dsfs BUCKET[:/PREFIX] MOUNTPOINT [-o options] (see --help)");
  }
  DSFS_RETURN_IF_ERROR(ParseSource(source, &cl.config.fs));
  for (const auto& o : opts) {
    std::stringstream ss(o);
    std::string item;
    while (std::getline(ss, item, ',')) {
      DSFS_RETURN_IF_ERROR(ApplyMountOption(item, &cl.config, &cl.ignored));
    }
  }
  DSFS_RETURN_IF_ERROR(ValidateConfig(cl.config));
  if (cl.config.daemon.fuse_debug) {
    cl.config.daemon.foreground = true;
    cl.config.daemon.log_level = "debug";
  }
  return cl;
}

std::string UsageText() {
  std::string out =
      "usage: dsfs BUCKET[:/PREFIX] MOUNTPOINT [-o opt[,opt...]] [-f] [-d]\n"
      "       mount -t fuse.dsfs BUCKET MOUNTPOINT -o opt[,opt...]\n\n"
      "  -f             stay in the foreground\n"
      "  -d             foreground, debug logging and FUSE request trace\n"
      "  -h, --help     this text\n"
      "  -V, --version  print the version\n\n"
      "options (-o):\n";
  for (const auto& spec : OptionTable()) {
    std::string name = std::string(spec.name) + (spec.takes_value ? "=..." : "");
    out += "  " + name;
    out += std::string(name.size() < 26 ? 26 - name.size() : 1, ' ');
    out += std::string(spec.help) + " [default: " + spec.default_text + "]\n";
  }
  out +=
      "\nAccepted and ignored: mount(8) options (rw, dev, suid, _netdev, nofail, defaults,\n"
      "x-systemd.*, ...) and s3fs options without a meaning here (use_cache, ...).\n"
      "Credentials: passwd_file= or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY\n"
      "(/ AWS_SESSION_TOKEN) from the environment.\n";
  return out;
}

}  // namespace dsfs
