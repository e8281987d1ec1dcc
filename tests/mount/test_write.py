"""The write path through a real mount against s3rver: what close(2)
returns is in the bucket (checked with a plain GET), partial overwrites,
appends and truncates, a full staging disk and a failing upload.

Sizes (MiB) can be lowered on a slow machine:
  DSFS_TEST_WRITE_BIG_MB   the file copied with cp, multipart_size=5 (100)
"""

import errno
import hashlib
import os
import shutil
import subprocess
import time
import unittest

import cache_util as cu
import harness
from harness import MiB

BIG_MB = cu.env_mb("DSFS_TEST_WRITE_BIG_MB", 100)


def sha(data):
    return hashlib.sha256(data).hexdigest()


class WriteTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.staging = os.path.join(cls.tmp, "staging")
        os.makedirs(cls.staging)
        # Through the proxy, which counts requests by operation.
        cls.proxy = cu.Proxy(cls.server.port, cls.tmp)
        cls.addClassCleanup(cls.proxy.stop)
        cls.mnt, cls.log = cls.mount_bucket(server=cls.proxy, extra_opts=[
            "multipart_size=5", f"tmpdir={cls.staging}", "parallel_count=4"])

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def get(self, key):
        return self.s3.get(self.BUCKET, key)

    def assertNoObject(self, key):
        st, _ = self.s3.head(self.BUCKET, key)
        self.assertEqual(st, 404, f"{key} should not exist")

    def test_01_small_file_is_in_the_bucket_after_close(self):
        data = b"hello write path\n"
        with open(self.p("small.txt"), "wb") as f:
            f.write(data)
            # Staged, not uploaded yet (no stub object at create) ...
            f.flush()
        # ... and right after close a plain GET returns it.
        self.assertEqual(self.get("small.txt"), data)
        st = os.stat(self.p("small.txt"))
        self.assertEqual(st.st_size, len(data))
        self.assertIn("small.txt", os.listdir(self.mnt))
        status, hdrs = self.s3.head(self.BUCKET, "small.txt")
        self.assertEqual(status, 200)
        mode = int(hdrs.get("x-amz-meta-mode"))
        self.assertEqual(mode & 0o170000, 0o100000)
        self.assertIn("x-amz-meta-mtime", hdrs)
        with open(self.p("small.txt"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_02_cp_of_a_big_file_is_a_multipart_upload(self):
        src = os.path.join(self.tmp, "big-src.bin")
        size = BIG_MB * MiB + 12345
        want = harness.write_random_file(src, size, 42)
        self.proxy.reset()
        t0 = time.monotonic()
        subprocess.run(["cp", src, self.p("big.bin")], check=True)
        dt = time.monotonic() - t0
        print(f"cp {size >> 20} MiB: {dt:.1f}s ({size / MiB / max(dt, 1e-6):.0f} MiB/s)")
        got = hashlib.sha256(self.get("big.bin")).hexdigest()
        self.assertEqual(got, want)
        status, hdrs = self.s3.head(self.BUCKET, "big.bin")
        self.assertEqual(int(hdrs.get("content-length")), size)
        # A multipart upload: Create + one PUT per 5 MiB part + Complete
        # (the proxy counts PUT and POST as "put"), no single PUT of it all.
        parts = -(-size // (5 * MiB))
        self.assertEqual(self.proxy.stats()["requests"]["put"], parts + 2)
        pid = cu.daemon_pid(self.mnt)
        print(f"daemon VmHWM after the cp: {cu.vm_hwm_bytes(pid) >> 20} MiB")
        self.assertEqual(harness.sha256_file(self.p("big.bin")), want)
        os.unlink(src)

    def test_03_dd_notrunc_overwrites_the_middle(self):
        old = harness.rand_bytes(3, 12 * MiB + 7)
        self.s3.put(self.BUCKET, "ow.bin", old)
        patch = harness.rand_bytes(4, 3 * MiB + 1)
        patch_src = os.path.join(self.tmp, "patch.bin")
        with open(patch_src, "wb") as f:
            f.write(patch)
        seek = 5 * MiB + 3
        subprocess.run(["dd", f"if={patch_src}", f"of={self.p('ow.bin')}",
                        "bs=1M", f"seek={seek}", "oflag=seek_bytes",
                        "conv=notrunc", "status=none"], check=True)
        want = old[:seek] + patch + old[seek + len(patch):]
        self.assertEqual(sha(self.get("ow.bin")), sha(want))
        self.assertEqual(os.stat(self.p("ow.bin")).st_size, len(old))
        with open(self.p("ow.bin"), "rb") as f:
            self.assertEqual(sha(f.read()), sha(want))

    def test_04_append(self):
        self.s3.put(self.BUCKET, "log.txt", b"one\n")
        for line in (b"two\n", b"three\n"):
            with open(self.p("log.txt"), "ab") as f:
                f.write(line)
        self.assertEqual(self.get("log.txt"), b"one\ntwo\nthree\n")

    def test_05_truncate_down_and_up(self):
        self.s3.put(self.BUCKET, "t.bin", b"0123456789")
        os.truncate(self.p("t.bin"), 4)
        self.assertEqual(self.get("t.bin"), b"0123")
        os.truncate(self.p("t.bin"), 6)
        self.assertEqual(self.get("t.bin"), b"0123\0\0")
        with open(self.p("t.bin"), "r+b") as f:
            f.truncate(1)
            f.seek(3)
            f.write(b"x")
        self.assertEqual(self.get("t.bin"), b"0\0\0x")
        with open(self.p("t.bin"), "wb") as f:  # O_TRUNC
            pass
        self.assertEqual(self.get("t.bin"), b"")

    def test_06_rewrite_keeps_the_inode_and_reads_the_new_bytes(self):
        with open(self.p("re.txt"), "wb") as f:
            f.write(b"version one")
        ino = os.stat(self.p("re.txt")).st_ino
        with open(self.p("re.txt"), "r+b") as f:
            f.write(b"VERSION")
        self.assertEqual(os.stat(self.p("re.txt")).st_ino, ino)
        with open(self.p("re.txt"), "rb") as f:
            self.assertEqual(f.read(), b"VERSION one")
        self.assertEqual(self.get("re.txt"), b"VERSION one")

    def test_07_fsync_puts_it_in_the_bucket_before_close(self):
        fd = os.open(self.p("synced.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"durable")
            self.assertNoObject("synced.bin")
            os.fsync(fd)
            self.assertEqual(self.get("synced.bin"), b"durable")
        finally:
            os.close(fd)

    def test_08_full_staging_disk_is_enospc_and_leaves_no_object(self):
        # A 16 MiB ext4 on a loop device as the staging disk.
        disk = os.path.join(self.tmp, "tiny")
        cu.mount_loop_ext4(disk, 16, os.path.join(self.tmp, "tiny.img"))
        self.addCleanup(cu.umount_tmpfs, disk)
        mnt, _ = self.mount_bucket(extra_opts=[f"tmpdir={disk}"])
        # A file closed before the disk fills stays intact.
        with open(os.path.join(mnt, "before.txt"), "wb") as f:
            f.write(b"kept")
        chunk = harness.rand_bytes(5, MiB)
        with self.assertRaises(OSError) as cm:
            with open(os.path.join(mnt, "huge.bin"), "wb") as f:
                for _ in range(32):
                    f.write(chunk)
                    f.flush()
        self.assertEqual(cm.exception.errno, errno.ENOSPC, cm.exception)
        self.assertNoObject("huge.bin")
        self.assertEqual(self.get("before.txt"), b"kept")
        # The staged file went with its handle: the disk is free again.
        with open(os.path.join(mnt, "after.txt"), "wb") as f:
            f.write(b"room again")
        self.assertEqual(self.get("after.txt"), b"room again")
        self.unmount_now(mnt)

    def test_09_failed_upload_is_eio_at_close_leaves_no_object_and_keeps_the_data(self):
        proxy = cu.Proxy(self.server.port, self.tmp)
        self.addCleanup(proxy.stop)
        staging = os.path.join(self.tmp, "staging-09")
        os.makedirs(staging)
        mnt, log = self.mount_bucket(
            extra_opts=["retries=1", "multipart_size=5", f"tmpdir={staging}"],
            server=proxy)
        proxy.configure(fault_ops=["put"], error_rate=1.0, error_code=500)
        for name, size in (("fail-small.bin", 1000), ("fail-big.bin", 12 * MiB)):
            f = open(os.path.join(mnt, name), "wb")
            f.write(harness.rand_bytes(6, size))
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                f.close()
            self.assertEqual(cm.exception.errno, errno.EIO, cm.exception)
            self.assertLess(time.monotonic() - t0, 60, "EIO within 60 s, not a hang")
            self.assertNoObject(name)
        # Nothing written is lost: each file's bytes are kept, named after
        # its key, in tmpdir/kept (cache_dir/staging/kept with a disk cache),
        # and the log says where.
        kept = os.path.join(staging, "kept")
        # Kept at release, which the kernel sends after close(2) returned
        # (asynchronously): a loaded machine lists kept/ before it.
        harness.wait_until(lambda: os.path.isdir(kept) and len(os.listdir(kept)) >= 2, 30,
                           what="both files in " + kept)
        names = sorted(os.listdir(kept))
        self.assertEqual(len(names), 2, names)
        for name, size in (("fail-small.bin", 1000), ("fail-big.bin", 12 * MiB)):
            match = [n for n in names if n.endswith("-" + name)]
            self.assertEqual(len(match), 1, names)
            with open(os.path.join(kept, match[0]), "rb") as f:
                self.assertTrue(f.read() == harness.rand_bytes(6, size), name)
            with open(log, encoding="utf-8", errors="replace") as f:
                self.assertIn(os.path.join(kept, match[0]), f.read())
        self.assertEqual(cu.counter(mnt, "dsfs_write_kept_total"), 2)
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
