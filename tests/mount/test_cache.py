"""Read-ahead and the persistent block cache (cache_dir=) through a real
mount: where the bytes come from (the mount's counters and s3proxy.py's
request counts), that they are always exact, and what happens to the cache
across remounts, crashes, corruption, a full disk and upstream changes.

Sizes (MiB) can be lowered on a slow machine:
  DSFS_TEST_CACHE_BIG_MB     object killed mid-fill and used for the cap (256)
  DSFS_TEST_CACHE_MID_MB     object for remount/corruption/random reads (64)
  DSFS_TEST_CACHE_READER_MB  each of the 16 concurrent objects (32)
(test_05 needs BIG + MID > 200 MiB: the cap test reads both.)
"""

import errno
import hashlib
import mmap
import os
import random
import re
import stat
import tempfile
import threading
import time
import unittest

import cache_util as cu
import harness
from harness import MiB

BLOCK = 4 * MiB
READERS = 16


class CacheTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srcdir = os.path.join(cls.tmp, "src")
        os.makedirs(cls.srcdir)
        t0 = time.monotonic()
        big = cu.env_mb("DSFS_TEST_CACHE_BIG_MB", 256) * MiB + 4321
        mid = cu.env_mb("DSFS_TEST_CACHE_MID_MB", 64) * MiB + 777
        rdr = cu.env_mb("DSFS_TEST_CACHE_READER_MB", 32) * MiB + 99
        cls.objs = {}  # key -> (local path, size, sha256)
        cls._put("big.bin", big, 11)
        cls._put("mid.bin", mid, 12)
        cls._put("model.safetensors", 32 * MiB + 5, 13)
        cls._put("other.bin", 32 * MiB + 5, 14)
        for i in range(READERS):
            cls._put(f"readers/r{i:02d}.bin", rdr, 100 + i)
        print(f"setup: {sum(o[1] for o in cls.objs.values()) >> 20} MiB "
              f"uploaded in {time.monotonic() - t0:.1f}s")
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
        # Mounts using a tmpfs as cache_dir go first (class cleanups run in
        # reverse order of registration, so unmount them here explicitly).
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
        return os.path.join(tempfile.mkdtemp(prefix="cache-",
                                                     dir=self.tmp), "c")

    def mount_cache(self, cache_dir, *extra, server=None):
        opts = [f"cache_dir={cache_dir}"] if cache_dir else []
        return self.mount_bucket(extra_opts=opts + list(extra), server=server)

    def assert_file_exact(self, mnt, key):
        path, size, sha = self.objs[key]
        p = os.path.join(mnt, key)
        self.assertEqual(os.stat(p).st_size, size, key)
        self.assertEqual(harness.sha256_file(p), sha, f"{key}: bytes differ")

    def wait_blocks_on_disk(self, cdir, size):
        """Cache writes are asynchronous: waits (bounded) until every block
        of an object of `size` bytes has its file in cdir. Returns the
        number of blocks."""
        nblocks = -(-size // BLOCK)
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= nblocks, 60,
                           0.1, f"{nblocks} block files in {cdir}")
        return nblocks

    def fill_cache(self, key, *extra):
        """A new cache dir holding every block of key: mounted, key read
        once (exact), all blocks on disk, unmounted."""
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", *extra)
        self.assert_file_exact(mnt, key)
        self.wait_blocks_on_disk(cdir, self.objs[key][1])
        self.unmount_now(mnt)
        return cdir

    # ------------------------------------------------------------ 1

    def test_01_remount_reads_from_disk_cache(self):
        """Cold read is exact; after remount + drop_caches the same read is
        exact and makes (almost) no GETs: the bytes come from cache_dir."""
        key = "mid.bin"
        size = self.objs[key][1]
        proxy = cu.Proxy(self.server.port, self.tmp)
        self.addCleanup(proxy.stop)
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", server=proxy)
        self.assert_file_exact(mnt, key)
        cold = cu.stats(mnt)
        self.assertGreaterEqual(cold["dsfs_s3_bytes_read_total"], size)
        nblocks = self.wait_blocks_on_disk(cdir, size)
        self.unmount_now(mnt)
        self.assertTrue(cu.drop_page_cache(), "could not drop page cache")
        proxy.reset()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", server=proxy)
        self.assert_file_exact(mnt, key)
        warm = cu.stats(mnt)
        gets = proxy.stats()["requests"]["get"]
        print(f"remount: {warm['dsfs_s3_bytes_read_total']:.0f} GET bytes "
              f"for {size} bytes, disk hits "
              f"{warm['dsfs_cache_disk_hits_total']:.0f}, proxy GETs {gets}")
        self.assertLess(warm["dsfs_s3_bytes_read_total"], BLOCK,
                        "remounted read went to S3 instead of the cache")
        self.assertGreaterEqual(warm["dsfs_cache_disk_hits_total"], nblocks)
        self.assertLessEqual(gets, 1, "proxy saw object GETs after remount")

    def test_01b_cold_sequential_read_fetches_each_block_once(self):
        """A cold sequential read (no cache_dir) GETs each block once: the
        read-ahead never drops a block it fetched and then fetches it
        again for the same reader (counted by the proxy, not by dsfs)."""
        key = "big.bin"
        size = self.objs[key][1]
        nblocks = -(-size // BLOCK)
        proxy = cu.Proxy(self.server.port, self.tmp)
        self.addCleanup(proxy.stop)
        mnt, _ = self.mount_cache(None, server=proxy)
        proxy.reset()
        self.assert_file_exact(mnt, key)
        cu.wait_settled(mnt, ["dsfs_s3_requests_total"])
        gets = proxy.stats()["requests"]["get"]
        c = cu.stats(mnt)
        print(f"cold sequential read of {nblocks} blocks: {gets} GETs, "
              f"{c['dsfs_s3_bytes_read_total'] / MiB:.0f} MiB for "
              f"{size / MiB:.0f} MiB, collapsed "
              f"{c['dsfs_fetch_collapsed_total']:.0f}")
        if os.environ.get("DSFS_SANITIZER_LOG_DIR"):
            # Under ASan every FUSE thread runs several times slower and the
            # kernel's read-ahead requests arrive further out of order than
            # seq_tolerance, so a few blocks may be fetched twice (seen: 2 of
            # 65). Exactly-once is timing, checked in the normal build; here
            # the bytes are checked and refetching stays bounded.
            self.assertLessEqual(gets, nblocks + nblocks // 10,
                                 f"{gets - nblocks} blocks fetched twice")
        else:
            # A kernel read-ahead request that arrives more than
            # seq_tolerance out of order finds its block dropped (seen: 1 of
            # 65 on a loaded machine, in 1 run of 4). More than 2 refetched
            # blocks is the systematic double fetch this test exists for.
            self.assertLessEqual(gets, nblocks + 2,
                                 f"{gets - nblocks} blocks fetched twice")

    # ------------------------------------------------------------ 2

    def test_02_kill9_during_fill_then_reuse(self):
        """SIGKILL mid-fill: after remount every byte is exact, the blocks
        written before the crash are reused, temp files are cleaned up."""
        key = "big.bin"
        path, size, sha = self.objs[key]
        cdir = self.new_cache_dir()
        mnt, log = self.mount_cache(cdir, "cache_size=2G")
        pid = cu.daemon_pid(mnt)
        half = size // 2
        # A reader goes on reading while the daemon is killed, so blocks
        # are being fetched and written to the cache at that moment.
        done = [0]
        h = hashlib.sha256()

        def reader():
            try:
                fd = os.open(os.path.join(mnt, key), os.O_RDONLY)
            except OSError:
                return
            try:
                while True:
                    b = os.read(fd, MiB)
                    if not b:
                        break
                    if done[0] < half:
                        h.update(b[:half - done[0]])
                    done[0] += len(b)
            except OSError:
                pass  # the daemon was killed under us
            try:
                os.close(fd)
            except OSError:
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        harness.wait_until(lambda: done[0] >= half or not t.is_alive(), 120,
                           0.01, "the reader to pass half the file")
        cu.kill_and_detach(mnt, pid)
        self._mounts.remove(mnt)
        t.join(60)
        self.assertFalse(t.is_alive(), "reader hung after the kill")
        self.assertGreaterEqual(done[0], half)
        self.assertEqual(h.hexdigest(), cu.sha256_range(path, 0, half)[0])
        old_tmp = set(cu.tmp_files(cdir))
        survivors = set(cu.block_files(cdir))
        before = len(survivors)
        tmp_left = len(old_tmp)
        mnt2, log2 = self.mount_cache(cdir, "cache_size=2G")
        self.assert_file_exact(mnt2, key)
        s = cu.stats(mnt2)
        print(f"kill -9: {before} block files and {tmp_left} temp files "
              f"survived; after remount "
              f"{s['dsfs_s3_bytes_read_total'] / MiB:.1f} MiB GET for "
              f"{size / MiB:.1f} MiB, disk hits "
              f"{s['dsfs_cache_disk_hits_total']:.0f}, corrupt "
              f"{s['dsfs_cache_corrupt_blocks_total']:.0f}, temp removed "
              f"{s['dsfs_cache_temp_files_removed_total']:.0f}")
        print("  " + ", ".join(f"{k[5:]}={v:.0f}" for k, v in s.items()
                               if k.startswith("dsfs_cache_")))
        after = set(cu.block_files(cdir))
        print(f"  of the {len(survivors)} surviving block files, "
              f"{len(survivors - after)} are gone after the remount read")
        self.assertGreater(s["dsfs_cache_disk_hits_total"], 0)
        self.assertLess(s["dsfs_s3_bytes_read_total"], size,
                        "nothing of the cache filled before the kill was used")
        # Every block file that survived the crash is valid (renamed in only
        # when complete) and is served from the disk at least once.
        self.assertGreaterEqual(s["dsfs_cache_disk_hits_total"], before)
        # Reconcile after the unclean shutdown removes leftover temp files
        # (the remounted daemon's own in-flight ones come and go).
        harness.wait_until(lambda: not (old_tmp & set(cu.tmp_files(cdir))),
                           60, 0.2, f"the crashed daemon's temp files in "
                           f"{cdir}/tmp to be removed")
        self.assertGreaterEqual(
            cu.counter(mnt2, "dsfs_cache_temp_files_removed_total"),
            len(old_tmp))
        harness.wait_until(lambda: not cu.tmp_files(cdir), 60, 0.2,
                           f"tmp/ of {cdir} to be empty")

    # ------------------------------------------------------------ 3

    def test_03_corrupt_block_file_is_refetched(self):
        """A flipped byte in a block file's data: still exact bytes, the
        block counted as corrupt and logged, never served."""
        key = "other.bin"
        cdir = self.fill_cache(key, "prefetch_whole=")
        files = cu.block_files(cdir)
        victims = sorted(files, key=os.path.getsize)[-3:]
        for v in victims:
            cu.flip_byte(v, os.path.getsize(v) - 100)
        mnt, log = self.mount_cache(cdir, "cache_size=1G", "prefetch_whole=")
        self.assert_file_exact(mnt, key)
        s = cu.stats(mnt)
        print(f"corrupt: {s['dsfs_cache_corrupt_blocks_total']:.0f} dropped, "
              f"{s['dsfs_s3_bytes_read_total'] / MiB:.1f} MiB refetched")
        self.assertGreaterEqual(s["dsfs_cache_corrupt_blocks_total"],
                                len(victims))
        self.assertGreaterEqual(s["dsfs_s3_bytes_read_total"],
                                len(victims) * BLOCK)
        with open(log, errors="replace") as f:
            text = f.read()
        self.assertRegex(text, r"(?i)warn.*corrupt")
        # The refetched blocks replaced the bad files: a third mount reads
        # everything from the disk again.
        self.wait_blocks_on_disk(cdir, self.objs[key][1])

    # ------------------------------------------------------------ 4

    def _old_handle_read(self, fd, old, new):
        """Reads a whole handle opened on `old`: returns (bytes, error,
        what) where what names where the bytes came from."""
        got = bytearray()
        err = None
        try:
            while len(got) < max(len(old), len(new)):
                b = os.pread(fd, MiB, len(got))
                if not b:
                    break
                got += b
        except OSError as e:
            err = e
        got = bytes(got)
        if got == old[:len(got)]:
            what = "old bytes"
        elif got[:len(old)] == old:
            extra = got[len(old):]
            what = (f"the old object followed by {len(extra)} bytes "
                    f"({'all zero' if not extra.strip(bytes(1)) else 'data'})"
                    " past its end")
        elif got == new[:len(got)]:
            what = "NEW bytes"
        else:
            what = "a MIX of old and new bytes"
        return got, err, what

    def _check_old_handle(self, key, when, fd, old, new):
        got, err, what = self._old_handle_read(fd, old, new)
        print(f"replace {key}, old handle {when}: {len(got)} bytes of "
              f"{what}, then "
              f"{'errno ' + errno.errorcode[err.errno] if err else 'EOF'}")
        self.assertEqual(what, "old bytes",
                         f"old handle {when}: {len(got)} bytes of {what} "
                         f"(err={err})")
        if err is not None:
            self.assertIn(err.errno, (errno.ESTALE, errno.EIO), err)
        else:
            self.assertEqual(len(got), len(old))

    def _replace_case(self, key, old, new):
        self.s3.put(self.BUCKET, key, old)
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", "stat_ttl=1s",
                                  "list_ttl=1s")
        p = os.path.join(mnt, key)
        with open(p, "rb") as f:
            self.assertTrue(f.read() == old)
        nblocks = -(-len(old) // BLOCK)
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= nblocks, 60,
                           0.1, "old blocks on disk")
        fd = os.open(p, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertTrue(os.pread(fd, 4096, 0) == old[:4096])
        self.s3.put(self.BUCKET, key, new)
        # (a) The handle opened before the change, before anyone reopens.
        self._check_old_handle(key, "before any reopen", fd, old, new)

        def sees_new():
            with open(p, "rb") as f:
                data = f.read()
            # Never a mix: the whole old object or the whole new one.
            self.assertTrue(data == old or data == new,
                            f"{key}: read {len(data)} bytes that are "
                            "neither the old nor the new object")
            return data == new

        harness.wait_until(sees_new, 30, 0.3, f"{key} to read as new")
        self.assertEqual(os.stat(p).st_size, len(new))
        # (b) The same handle after a new open has read the new object
        # (the kernel may now hold the new object's pages for this inode).
        with self.subTest(case="old handle after reopen"):
            self._check_old_handle(key, "after a reopen read the new object",
                                   fd, old, new)
        # (c) The same again with the page cache dropped: only dsfs answers.
        self.assertTrue(cu.drop_page_cache())
        with self.subTest(case="old handle after reopen, page cache dropped"):
            self._check_old_handle(key, "after a reopen and drop_caches",
                                   fd, old, new)

    def test_04a_replaced_object_same_size(self):
        size = 3 * BLOCK + 1000
        self._replace_case("replace-same.bin", harness.rand_bytes(41, size),
                           harness.rand_bytes(42, size))

    def test_04b_replaced_object_other_size(self):
        self._replace_case("replace-grow.bin",
                           harness.rand_bytes(43, 2 * BLOCK + 10),
                           harness.rand_bytes(44, 3 * BLOCK + 777))

    # ------------------------------------------------------------ 5

    def test_05_size_cap_holds(self):
        """cache_size=64M while reading far more: blocks/ never exceeds the
        cap (+ one block for the writer + header slack), sampled during."""
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=64M", "prefetch_whole=")
        cap = 64 * MiB
        limit = cap + BLOCK + 64 * 1024
        keys = ["big.bin", "mid.bin"]
        total = sum(self.objs[k][1] for k in keys)
        self.assertGreater(total, 200 * MiB)
        with cu.Sampler(lambda: cu.blocks_usage(cdir)[1]) as smp:
            for k in keys:
                self.assert_file_exact(mnt, k)
            cu.wait_settled(mnt, ["dsfs_cache_index_writes_total"])
        app, alloc = cu.blocks_usage(cdir)
        s = cu.stats(mnt)
        print(f"cap 64 MiB: max sampled {smp.max / MiB:.1f} MiB "
              f"({smp.samples} samples), after {alloc / MiB:.1f} MiB "
              f"allocated / {app / MiB:.1f} MiB apparent, evictions "
              f"{s['dsfs_cache_evictions_total']:.0f}")
        self.assertGreater(smp.samples, 3)
        self.assertLessEqual(smp.max, limit)
        self.assertLessEqual(alloc, limit)
        self.assertLessEqual(app, cap + 64 * 1024)
        self.assertGreater(s["dsfs_cache_evictions_total"], 0)
        self.assertGreaterEqual(app, cap // 2, "cache barely used")

    # ------------------------------------------------------------ 6

    def test_06_disk_full(self):
        """cache_dir on a 20 MiB tmpfs, cache_size larger than the disk:
        100 MiB read exactly, never EIO; write errors counted."""
        tfs = self.new_tmpfs("20m")
        cdir = os.path.join(tfs, "c")
        mnt, _ = self.mount_cache(cdir, "cache_size=256M", "prefetch_whole=")
        self.assert_file_exact(mnt, "mid.bin")
        path, _, _ = self.objs["big.bin"]
        want = 40 * MiB
        got, n = cu.sha256_range(os.path.join(mnt, "big.bin"), 0, want)
        self.assertEqual(n, want)
        self.assertEqual(got, cu.sha256_range(path, 0, want)[0])
        cu.wait_settled(mnt, ["dsfs_cache_write_errors_total",
                              "dsfs_cache_index_writes_total"])
        s = cu.stats(mnt)
        print(f"disk full: write errors "
              f"{s['dsfs_cache_write_errors_total']:.0f}, evictions "
              f"{s['dsfs_cache_evictions_total']:.0f}, blocks/ "
              f"{cu.blocks_usage(cdir)[1] / MiB:.1f} MiB")
        self.assertGreater(s["dsfs_cache_write_errors_total"], 0)
        # A failed write leaves no partial temp file filling the disk.
        harness.wait_until(lambda: not cu.tmp_files(cdir), 30, 0.2,
                           "tmp/ to be empty after the failed writes")
        # Reading again (partly from the cache) is still exact.
        self.assert_file_exact(mnt, "mid.bin")
        self.assertTrue(harness.is_mounted(mnt))

    # ------------------------------------------------------------ 7

    def test_07_concurrent_readers_memory_bound(self):
        """16 readers of 16 files with prefetch_mem=128M: all exact, and
        the daemon's peak RSS stays within prefetch_mem + 128 MiB + slack."""
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=2G", "prefetch_mem=128M")
        pid = cu.daemon_pid(mnt)
        base = cu.vm_hwm_bytes(pid)
        keys = [f"readers/r{i:02d}.bin" for i in range(READERS)]
        results, errors = {}, []

        def reader(k):
            try:
                results[k] = harness.sha256_file(os.path.join(mnt, k))
            except Exception as e:  # reported below
                errors.append(f"{k}: {e!r}")

        threads = [threading.Thread(target=reader, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
            self.assertFalse(t.is_alive(), "a reader hung")
        self.assertEqual(errors, [])
        for k in keys:
            self.assertEqual(results[k], self.objs[k][2], k)
        hwm = cu.vm_hwm_bytes(pid)
        # prefetch_mem + 128 MiB for everything else (FUSE buffers, curl,
        # the cache write queue of up to 16 blocks, malloc arenas) + 64 MiB
        # of slack: measured peaks were 248-303 MiB on a loaded 2-core box.
        # Without the budget 16 readers x 256 MiB windows would need 4 GiB.
        limit = 128 * MiB + 128 * MiB + 64 * MiB
        print(f"16 readers: VmHWM {hwm / MiB:.0f} MiB (at mount "
              f"{base / MiB:.0f} MiB), limit {limit / MiB:.0f} MiB")
        if os.environ.get("DSFS_SANITIZER_LOG_DIR"):
            # ASan's shadow memory and quarantine make RSS meaningless: the
            # bound is checked in the normal build (the readers' bytes are
            # checked in both).
            print("sanitizer build: VmHWM bound not checked")
        else:
            self.assertLessEqual(hwm, limit)

    # ------------------------------------------------------------ 8

    def test_08_whole_file_prefetch_only_for_glob(self):
        """Opening *.safetensors and reading 4 KiB fetches the whole file;
        the same on a *.bin file does not."""
        mnt, _ = self.mount_cache(None)
        with open(os.path.join(mnt, "other.bin"), "rb") as f:
            self.assertEqual(len(f.read(4096)), 4096)
        s = cu.wait_settled(mnt, ["dsfs_s3_bytes_read_total",
                                  "dsfs_prefetch_blocks_total"], quiet=2)
        bin_bytes = s["dsfs_s3_bytes_read_total"]
        size = self.objs["model.safetensors"][1]
        print(f"4 KiB of other.bin: {bin_bytes / MiB:.1f} MiB fetched")
        self.assertLess(bin_bytes, size // 2, "a *.bin file was fetched whole")
        # Kept open while it is fetched: closing the last handle cancels a
        # stream's read-ahead (the reader is gone), whole-file or not.
        with open(os.path.join(mnt, "model.safetensors"), "rb") as f:
            self.assertTrue(f.read(4096) ==
                            harness.rand_bytes(13, 4096))
            harness.wait_until(
                lambda: cu.counter(mnt, "dsfs_s3_bytes_read_total") - bin_bytes
                >= size, 60, 0.1, "model.safetensors to be fetched whole")
        s = cu.stats(mnt)
        fetched = s["dsfs_s3_bytes_read_total"] - bin_bytes
        print(f"4 KiB of model.safetensors: {fetched / MiB:.1f} MiB "
              f"fetched, prefetch blocks "
              f"{s['dsfs_prefetch_blocks_total']:.0f}")
        self.assertGreaterEqual(s["dsfs_prefetch_blocks_total"],
                                size // BLOCK - 1)
        # Opened again over the pages the kernel kept (a load run again):
        # the read is the kernel's alone, and the daemon prefetches nothing
        # (whole-file prefetch starts at a handle's first read, not at its
        # open: from the open it fetched the file again).
        s0 = cu.wait_settled(mnt, ["dsfs_s3_bytes_read_total",
                                   "dsfs_prefetch_blocks_total"], quiet=2)
        with open(os.path.join(mnt, "model.safetensors"), "rb") as f:
            self.assertTrue(f.read(4096) == harness.rand_bytes(13, 4096))
            s1 = cu.wait_settled(mnt, ["dsfs_s3_bytes_read_total",
                                       "dsfs_prefetch_blocks_total"], quiet=2)
        print(f"reopened over the kernel's pages: prefetch blocks "
              f"{s0['dsfs_prefetch_blocks_total']:.0f} -> "
              f"{s1['dsfs_prefetch_blocks_total']:.0f}")
        self.assertEqual(s1["dsfs_prefetch_blocks_total"],
                         s0["dsfs_prefetch_blocks_total"])
        self.assertEqual(s1["dsfs_s3_bytes_read_total"],
                         s0["dsfs_s3_bytes_read_total"])

    # ------------------------------------------------------------ 9

    def test_09_random_small_reads_fetch_little(self):
        """200 seeded 4 KiB preads over a 64 MiB file (not prefetched
        whole): exact bytes, GET bytes far below the file size."""
        key = "mid.bin"
        path, size, _ = self.objs[key]
        # Small blocks, so that 200 reads touch a small part of the file;
        # the read-ahead window may still grow to its default 256 MiB.
        mnt, _ = self.mount_cache(None, "block_size=64K")
        rng = random.Random(9)
        fd = os.open(os.path.join(mnt, key), os.O_RDONLY)
        src = os.open(path, os.O_RDONLY)
        try:
            for i in range(200):
                off = rng.randrange(0, size - 4096)
                self.assertTrue(os.pread(fd, 4096, off) ==
                                os.pread(src, 4096, off), f"read {i} at {off}")
        finally:
            os.close(fd)
            os.close(src)
        s = cu.wait_settled(mnt, ["dsfs_s3_bytes_read_total"])
        got = s["dsfs_s3_bytes_read_total"]
        print(f"200 random 4 KiB reads: {got / MiB:.1f} MiB fetched of "
              f"{size / MiB:.0f} MiB")
        self.assertLess(got, size // 4)

    # ------------------------------------------------------------ 10

    def _mount_fails(self, opts, want):
        mnt = self.new_mountpoint("bad")
        res = harness.mount(self.BUCKET, mnt, self.base_opts() + opts,
                            check=False, timeout=60)
        if harness.is_mounted(mnt):
            self._mounts.append(mnt)
        self.assertEqual(res.returncode, 1, res)
        self.assertFalse(harness.is_mounted(mnt), res)
        self.assertRegex(
            res.stderr, re.compile(r"dsfs: error: .*" + want, re.I), res)
        # The daemon reported the failure to the parent and is exiting: it
        # is gone within seconds (ASan's exit-time leak check takes a few
        # hundred ms; CI once saw it still there at the first look).
        harness.wait_until(lambda: harness.find_daemon_pids(mnt) == [], 10,
                           0.05, f"the daemon of the failed mount on {mnt} "
                           "to exit")

    def test_10a_bad_cache_size(self):
        self._mount_fails([f"cache_dir={self.new_cache_dir()}",
                           "cache_size=abc"], "cache_size")

    def test_10b_other_format_version(self):
        cdir = self.new_cache_dir()
        os.makedirs(cdir, mode=0o700)
        with open(os.path.join(cdir, "FORMAT"), "w") as f:
            f.write("dsfs-cache-format 99\n")
        self._mount_fails([f"cache_dir={cdir}"], "format")
        with open(os.path.join(cdir, "FORMAT")) as f:
            self.assertEqual(f.read(), "dsfs-cache-format 99\n")

    def test_10c_foreign_owner(self):
        cdir = self.new_cache_dir()
        os.makedirs(cdir, mode=0o700)
        os.chown(cdir, 12345, 12345)
        self._mount_fails([f"cache_dir={cdir}"], "own")
        self.assertEqual(os.listdir(cdir), [])

    def test_10d_read_only_filesystem(self):
        tfs = self.new_tmpfs("4m")
        os.makedirs(os.path.join(tfs, "c"), mode=0o700)
        cu.remount_ro(tfs)
        self._mount_fails([f"cache_dir={os.path.join(tfs, 'c')}",
                           "cache_size=64M"], "cache_dir")
        self._mount_fails([f"cache_dir={os.path.join(tfs, 'new')}",
                           "cache_size=64M"], "cache_dir")

    def test_10e_garbage_index_still_mounts(self):
        key = "other.bin"
        cdir = self.fill_cache(key, "prefetch_whole=")
        idx = os.path.join(cdir, "index")
        names = os.listdir(idx)
        self.assertTrue(names)
        for n in names:
            p = os.path.join(idx, n)
            if os.path.isfile(p) and n != "LOCK":
                with open(p, "wb") as f:
                    f.write(b"\xde\xad garbage " * 300)
        mnt, log = self.mount_cache(cdir, "cache_size=1G", "prefetch_whole=")
        self.assert_file_exact(mnt, key)
        s = cu.stats(mnt)
        print(f"garbage index: disk hits {s['dsfs_cache_disk_hits_total']:.0f}"
              f", GET {s['dsfs_s3_bytes_read_total'] / MiB:.1f} MiB")
        self.assertTrue(os.path.isdir(os.path.join(cdir, "index.broken")),
                        "the unreadable index was not moved aside")
        # The block files are the truth: they are still used.
        self.assertGreater(s["dsfs_cache_disk_hits_total"], 0)

    # ------------------------------------------------------------ 11

    def test_11_modes(self):
        cdir = self.new_cache_dir()
        mnt, _ = self.mount_cache(cdir, "cache_size=1G", "prefetch_whole=")
        self.assert_file_exact(mnt, "other.bin")
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= 2, 60, 0.1,
                           "block files")
        self.assertEqual(stat.S_IMODE(os.stat(cdir).st_mode), 0o700)
        for p in cu.block_files(cdir):
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)
        for d in ("blocks", "tmp"):
            self.assertEqual(
                stat.S_IMODE(os.stat(os.path.join(cdir, d)).st_mode) & 0o077,
                0, d)
        for n in ("FORMAT", "LOCK"):
            self.assertEqual(
                stat.S_IMODE(os.stat(os.path.join(cdir, n)).st_mode), 0o600, n)

    # ------------------------------------------------------------ 12

    def test_12_mmap_of_cached_safetensors(self):
        key = "model.safetensors"
        path, size, sha = self.objs[key]
        cdir = self.fill_cache(key)
        mnt, _ = self.mount_cache(cdir, "cache_size=1G")
        with open(os.path.join(mnt, key), "rb") as f, open(path, "rb") as s:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            ms = mmap.mmap(s.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                self.assertEqual(len(m), size)
                rng = random.Random(12)
                for _ in range(100):
                    off = rng.randrange(0, size)
                    n = rng.randrange(1, 300000)
                    self.assertTrue(m[off:off + n] == ms[off:off + n],
                                    f"mmap slice differs at {off}+{n}")
                self.assertEqual(hashlib.sha256(m).hexdigest(), sha)
            finally:
                m.close()
                ms.close()
        s = cu.stats(mnt)
        self.assertGreater(s["dsfs_cache_disk_hits_total"], 0)
        self.assertLess(s["dsfs_s3_bytes_read_total"], BLOCK)


if __name__ == "__main__":
    unittest.main()
