#!/usr/bin/env bash
# Builds dsfs and runs every test tier (unit, core, mount) with ctest.
#   scripts/test.sh               Release build (as packagers build: -O3-only
#                                 warnings fail too) in build/: every tier,
#                                 the .deb test included (cpack, apt-get
#                                 install, mount, logrotate, purge)
#   scripts/test.sh --sanitize    ASan+UBSan build (-O2) in build-asan/: every
#                                 tier but the .deb test
#   scripts/test.sh --unit-only   skip the mount and .deb tiers (no FUSE, no
#                                 s3rver, the system untouched)
# Installs the dsfs binary it just built to /usr/local/bin/dsfs, because
# `mount -t fuse.dsfs` (mount.fuse3) finds it on the default PATH only.
# Exits non-zero on any failure; the output ends with ctest's summary.
# DSFS_BUILD_DIR=DIR builds in DIR (DIR-asan with --sanitize) instead. The include rules (scripts/check_layers.sh) are
# checked before anything is built.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANITIZE=0
UNIT_ONLY=0
for a in "$@"; do
  case "$a" in
    --sanitize) SANITIZE=1 ;;
    --unit-only) UNIT_ONLY=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

bash "$REPO/scripts/check_layers.sh" --self-test
bash "$REPO/scripts/check_layers.sh" "$REPO"

bash "$REPO/scripts/setup.sh"

if [ "$SANITIZE" = 1 ]; then
  BUILD="${DSFS_BUILD_DIR:-$REPO/build}-asan"
  # -O2 keeps GCC 12's -Wrestrict (off at -O3, see CMakeLists.txt).
  CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DDSFS_SANITIZE=address,undefined")
  # Leaks are checked everywhere, the daemon included (its reports go to
  # files that the mount tests check: DSFS_SANITIZER_LOG_DIR). Any
  # sanitizer finding stops the process. Set ASAN_OPTIONS/UBSAN_OPTIONS
  # yourself to override.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export DSFS_SANITIZER_LOG_DIR="$BUILD/sanitizer-logs"
  rm -rf "$DSFS_SANITIZER_LOG_DIR"
  mkdir -p "$DSFS_SANITIZER_LOG_DIR"
  # ASan reads are several times slower: a smaller big-file test.
  export DSFS_TEST_BIG_MB="${DSFS_TEST_BIG_MB:-256}"
else
  BUILD="${DSFS_BUILD_DIR:-$REPO/build}"
  CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
fi

cmake -S "$REPO" -B "$BUILD" "${CMAKE_ARGS[@]}"
ninja -C "$BUILD" -j "$(nproc)"

if [ "$UNIT_ONLY" = 0 ]; then
  SUDO=()
  [ "$(id -u)" -ne 0 ] && SUDO=(sudo)
  "${SUDO[@]}" install -m 0755 "$BUILD/tools/dsfs" /usr/local/bin/dsfs
  echo "test.sh: installed $BUILD/tools/dsfs as /usr/local/bin/dsfs"
fi

cd "$BUILD"
CTEST_ARGS=(--output-on-failure --timeout 1200)
# The package test (label deb) installs and purges the .deb: once per CI
# run, from the Release build, as packagers build.
if [ "$UNIT_ONLY" = 1 ]; then
  CTEST_ARGS+=(-LE 'mount|deb')
elif [ "$SANITIZE" = 1 ]; then
  CTEST_ARGS+=(-LE deb)
fi
# Unit tests and the mount tests that only check answers run two at a time;
# the timing- and device-sensitive mount tests are RUN_SERIAL (tests/CMakeLists.txt).
rc=0
ctest "${CTEST_ARGS[@]}" -j "$(nproc)" || rc=$?
# Whatever a late-exiting daemon reported after its test's own check.
if [ "$SANITIZE" = 1 ] && [ "$UNIT_ONLY" = 0 ]; then
  for f in "$DSFS_SANITIZER_LOG_DIR"/*; do
    [ -s "$f" ] || continue
    echo "test.sh: sanitizer report $f:"
    tail -n 60 "$f"
    rc=1
  done
fi
if [ "$rc" != 0 ]; then
  # A long log is shown by its ends: repeat each failed test's failure
  # lines here, and say whether it fails again.
  echo "test.sh: the failed tests' failures once more:"
  awk '/^[0-9]+\/[0-9]+ Test: /{name=$3; buf=""; n=0}
       /(FAIL|ERROR): |Failure$|Error: |AssertionError|Expected|Which is|actual:|sanitizer report/{
         if (n++ < 30) buf = buf name ": " $0 "\n"}
       /^Test Fail/{printf "%s", buf}' Testing/Temporary/LastTest.log 2>/dev/null | head -n 120 || true
  echo "test.sh: running the failed tests again (diagnostic only: the run has failed):"
  ctest --rerun-failed --timeout 1200 2>&1 | tail -n 15 || true
fi
exit "$rc"
