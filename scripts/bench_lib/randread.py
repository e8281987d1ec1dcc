#!/usr/bin/env python3
"""Random 4 KiB reads with os.pread: fixed count, seeded offsets.

Usage: randread.py FILE [--count N] [--seed S] [--block 4096] [--max-seconds 60]
Prints one line: "iops=<n> p50_ms=<x> p99_ms=<y> count=<n>"; count is less
than N when --max-seconds ran out first (a very slow filesystem).
Read-ahead is turned off on the file (POSIX_FADV_RANDOM) so each read is
one request to the filesystem unless the page is already cached.
Exit status 1 if a read fails or comes back short.
"""
import argparse
import os
import random
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block", type=int, default=4096)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    a = ap.parse_args()
    fd = os.open(a.file, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        blocks = size // a.block
        if blocks == 0:
            print("randread: file smaller than one block", file=sys.stderr)
            return 1
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        except OSError:
            pass
        rng = random.Random(a.seed)
        offsets = [rng.randrange(blocks) * a.block for _ in range(a.count)]
        lat = []
        clock = time.perf_counter
        start = clock()
        deadline = start + a.max_seconds
        for off in offsets:
            t0 = clock()
            data = os.pread(fd, a.block, off)
            lat.append(clock() - t0)
            if len(data) != a.block:
                print("randread: short read at %d" % off, file=sys.stderr)
                return 1
            if t0 > deadline:
                break
        total = clock() - start
    except OSError as e:
        print("randread: %s" % e, file=sys.stderr)
        return 1
    finally:
        os.close(fd)
    lat.sort()
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print("iops=%.0f p50_ms=%.3f p99_ms=%.3f count=%d" % (len(lat) / total, p50, p99, len(lat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
