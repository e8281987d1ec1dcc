// dsfsctl cache du|fsck|gc|clear --cache-dir DIR: offline maintenance of a
// disk cache directory (the logic is cache/cache_maintenance.h). du also
// works beside a running mount; fsck, gc and clear take the directory's
// lock and exit kInUse while a mount holds it.
#include <spdlog/fmt/fmt.h>

#include <cstdio>
#include <string>

#include "cache/cache_maintenance.h"
#include "common/config.h"
#include "tools/ctl/commands.h"

namespace dsfs::ctl {
namespace {

// Exit code and message for a failed maintenance call.
int Fail(const Status& st) {
  std::fprintf(stderr, "dsfsctl cache: %s\n", st.message().c_str());
  switch (st.code()) {
    case StatusCode::kInvalidArgument: return kNotDsfs;
    case StatusCode::kUnavailable: return kInUse;
    default: return kFailed;
  }
}

int Du(const std::string& dir, const std::string& cache_size, bool json) {
  auto u = CacheUsageOf(dir);
  if (!u.ok()) return Fail(u.status());
  auto cap = ResolveCacheSize(cache_size, dir);
  if (!cap.ok()) return Fail(cap.status());
  if (json) {
    std::printf(
        "{\"blocks\": %llu, \"bytes\": %llu, \"objects\": %llu, \"cap_bytes\": %llu, "
        "\"unreadable\": %llu, \"clean\": %s}\n",
        (unsigned long long)u->blocks, (unsigned long long)u->bytes,
        (unsigned long long)u->objects, (unsigned long long)*cap,
        (unsigned long long)u->unreadable, u->clean ? "true" : "false");
  } else {
    std::printf("cache_dir   %s\nblocks      %llu\nbytes       %llu\nobjects     %llu\n"
                "cap         %llu (cache_size=%s)\nunreadable  %llu\nshutdown    %s\n",
                dir.c_str(), (unsigned long long)u->blocks, (unsigned long long)u->bytes,
                (unsigned long long)u->objects, (unsigned long long)*cap, cache_size.c_str(),
                (unsigned long long)u->unreadable, u->clean ? "clean" : "unclean");
  }
  return kOk;
}

int Fsck(const std::string& dir, bool repair) {
  auto r = FsckCache(dir, repair);
  if (!r.ok()) return Fail(r.status());
  for (const auto& p : r->problems) {
    std::printf("%s %s: %s%s\n", CacheProblemName(p.kind), p.path.c_str(), p.detail.c_str(),
                r->repaired ? " (repaired)" : "");
  }
  std::printf("%llu block files, %llu index entries checked, %zu problems%s\n",
              (unsigned long long)r->blocks_checked, (unsigned long long)r->entries_checked,
              r->problems.size(), r->repaired ? ", repaired" : "");
  return r->corrupt() && !r->repaired ? kFailed : kOk;
}

}  // namespace

void AddCacheCommand(CLI::App& app, int* rc) {
  CLI::App* cache = app.add_subcommand("cache", "maintain a disk cache directory offline");
  cache->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  auto add = [&](const char* name, const char* help) {
    CLI::App* sub = cache->add_subcommand(name, help);
    sub->add_option("--cache-dir", *dir, "the cache_dir= of the mount")->required();
    return sub;
  };
  CLI::App* du = add("du", "blocks, bytes, objects and cap of a cache directory");
  auto json = std::make_shared<bool>(false);
  auto size = std::make_shared<std::string>(CacheConfig{}.size);
  du->add_flag("--json", *json, "one JSON object");
  du->add_option("--cache-size", *size, "the mount's cache_size= (for the cap)");
  du->callback([=] { *rc = Du(*dir, *size, *json); });

  CLI::App* fsck = add("fsck", "check every block file and index entry (exit 1 on corruption)");
  auto repair = std::make_shared<bool>(false);
  fsck->add_flag("--repair", *repair, "delete bad blocks and stale entries");
  fsck->callback([=] { *rc = Fsck(*dir, *repair); });

  CLI::App* gc = add("gc", "evict least recently used blocks down to --size");
  auto target = std::make_shared<std::string>();
  gc->add_option("--size", *target, "target size (\"10G\")")->required();
  gc->callback([=] {
    auto bytes = ParseSize(*target);
    if (!bytes.ok()) {
      std::fprintf(stderr, "dsfsctl cache gc: %s\n", bytes.status().message().c_str());
      *rc = kUsage;
      return;
    }
    auto r = GcCache(*dir, *bytes);
    if (!r.ok()) {
      *rc = Fail(r.status());
      return;
    }
    std::printf("evicted %llu blocks (%llu bytes), %llu bytes remain\n",
                (unsigned long long)r->evicted_blocks, (unsigned long long)r->evicted_bytes,
                (unsigned long long)r->remaining_bytes);
    *rc = kOk;
  });

  CLI::App* clear = add("clear", "remove every block and the index (keeps an empty cache dir)");
  clear->callback([=] {
    Status st = ClearCache(*dir);
    *rc = st.ok() ? kOk : Fail(st);
    if (st.ok()) std::printf("cleared %s\n", dir->c_str());
  });
}

}  // namespace dsfs::ctl
