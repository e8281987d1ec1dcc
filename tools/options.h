// Command line of the dsfs daemon, in the form mount(8) uses:
//   dsfs BUCKET[:/PREFIX] MOUNTPOINT [-o opt[,opt...]]... [-f] [-d]
// Option names follow s3fs/obsfs where they exist, so an obsfs fstab line
// needs only its type changed. One table (kOptionTable in options.cc)
// drives parsing and the --help text.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace dsfs {

struct CommandLine {
  Config config;
  bool show_help = false;
  bool show_version = false;
  // Options accepted for compatibility that dsfs does not act on (logged).
  std::vector<std::string> ignored;
};

// Parses argv. Never throws; errors are InvalidArgument with a message fit
// for "dsfs: error: <message>".
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// Applies one "-o" item ("name" or "name=value") to config. Options meant
// for mount(8)/systemd are accepted and recorded in *ignored.
Status ApplyMountOption(const std::string& item, Config* config, std::vector<std::string>* ignored);

// Cross-field and range checks of a parsed Config.
Status ValidateConfig(const Config& config);

// "bucket" or "bucket:/prefix" into fs.bucket and fs.prefix ("" or "a/b/").
Status ParseSource(const std::string& source, FsConfig* fs);

// Usage text: synopsis and every option with its default.
std::string UsageText();

}  // namespace dsfs
