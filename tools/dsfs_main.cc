#include <cstdio>

#include "dsfs_version.h"

int main() {
  std::printf("dsfs %s\n", DSFS_VERSION);
  return 0;
}
