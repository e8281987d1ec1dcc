"""A cache disk slower than the network (an EVS disk at 350 MiB/s against
OBS at 2 GB/s) never caps a load: cache writes that cannot keep up are
deferred (dsfs_cache_write_deferred_total) and written by the backfill once
the node is idle (dsfs_cache_backfill_blocks_total), so the file still ends
up whole on the disk; a warm read from a slow disk takes part of its blocks
from OBS at the same time (warm_split=, dsfs_cache_diverted_blocks_total).

The cache disk is an ext4 filesystem on a loop device whose I/O the cgroup
v1 blkio controller throttles (blkio.throttle.*_bps_device); the daemon is
moved into that cgroup. dsfs writes blocks with O_DIRECT and reads them on
its own threads, so the throttle applies to it (a buffered write flushed by
the kernel would escape it). Timing is printed, never asserted: what is
asserted is where the bytes came from and that they are exact.
"""

import os
import subprocess
import time
import unittest

import cache_util as cu
import fallback_util as fu
import harness
from harness import MiB

BLOCK = 4 * MiB
BLKIO = "/sys/fs/cgroup/blkio"


def loop_device_of(path):
    src = subprocess.run(["findmnt", "-no", "SOURCE", path], check=True,
                         capture_output=True, text=True).stdout.strip()
    if not src.startswith("/dev/loop"):
        raise harness.HarnessError(f"{path} is not on a loop device: {src!r}")
    return src


def maj_min(dev):
    st = os.stat(dev)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"



def cache_stats(st):
    """The cache counters of a stats snapshot, for failure messages."""
    return ", ".join(f"{k[len('dsfs_'):]}={v:g}" for k, v in sorted(st.items())
                     if k.startswith("dsfs_cache_") and isinstance(v, (int, float)))

class Throttle:
    """A blkio cgroup limiting one device's reads and writes (bytes/s)."""

    def __init__(self, name, dev):
        self.path = os.path.join(BLKIO, name)
        self.dev = maj_min(dev)
        os.makedirs(self.path, exist_ok=True)

    def set(self, read_bps=0, write_bps=0):
        # 0 removes the limit.
        for f, v in (("blkio.throttle.read_bps_device", read_bps),
                     ("blkio.throttle.write_bps_device", write_bps)):
            with open(os.path.join(self.path, f), "w") as fh:
                fh.write(f"{self.dev} {v}")

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as fh:
            fh.write(str(pid))

    def remove(self):
        # Members go back to the root group first.
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as fh:
                pids = [p for p in fh.read().split() if p]
            for p in pids:
                try:
                    with open(os.path.join(BLKIO, "cgroup.procs"), "w") as fh:
                        fh.write(p)
                except OSError:
                    pass
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


@unittest.skipUnless(os.path.isdir(BLKIO), "no cgroup v1 blkio controller")
class SlowDiskTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.objs = {}
        # shard.bin is larger than the cache write queue (16 blocks), so
        # some of its blocks find it full; warm.bin long enough for the
        # warm read to settle between the disk and OBS.
        for key, size, seed in (("shard.bin", 96 * MiB + 5, 31),
                                ("warm.bin", 64 * MiB + 7, 32)):
            path = os.path.join(cls.tmp, key)
            sha = harness.write_random_file(path, size, seed)
            cls.s3.put(cls.BUCKET, key, file=path)
            cls.objs[key] = (size, sha)
        cls.proxy = fu.FaultProxy(cls.server.port,
                                  os.path.join(cls.tmp, "proxy.log"))
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)
        # The slow disk: 384 MiB ext4 on a loop device (the metadata db wants 64 MiB free).
        cls.disk = os.path.join(cls.tmp, "evs")
        cu.mount_loop_ext4(cls.disk, 384, os.path.join(cls.tmp, "evs.img"))
        cls.addClassCleanup(cu.umount_tmpfs, cls.disk)
        cls.throttle = Throttle(f"dsfs-test-{os.getpid()}",
                                loop_device_of(cls.disk))
        cls.addClassCleanup(cls.throttle.remove)

    def setUp(self):
        self.proxy.configure(refuse=False)
        self.proxy.reset()
        self.throttle.set(0, 0)

    def new_cache_dir(self):
        d = os.path.join(self.disk, f"c-{self._testMethodName}")
        os.makedirs(d)
        return d

    def mount_slow(self, cache_dir, *opts):
        mnt, log = self.mount_bucket(
            server=self.proxy,
            extra_opts=[f"cache_dir={cache_dir}", "cache_size=200M",
                        "prefetch_whole=", "fallback_probe_interval=1s",
                        *opts])
        self.addCleanup(self.unmount_now, mnt)
        self.throttle.add(cu.daemon_pid(mnt))
        return mnt, log

    def read_exact(self, mnt, key):
        size, sha = self.objs[key]
        t0 = time.monotonic()
        self.assertEqual(harness.sha256_file(os.path.join(mnt, key)), sha,
                         f"{key}: bytes differ")
        return size / (time.monotonic() - t0) / 1e6

    def test_01_cold_load_is_not_held_to_the_disk_then_backfilled(self):
        """Cache disk writes throttled to 8 MiB/s: the cold read is exact,
        blocks that found the write queue full are deferred, not waited for;
        once the read is over the backfill writes them, so after a remount
        with OBS down the whole file is read from the disk."""
        key = "shard.bin"
        size = self.objs[key][0]
        nblocks = -(-size // BLOCK)
        cdir = self.new_cache_dir()
        self.throttle.set(write_bps=8 * MiB)
        mnt, _ = self.mount_slow(cdir)
        rate = self.read_exact(mnt, key)
        st = cu.stats(mnt)
        deferred = st.get("dsfs_cache_write_deferred_total", 0)
        print(f"\ncold read at {rate:.1f} MB/s with the disk writing "
              f"{8 * MiB / 1e6:.1f} MB/s; {deferred:.0f} of {nblocks} blocks "
              f"deferred", flush=True)
        self.assertGreater(deferred, 0,
                           "no block was deferred: the read waited for the "
                           f"disk (read at {rate:.1f} MB/s; {cache_stats(st)})")
        self.assertEqual(st.get("dsfs_cache_write_dropped_total", 0), 0,
                         cache_stats(st))
        # The backfill fetches the deferred blocks again and writes them.
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= nblocks, 90,
                           0.2, f"{nblocks} block files in {cdir}")
        harness.wait_until(
            lambda: cu.stats(mnt).get("dsfs_cache_backfill_blocks_total", 0)
            >= deferred, 10, 0.2, "the backfill to take every deferred block")
        gets = self.proxy.stats()["requests"]["get"]
        print(f"backfill done: {gets} GETs in all", flush=True)
        self.unmount_now(mnt)
        # OBS down: everything from the disk (offline mode).
        self.assertTrue(cu.drop_page_cache(), "could not drop page cache")
        self.throttle.set(0, 0)
        self.proxy.configure(refuse=True)
        mnt, _ = self.mount_slow(cdir)
        self.read_exact(mnt, key)
        st = cu.stats(mnt)
        self.assertGreaterEqual(st.get("dsfs_cache_disk_hits_total", 0),
                                nblocks, cache_stats(st))

    def fill(self, key):
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_slow(cdir)
        self.read_exact(mnt, key)
        nblocks = -(-self.objs[key][0] // BLOCK)
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= nblocks, 60,
                           0.1, f"{nblocks} block files in {cdir}")
        self.unmount_now(mnt)
        return cdir, nblocks

    def test_02_warm_read_from_a_slow_disk_takes_blocks_from_obs_too(self):
        """Cache disk reads throttled to 8 MiB/s: a warm read after a remount
        is exact and takes some blocks from the disk and some from OBS
        (warm_split=on, the default); with warm_split=off every block comes
        from the disk."""
        key = "warm.bin"
        cdir, nblocks = self.fill(key)
        for split in ("on", "off"):
            with self.subTest(warm_split=split):
                self.assertTrue(cu.drop_page_cache())
                self.proxy.reset()
                self.throttle.set(read_bps=8 * MiB)
                mnt, _ = self.mount_slow(cdir, f"warm_split={split}")
                rate = self.read_exact(mnt, key)
                st = cu.stats(mnt)
                diverted = st.get("dsfs_cache_diverted_blocks_total", 0)
                hits = st.get("dsfs_cache_disk_hits_total", 0)
                gets = self.proxy.stats()["requests"]["get"]
                print(f"\nwarm_split={split}: {rate:.1f} MB/s, disk at "
                      f"{8 * MiB / 1e6:.1f} MB/s; {hits:.0f} blocks from the "
                      f"disk, {diverted:.0f} from OBS ({gets} GETs)", flush=True)
                why = f"{rate:.1f} MB/s, {gets} GETs; {cache_stats(st)}"
                if split == "on":
                    self.assertGreater(diverted, 0, f"no block came from OBS: {why}")
                    self.assertGreater(hits, 0, f"no block came from the disk: {why}")
                    self.assertGreaterEqual(gets, diverted, why)
                else:
                    self.assertEqual(diverted, 0, why)
                    self.assertEqual(gets, 0, why)
                    self.assertGreaterEqual(hits, nblocks, why)
                self.unmount_now(mnt)
                self.throttle.set(0, 0)
        # Diverted blocks were not written again: the cache holds one file
        # per block.
        self.assertEqual(len(cu.block_files(cdir)), nblocks)


if __name__ == "__main__":
    unittest.main()
