"""The cache directory through a real mount: block identity across block
sizes, a cache_dir in use, a full disk, a reconcile that cannot finish, a
deleted index, a FIFO at a block's path and symlinks planted in the cache.
Each test says what it measures; times are generous bounds a hang breaks.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import cache_util as cu
import harness
from harness import MiB

BLOCK = 4 * MiB


class CacheDirTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srcdir = os.path.join(cls.tmp, "src")
        os.makedirs(cls.srcdir)
        cls.objs = {}  # key -> (local path, size, sha256)
        # k x 4 MiB and each +-1 byte, k = 1..5: every block boundary of
        # 1, 4 and 8 MiB blocks, and a short last block of each kind.
        seed = 1
        for k in range(1, 6):
            for d in (-1, 0, 1):
                tag = {-1: "m", 0: "0", 1: "p"}[d]
                cls._put(f"sizes/k{k}{tag}.bin", k * BLOCK + d, seed)
                seed += 1
        cls._put("big.bin", 64 * MiB + 3, 99)
        cls._tmpfs = []
        cls.addClassCleanup(cls._cleanup_tmpfs)

    @classmethod
    def _put(cls, key, size, seed):
        path = os.path.join(cls.srcdir, key.replace("/", "_"))
        sha = harness.write_random_file(path, size, seed)
        cls.s3.put(cls.BUCKET, key, file=path)
        cls.objs[key] = (path, size, sha)

    @classmethod
    def _cleanup_tmpfs(cls):
        for m in list(cls._mounts):
            harness.unmount(m)
        for p in reversed(cls._tmpfs):
            cu.umount_tmpfs(p)

    def new_tmpfs(self, size):
        path = os.path.join(self.tmp, f"tmpfs-{len(self._tmpfs)}")
        cu.mount_tmpfs(path, size)
        self._tmpfs.append(path)
        return path

    def new_cache_dir(self):
        return os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp),
                            "c")

    def mount_cache(self, cache_dir, *extra):
        return self.mount_bucket(
            extra_opts=[f"cache_dir={cache_dir}", "prefetch_whole="] +
            list(extra))

    def assert_exact(self, mnt, key):
        path, size, sha = self.objs[key]
        p = os.path.join(mnt, key)
        self.assertEqual(os.stat(p).st_size, size, key)
        self.assertEqual(harness.sha256_file(p), sha, f"{key}: bytes differ")

    def unmount_timed(self, mnt):
        """Unmounts and returns how long the daemon took to exit."""
        pid = cu.daemon_pid(mnt)
        t0 = time.monotonic()
        harness.unmount(mnt, wait_daemon=False)
        if mnt in self._mounts:
            self._mounts.remove(mnt)
        while os.path.exists(f"/proc/{pid}") and not cu._is_zombie(pid):
            if time.monotonic() - t0 > 120:
                break
            time.sleep(0.05)
        return time.monotonic() - t0

    def fill_cache(self, keys, *extra):
        """A new cache dir holding every block of keys (4 MiB blocks)."""
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", *extra)
        for k in keys:
            self.assert_exact(mnt, k)
        want = sum(-(-self.objs[k][1] // BLOCK) for k in keys)
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= want, 60,
                           0.1, f"{want} block files in {cdir}")
        self.unmount_now(mnt)
        return cdir

    # ------------------------------------------------------------ 1

    def test_01_block_size_change_never_serves_wrong_bytes(self):
        """One cache_dir mounted with block_size 1M, 4M, 8M, 4M: the 15
        objects read exact every time (sha256), from the cache where a
        block fits."""
        cdir = self.new_cache_dir()
        keys = sorted(k for k in self.objs if k.startswith("sizes/"))
        dropped_4m = 0  # blocks the first 4M mount did not write (queue full)
        for i, bs in enumerate(("1M", "4M", "8M", "4M")):
            mnt, _ = self.mount_cache(cdir, "cache_size=2G",
                                      f"block_size={bs}")
            for k in keys:
                self.assert_exact(mnt, k)
            s = cu.stats(mnt)
            print(f"block_size={bs}: disk hits "
                  f"{s['dsfs_cache_disk_hits_total']:.0f}, corrupt "
                  f"{s['dsfs_cache_corrupt_blocks_total']:.0f}, GET "
                  f"{s['dsfs_s3_bytes_read_total'] / MiB:.0f} MiB, write "
                  f"dropped {s.get('dsfs_cache_write_dropped_total', 0):.0f}")
            self.assertEqual(s["dsfs_cache_corrupt_blocks_total"], 0)
            if i == 1:
                # A block the reader waited for is dropped, not queued,
                # when the cache write queue is full (a slow cache disk
                # never slows a read): on a busy machine some are.
                dropped_4m = s.get("dsfs_cache_write_dropped_total", 0)
            if i == 3:
                # The second 4M mount: every block is its own again; only
                # the blocks the first 4M mount dropped come from S3.
                self.assertGreater(s["dsfs_cache_disk_hits_total"], 0)
                self.assertLess(s["dsfs_s3_bytes_read_total"],
                                BLOCK + dropped_4m * BLOCK,
                                f"{dropped_4m:.0f} blocks were dropped")
            self.unmount_now(mnt)

    # ------------------------------------------------------------ 2

    def test_02_second_mount_on_a_cache_dir_in_use_refuses(self):
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G")
        pid = cu.daemon_pid(mnt)
        other = self.new_mountpoint("second")
        res = harness.mount(self.BUCKET, other, self.base_opts() + [
            f"cache_dir={cdir}", "cache_size=1G"], check=False, timeout=60)
        if harness.is_mounted(other):
            self._mounts.append(other)
        self.assertEqual(res.returncode, 1, res)
        self.assertFalse(harness.is_mounted(other))
        self.assertIn(f"dsfs: error: cache_dir {cdir} is in use by another "
                      f"dsfs (pid {pid})", res.stderr)
        # The refused daemon exits (its parent reported the error first).
        harness.wait_until(lambda: not harness.find_daemon_pids(other), 10,
                           0.05, "the refused daemon to exit")
        # The first mount is untouched.
        self.assert_exact(mnt, "sizes/k10.bin")

    # ------------------------------------------------------------ 3

    def test_03_full_disk_at_mount_mounts_with_the_disk_tier_off(self):
        tfs = self.new_tmpfs("16m")
        cdir = os.path.join(tfs, "c")
        with open(os.path.join(tfs, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * MiB)
                    f.flush()
            except OSError:
                pass
        try:
            with open(os.path.join(tfs, "filler"), "ab") as f:
                while True:
                    f.write(b"\0")
                    f.flush()
        except OSError:
            pass
        self.assertLess(shutil.disk_usage(tfs).free, BLOCK)
        mnt, log = self.mount_cache(cdir, "cache_size=64M")
        self.assert_exact(mnt, "sizes/k20.bin")
        s = cu.stats(mnt)
        self.assertEqual(s["dsfs_cache_disk_off_total"], 1)
        with open(log, errors="replace") as f:
            lines = [l for l in f if "disk cache" in l and " is off" in l]
        print(f"full disk: {lines}")
        self.assertEqual(len(lines), 1, lines)

    # ------------------------------------------------------------ 4

    def test_04_failed_reconcile_turns_the_tier_off_reads_stay_fast(self):
        """A garbage index (rebuilt from the files) and tmp/ replaced by a
        file: the rebuild's reconcile fails. The 64 MiB read stays fast and
        the daemon exits promptly after unmount."""
        cdir = self.fill_cache(["sizes/k10.bin"])
        idx = os.path.join(cdir, "index")
        for n in os.listdir(idx):
            p = os.path.join(idx, n)
            if os.path.isfile(p) and n != "LOCK":
                with open(p, "wb") as f:
                    f.write(b"\xde\xad garbage " * 300)
        shutil.rmtree(os.path.join(cdir, "tmp"))
        with open(os.path.join(cdir, "tmp"), "w") as f:
            f.write("not a directory")
        mnt, log = self.mount_cache(cdir, "cache_size=1G")
        harness.wait_until(
            lambda: cu.stats(mnt).get("dsfs_cache_disk_off_total", 0) == 1,
            20, 0.1, "the disk tier to turn off")
        t0 = time.monotonic()
        self.assert_exact(mnt, "big.bin")
        read_s = time.monotonic() - t0
        exit_s = self.unmount_timed(mnt)
        print(f"failed reconcile: 64 MiB read {read_s:.2f}s, daemon exit "
              f"{exit_s:.2f}s after unmount")
        self.assertLess(read_s, 30)
        self.assertLess(exit_s, 20)

    # ------------------------------------------------------------ 5

    def test_05_deleted_index_with_clean_marker_keeps_the_cap(self):
        cdir = self.fill_cache(["big.bin", "sizes/k50.bin"])
        before = cu.blocks_usage(cdir)[0]
        self.assertTrue(os.path.exists(os.path.join(cdir, "CLEAN")))
        shutil.rmtree(os.path.join(cdir, "index"))
        mnt, _ = self.mount_cache(cdir, "cache_size=32M")
        harness.wait_until(lambda: cu.blocks_usage(cdir)[0] <= 32 * MiB, 30,
                           0.2, "blocks/ to shrink to cache_size=32M")
        self.assert_exact(mnt, "sizes/k10.bin")
        after = cu.blocks_usage(cdir)[0]
        print(f"deleted index: blocks/ {before / MiB:.0f} MiB -> "
              f"{after / MiB:.1f} MiB with cache_size=32M")
        self.assertLessEqual(after, 32 * MiB + BLOCK)

    # ------------------------------------------------------------ 6

    def test_06_fifo_at_a_block_path_never_blocks(self):
        cdir = self.fill_cache(["sizes/k20.bin"])
        files = sorted(cu.block_files(cdir))
        victim = files[0]
        os.unlink(victim)
        os.mkfifo(victim, 0o600)
        mnt, _ = self.mount_cache(cdir, "cache_size=1G")
        done = {}

        def read():
            try:
                self.assert_exact(mnt, "sizes/k20.bin")
                done["ok"] = True
            except Exception as e:  # reported below
                done["error"] = e
        t0 = time.monotonic()
        th = threading.Thread(target=read, daemon=True)
        th.start()
        th.join(30)
        read_s = time.monotonic() - t0
        self.assertTrue(done.get("ok"), f"read did not finish: {done}")
        exit_s = self.unmount_timed(mnt)
        print(f"fifo: read {read_s:.2f}s, daemon exit {exit_s:.2f}s")
        self.assertLess(exit_s, 20)
        self.assertFalse(os.path.exists(victim) and
                         not os.path.isfile(victim), "the FIFO is still there")

    # ------------------------------------------------------------ 7

    def test_07_symlinks_planted_in_the_cache_are_never_followed(self):
        cdir = self.fill_cache(["sizes/k10.bin"])
        out = tempfile.mkdtemp(prefix="outside-", dir=self.tmp)
        os.makedirs(os.path.join(out, "dir"))
        with open(os.path.join(out, "file"), "w") as f:
            f.write("precious")
        with open(os.path.join(out, "dir", "inner"), "w") as f:
            f.write("precious too")
        # A valid block file, moved out and linked back in.
        victim = sorted(cu.block_files(cdir))[0]
        shutil.move(victim, os.path.join(out, "block"))
        os.symlink(os.path.join(out, "block"), victim)
        os.symlink(os.path.join(out, "file"), os.path.join(cdir, "tmp", "x.tmp"))
        os.symlink(os.path.join(out, "dir"), os.path.join(cdir, "tmp", "d"))
        os.symlink(os.path.join(out, "dir"), os.path.join(cdir, "blocks", "zz"))
        os.unlink(os.path.join(cdir, "CLEAN"))
        mnt, _ = self.mount_cache(cdir, "cache_size=1G")
        cu.wait_settled(mnt, ["dsfs_cache_files_scanned_total",
                              "dsfs_cache_temp_files_removed_total"])
        self.assert_exact(mnt, "sizes/k10.bin")
        for p in (victim, os.path.join(cdir, "tmp", "x.tmp"),
                  os.path.join(cdir, "tmp", "d"),
                  os.path.join(cdir, "blocks", "zz")):
            self.assertFalse(os.path.islink(p), f"{p} is still a symlink")
        with open(os.path.join(out, "file")) as f:
            self.assertEqual(f.read(), "precious")
        with open(os.path.join(out, "dir", "inner")) as f:
            self.assertEqual(f.read(), "precious too")
        self.assertTrue(os.path.isfile(os.path.join(out, "block")))


if __name__ == "__main__":
    unittest.main()
