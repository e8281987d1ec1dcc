// dsfsctl: operator commands for dsfs mounts and cache directories. Each
// subcommand lives in its own file (tools/ctl/commands.h).
#include <CLI/CLI.hpp>

#include "tools/ctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dsfsctl: operate dsfs mounts and their cache directories"};
  app.require_subcommand(1);
  int rc = dsfs::ctl::kOk;
  dsfs::ctl::AddStatsCommand(app, &rc);
  dsfs::ctl::AddCacheCommand(app, &rc);
  dsfs::ctl::AddWarmCommand(app, &rc);
  dsfs::ctl::AddVerifyCommand(app, &rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? dsfs::ctl::kOk : dsfs::ctl::kUsage;
  }
  return rc;
}
