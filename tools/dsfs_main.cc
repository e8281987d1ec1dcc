// dsfs: mount an S3/OBS bucket. Also the target of `mount -t fuse.dsfs`.
#include <cstdio>

#include "dsfs_version.h"
#include "tools/daemon.h"
#include "tools/options.h"

int main(int argc, char** argv) {
  auto cl = dsfs::ParseCommandLine(argc, argv);
  if (!cl.ok()) {
    std::fprintf(stderr, "dsfs: error: %s\n", cl.status().message().c_str());
    return 1;
  }
  if (cl->show_help) {
    std::fputs(dsfs::UsageText().c_str(), stdout);
    return 0;
  }
  if (cl->show_version) {
    std::printf("dsfs %s\n", DSFS_VERSION);
    return 0;
  }
  return dsfs::RunDaemon(*cl);
}
