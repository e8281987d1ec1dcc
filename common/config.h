// Every tunable of dsfs, with the reason for its default next to it.
// One Config is built by the option parser (tools/) and passed down by
// constructor; nothing reads options from anywhere else. Components take
// their own option structs (ReadAheadOptions, DiskCacheOptions,
// FuseOptions, MetadataCacheOptions), filled from a Config
// by one *OptionsFrom(const Config&) function each; their defaults are read
// from a default Config, never written twice (tests/unit/tools/
// options_from_config_test.cc fails when they drift). Fields without a
// mount option are tunables all the same: change them here.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace dsfs {

using std::chrono::milliseconds;

struct S3Config {
  // url=: scheme://host[:port]. OBS endpoints look like
  // https://obs.cn-north-4.myhuaweicloud.com.
  std::string endpoint = "https://s3.amazonaws.com";
  // region=: empty means "derive from an OBS host, else us-east-1".
  std::string region;
  // use_path_request_style: http://host/bucket/key instead of
  // http://bucket.host/key; needed for IP endpoints and most local servers.
  bool path_style = false;
  // ca_file=: extra CA bundle (PEM) to trust, e.g. a private CA.
  std::string ca_file;
  // ssl_verify=0 / no_check_certificate: only with an explicit option,
  // and logged as a warning.
  bool verify_tls = true;
  // A black-holed endpoint must fail fast: 3 s to connect is long for a
  // same-region OBS endpoint and short enough to fail a mount in ~15 s.
  milliseconds connect_timeout{3000};
  // Abort a transfer that moves < low_speed_limit bytes/s for
  // low_speed_time: catches stalled bodies without capping large GETs.
  milliseconds low_speed_time{10000};
  long low_speed_limit = 1024;
  // request_timeout=: hard deadline of one request attempt (HEAD, LIST, and
  // the GET of one block: 4 MiB in 30 s is 140 KB/s, far below any link
  // dsfs is meant for).
  milliseconds request_timeout{30000};
  // first_byte_timeout=: an attempt whose answer has not started by then is
  // cut and retried (0 = off). OBS answers in tens of ms; 2 s only fires on
  // a stalled request, and bounds what one stall costs a reader.
  milliseconds first_byte_timeout{2000};
  // An attempt that sends a body gets request_timeout plus length at this
  // many bytes/s: 1 MiB/s lets a 16 MiB part take 46 s and a 5 GiB part
  // 90 min, so a slow but moving upload is not cut and retried for ever
  // (a stalled one is cut by the low-speed limit).
  uint64_t upload_min_rate = uint64_t{1} << 20;
  // CompleteMultipartUpload and server-side copies (CopyObject,
  // UploadPartCopy of up to 5 GiB): S3 may work for minutes before it
  // answers, sending whitespace; 10 min bounds a hung one.
  milliseconds slow_op_timeout{600000};
  // retries=: attempts after the first, for retryable errors only.
  int max_retries = 4;
  // Exponential backoff with full jitter: base * 2^attempt, capped.
  milliseconds retry_base{100};
  milliseconds retry_cap{3000};
  // Idle connections kept alive to the endpoint for reuse: 64 covers every
  // GET thread (max_inflight=32) plus HEAD/LIST traffic, so a busy mount
  // never pays a new TCP/TLS handshake.
  int max_connections = 64;
};

struct Credentials {
  std::string access_key;
  std::string secret_key;     // never logged
  std::string session_token;  // never logged
  bool empty() const { return access_key.empty() && secret_key.empty(); }
};

struct FsConfig {
  std::string bucket;
  std::string prefix;  // "" or "models/" (always ends with '/')
  // uid=/gid=: owner reported for objects without x-amz-meta-uid/gid;
  // default is the mounting user.
  uid_t uid = 0;
  gid_t gid = 0;
  bool uid_set = false;
  bool gid_set = false;
  // umask=: applied to every mode reported (s3fs semantics).
  mode_t umask = 0022;
  bool umask_set = false;
  bool allow_other = false;
  // stat_ttl= / list_ttl=: weights are immutable once written, so a few
  // seconds of staleness trade for far fewer HEAD/LIST requests.
  milliseconds stat_ttl{5000};
  milliseconds list_ttl{5000};
  // Negative (ENOENT) entries live shorter so a new object appears soon.
  milliseconds negative_ttl{1000};
  // Metadata cache bounds: stat + negative entries (200k is ~60 MB and more
  // names than a model tree has).
  size_t max_stat_entries = 200'000;
  // list_mem=: all directory listings in memory, cached or held by open
  // directory handles (which share one listing per directory). ~200 bytes
  // a name: 256 MiB holds ~1.3M names, several huge model directories,
  // while a user opening many handles cannot grow the daemon past it.
  uint64_t list_mem = uint64_t{256} << 20;
  // How often expired stat and listing entries are swept: often enough that
  // an expired big listing does not linger, rare enough that the O(n) sweep
  // is noise.
  milliseconds list_sweep_interval{1000};
  // list_timeout=: one whole directory listing, all pages. A 1M-key
  // directory lists in ~100 s from OBS; a server that never ends a listing
  // (IsTruncated for ever) fails with EIO after this.
  milliseconds list_timeout{300000};
  // Pages in a row with no entry but a new continuation token: S3 does not
  // send those, a broken or hostile server loops with them.
  int list_max_empty_pages = 16;
  // ro / rw: s3fs mounts read-write, and so does dsfs; -o ro refuses every
  // write and namespace change with EROFS.
  bool read_only = false;
  // mtime of directories that have no marker object (the mount time).
  int64_t implicit_dir_mtime_sec = 0;
};

struct DaemonConfig {
  std::string mountpoint;
  bool foreground = false;         // -f
  bool fuse_debug = false;         // -d: foreground + libfuse request trace
  std::string logfile;             // logfile=: empty = stderr in foreground, syslog otherwise
  std::string log_level = "warn";  // dbglevel= (s3fs: crit/err/warn/info/debug)
  std::string passwd_file;         // passwd_file=
  unsigned max_threads = 16;       // FUSE worker threads: reads block on the network
  // Kernel read-ahead of the mount (the bdi's read_ahead_kb). The kernel's
  // default of 128 KiB keeps FUSE reads small; 8 MiB lets it send 1 MiB
  // reads well ahead of the reader. Needs root; skipped otherwise. 0 keeps
  // the kernel's value.
  unsigned kernel_readahead_kb = 8192;
  // metrics_port=: serve the counters at http://metrics_addr:PORT/metrics
  // in the Prometheus text format; 0: no HTTP endpoint (the root xattr
  // that `dsfsctl stats` reads is always there).
  unsigned metrics_port = 0;
  // metrics_addr=: where the endpoint listens. Loopback by default: the
  // counters name no keys, but nothing off the node needs them unasked.
  std::string metrics_addr = "127.0.0.1";
};

// Read-ahead and the block cache on the local SSD.
struct CacheConfig {
  // cache_dir=: persistent block cache (e.g. /data/dsfs-cache). Empty: no
  // disk cache; blocks live only in the read-ahead buffer.
  std::string dir;
  // cache_size=: hard cap, a size ("200G") or a share of the disk ("10%").
  // 10% leaves the SSD to the workloads that own it.
  std::string size = "10%";
  // block_size=: unit of caching and of one ranged GET (4 MiB amortizes
  // OBS's per-request latency of ~10-30 ms; small random reads stay cheap).
  // Also the first read-ahead window of a sequential reader (one block), so
  // a reader that only looks at a file's header costs little, and the
  // largest block the disk cache accepts.
  uint64_t block_size = uint64_t{4} << 20;
  // prefetch_mem=: one budget for all read-ahead data; 0 = min(1 GiB, RAM/8).
  uint64_t prefetch_mem = 0;
  // prefetch_whole=: files whose name matches this fnmatch(3) glob (last
  // path component, or the whole key when it contains '/') are fetched
  // whole from a handle's first read, within prefetch_mem; model loaders
  // read shards by mmap faults that look random. Empty disables.
  std::string prefetch_whole = "*.safetensors";
  // max_inflight=: ranged GETs in flight across all files. One OBS
  // connection gives ~64 MiB/s, and a 4 MiB GET spends ~20 ms of its ~80 ms
  // waiting for the first byte: 32 fill a 10 Gbit/s link.
  int max_inflight = 32;
  // readahead_max=: largest read-ahead window of one sequential reader; the
  // window doubles per block consumed up to this. 256 MiB holds
  // readahead_gets GETs of 16 MiB in flight: one reader fills ~1 GB/s of
  // 64 MiB/s connections, within prefetch_mem with four such readers.
  uint64_t readahead_max = uint64_t{256} << 20;
  // max_get_size=: largest ranged GET of a sequential stream's read-ahead.
  // A stream fetches runs of consecutive blocks with one GET each (each
  // block still cached and verified on its own): OBS bills per request and
  // each one waits ~20 ms for its first byte, so at 64 MiB/s per connection
  // a 4 MiB GET idles a quarter of its time, a 64 MiB one 2%. Each block of
  // a run goes to its readers as soon as its bytes are in; a run must
  // finish within request_timeout.
  uint64_t max_get_size = uint64_t{64} << 20;
  // readahead_gets=: a stream's window is fetched in runs of window /
  // readahead_gets (1 block to max_get_size), so that many GETs, i.e.
  // connections at ~64 MiB/s each, stay in flight per stream: 16 x 16 MiB
  // runs of the 256 MiB window (a GiB in ~70 GETs); 8 connections would
  // cap one reader at ~500 MB/s.
  int readahead_gets = 16;
  // readahead_warm=: read-ahead of blocks the disk cache holds stays this
  // far ahead of the reader (a whole-file prefetch too). A cached block
  // comes back in a few ms, not after a GET's ~20 ms first byte, so 8
  // blocks in flight keep an SSD busy; reading a warm shard far ahead only
  // filled fresh memory: a warm 4-shard mmap load took 262k page faults
  // per GiB (every block a new buffer) against 50k with a 32 MiB window.
  uint64_t readahead_warm = uint64_t{32} << 20;
  // A read within this distance of the expected next offset still counts
  // as sequential: the kernel issues read-ahead requests in parallel and
  // FUSE threads serve them out of order.
  uint64_t seq_tolerance = uint64_t{8} << 20;
  // Blocks queued for asynchronous cache writes. 16 blocks (64 MiB) absorb
  // a burst while the SSD catches up. When it is full, nothing waits: the
  // block is deferred (dsfs_cache_write_deferred_total). A cache disk slower
  // than OBS (an EVS disk at 350 MiB/s against a 2 GB/s account) must never
  // slow a load down to its own speed.
  size_t cache_write_queue = 16;
  // Deferred blocks are fetched again and written once the fetcher is idle
  // (no read or read-ahead in flight), a queue's worth per GET, so a load
  // on a slow disk still ends with the whole file cached (offline mode
  // serves what the node holds). Costs those blocks' OBS bytes twice;
  // cache_backfill=off skips them instead (a later read fetches them).
  bool cache_backfill = true;
  // Deferred blocks remembered for the backfill; more are skipped
  // (dsfs_cache_write_dropped_total). About 100 bytes each: 64k blocks are
  // 256 GiB of 4 MiB blocks in ~6 MiB.
  size_t cache_deferred_max = 65536;
  // warm_split=: while the cache disk is busy and each of its reads
  // delivers less than half what a GET does, blocks it holds are fetched
  // from OBS instead, so a slow disk and the network serve a warm read
  // together (cache/read_split.h). A fast SSD never meets the condition;
  // off = every cached block is read from the disk.
  bool warm_split = true;
  // Blocks read from the disk cache stay in memory (up to this many bytes,
  // least recently used dropped) for the FUSE requests that follow: the
  // kernel reads a block in 4 to 32 requests, often in parallel, and each
  // would read and checksum the whole block again (a cold 4-shard mmap
  // load read 3.9 GiB from the disk for 2 GiB of shards). 32 MiB holds two
  // blocks for each of four loaders plus some; part of the 128 MiB above
  // prefetch_mem that peak RSS allows.
  uint64_t recent_blocks_mem = uint64_t{32} << 20;
  // Objects whose read-ahead state is kept without an open handle (reads
  // without open, e.g. after the kernel dropped the handle); the least
  // recently used beyond this are forgotten. A few hundred bytes each.
  size_t max_tracked_objects = 4096;
  // A read-ahead stream none of whose handles has read for this long is
  // idle: a reading stream short of budget may take back its queued and
  // unread read-ahead. A loader moves on to its next shard within
  // milliseconds and a reader blocked in a GET has already been answered
  // from read-ahead up to it, so 1 s only catches handles that stopped
  // reading (a loader that opened every shard first and reads them in
  // another order).
  milliseconds readahead_idle{1000};
  // Disk cache: recency is written to the index this often and when this
  // many blocks are pending; a crash forgets at most this much LRU order.
  milliseconds access_flush_interval{5000};
  size_t access_flush_batch = 4096;
  // How long a cache Put waits for the index to load after mount before
  // giving up (the block is then not cached): 30 s covers loading a large
  // index on a slow disk without holding a writer forever.
  milliseconds cache_ready_wait{30000};
};

// SFS fallback: a directory (the NFS share) that mirrors bucket/prefix.
struct FallbackConfig {
  std::string dir;  // fallback=: empty = no fallback
  // fallback_threshold=: consecutive retryable OBS failures that switch
  // reads to the share (a connect failure switches at once). 3 rides out a
  // single 503 without flapping while switching within a few requests: the
  // primary already retried each request with backoff, so three failed
  // requests in a row mean it is down, not unlucky.
  int failure_threshold = 3;
  // fallback_probe_interval=: how often the primary is probed while the
  // circuit is open; recovery is noticed within this, and an outage costs
  // one LIST per interval.
  milliseconds probe_interval{5000};
  // proof_rate=: bytes per second the background prover may read from the
  // share to prove its copies (0 = only on demand). 64 MiB/s proves a
  // 700 GB model in about three hours without taking the share from the
  // nodes that read it.
  uint64_t proof_rate = uint64_t{64} << 20;
  // Keys waiting for a background proof; more are dropped (the next HEAD
  // of a dropped key queues it again). 10,000 covers the shards of several
  // models at ~100 bytes each.
  size_t proof_queue = 10000;
  // share_workers=: threads that do the share's I/O. A hung NFS hard mount
  // blocks its reader in the kernel: these threads take that, never the
  // FUSE threads; 8 keep several shards' fallback reads in flight.
  int share_workers = 8;
  // fallback_parallel=: while OBS is healthy, a read of an object whose
  // share copy is proven identical goes to whichever of OBS and the share
  // is expected to finish it first (rates measured as it goes), and a read
  // late on one (past its recent p99) is asked of the other. On by
  // default: OBS bandwidth is capped per account (~2 GB/s) while SFS Turbo
  // scales with its size, so a fleet loading one model gets both pipes;
  // only proven bytes are ever taken from the share. off: OBS only while
  // it is healthy, as before.
  bool parallel = true;
  // How long "this share copy is not proven to be that OBS version" is
  // trusted before the share file is stat'ed again (in the background),
  // so a copy proven later is used within a second. A proven identity
  // needs no such limit: the share's If-Match refuses a rewritten file and
  // that read goes to OBS.
  milliseconds parallel_stat_ttl{1000};
  // After a share error (a failed stat or read) an object's reads stay off
  // the share this long: a failing share costs a read now and then (each
  // retried on OBS), not every read.
  milliseconds parallel_error_backoff{30000};
  // Hedged reads (fallback_parallel=on): at most this many reads are asked
  // of the other source at once, each holding a buffer of its size (up to
  // max_get_size=). A late read is about one in a hundred; 4 cover a burst
  // of them without doubling the load of a source that is merely busy.
  int hedge_workers = 4;
  // A read is never hedged before this, however fast its source's p99: a
  // hedge costs a second read, worth it only against a real stall.
  milliseconds hedge_min_delay{20};
  // How the split measures the two sources (backends/source_split.h). The
  // newest rate sample weighs 0.2: a change of rate is followed within ~10
  // reads, one slow read does not swing it.
  double split_ewma_alpha = 0.2;
  // Reads per source whose durations make its p99 (of 64 the largest: a
  // late read is slower than all of the last 64), and the samples needed
  // before any read can be late (fewer say nothing about a tail).
  size_t split_latency_window = 64;
  size_t split_min_latency_samples = 16;
  // An idle source is given the next read after this: a rate measured at a
  // bad moment is measured again instead of starving that source.
  milliseconds split_probe_after{500};
  // A source's rate measured with k reads in flight counts for this long
  // unless measured again (its newest sample always counts): a burst
  // measured once (19 reads at once on cold connections) must not stand
  // for that concurrency for the rest of the load, or the source is never
  // given a second read again.
  milliseconds split_sample_ttl{2000};
  // A read waits at most this for a free slot on the source expected to
  // finish it first (the share's are bounded by share_workers=): a second
  // covers a few block reads ending, never a stuck source.
  milliseconds split_max_wait{1000};
};

// The write path: files written through the mount are staged on local disk
// and uploaded on flush/fsync/close.
struct WriteConfig {
  // Where staged files live: cache_dir/staging when there is a disk cache
  // (outside anything the cache's clean-up touches), else tmpdir= (s3fs's
  // option name, default /tmp).
  std::string tmpdir = "/tmp";
  // multipart_size=: part size of uploads, in MiB as s3fs reads it; a file
  // larger than one part goes up as a parallel multipart upload. 16 MiB
  // keeps the per-part wait for the first byte (~20 ms) under 10% of a
  // part's transfer at 64 MiB/s per connection. Raised for a file so it
  // stays within S3's 10,000 parts (a 5 TiB object gets 525 MiB parts).
  uint64_t multipart_size = uint64_t{16} << 20;
  // parallel_count= (s3fs's name): parts uploaded at once per file. 8
  // connections of ~64 MiB/s fill a 4 Gbit/s share of the link.
  int parallel_count = 8;
  // streamupload= (s3fs's name): a file written sequentially past two
  // parts has its parts uploaded while it is written, so close waits for
  // the last parts, not for the whole file (the staging copy and the
  // upload overlap: about half the time of write-then-upload). A write
  // into a part already sent falls back to the whole upload at close.
  bool stream_upload = true;
  // max_dirty=: bytes written but not yet uploaded, over all open files.
  // A write that finds the total past it uploads its own file first (as
  // s3fs flushes a file past max_dirty_data), which bounds the staging
  // disk's unsent data. 5 GiB as s3fs's max_dirty_data.
  uint64_t max_dirty = uint64_t{5} << 30;
};

struct Config {
  S3Config s3;
  FsConfig fs;
  DaemonConfig daemon;
  CacheConfig cache;
  FallbackConfig fallback;
  WriteConfig write;
};

// dsfsctl warm: --jobs requests in flight, each of kWarmBlocksPerRequest
// blocks fetched at once by the daemon: 8 x 4 blocks of 4 MiB = 128 MiB in
// flight, as much as one read-ahead stream at readahead_max/2, enough to
// keep the link busy without starving the mount's readers (the FUSE pool
// has max_threads=16 workers; warm takes half).
inline constexpr unsigned kWarmDefaultJobs = 8;
inline constexpr uint64_t kWarmBlocksPerRequest = 4;

// Upper bounds (seconds) of the latency histograms (dsfs_s3_request_seconds).
// A same-region OBS HEAD or LIST page answers in 2-20 ms and a 4 MiB block
// GET in 20-300 ms; a throttled or retried request takes seconds, and the
// transfer timeouts cut at tens of seconds. Fine steps where p50 lands,
// coarse ones up to the timeouts; a fixed set keeps series comparable
// across mounts and releases (Prometheus aggregates buckets by `le`).
inline constexpr std::array<double, 15> kLatencyBucketsSeconds{
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

// "4M", "200G", "1048576" -> bytes. Suffixes K/M/G/T (powers of 1024),
// optional trailing "B"/"iB".
Result<uint64_t> ParseSize(const std::string& text);
// cache_size= -> bytes: a size ("200G", see ParseSize) or a percentage of
// the size of the filesystem holding dir ("10%"; dir need not exist yet,
// its nearest existing parent is measured). InvalidArgument if it does not
// parse or is zero.
Result<uint64_t> ResolveCacheSize(const std::string& text, const std::string& dir);
// "30", "30s", "500ms", "5m" -> milliseconds (a bare number is seconds, as in s3fs).
Result<milliseconds> ParseDuration(const std::string& text);

}  // namespace dsfs
