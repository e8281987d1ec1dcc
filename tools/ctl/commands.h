// dsfsctl's subcommands. Each Add*Command registers one subcommand (and its
// options) on the CLI11 app; its callback stores the process's exit code in
// *rc. The exit codes are the ones below, documented in dsfsctl(8).
#pragma once

#include <CLI/CLI.hpp>

namespace dsfs::ctl {

// Exit codes of dsfsctl, one meaning each.
enum ExitCode : int {
  kOk = 0,
  kFailed = 1,        // the command ran and found a problem (or an I/O error)
  kUsage = 2,         // bad arguments
  kNotDsfs = 3,       // a path outside any dsfs mount / a dir that is no dsfs cache
  kDeadMount = 4,     // a dsfs mount whose daemon no longer answers
  kInUse = 5,         // the cache directory is in use by a running mount
};

void AddStatsCommand(CLI::App& app, int* rc);  // stats.cc
void AddCacheCommand(CLI::App& app, int* rc);  // cache.cc
void AddWarmCommand(CLI::App& app, int* rc);    // warm.cc
void AddVerifyCommand(CLI::App& app, int* rc);  // verify.cc

}  // namespace dsfs::ctl
