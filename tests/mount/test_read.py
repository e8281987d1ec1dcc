"""Data path: what is read through the mount is exactly what is in the
bucket, whatever the access pattern; -o ro mounts read-only."""

import errno
import hashlib
import mmap
import os
import random
import threading
import time
import unittest

import harness
from harness import MiB


class ReadTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        src = os.path.join(cls.tmp, "src")
        os.makedirs(src)
        cls.big_size = harness.big_mb() * MiB + 12345  # not block aligned
        cls.mid_size = min(64 * MiB, cls.big_size) + 777
        cls.big_src = os.path.join(src, "big.bin")
        cls.mid_src = os.path.join(src, "mid.bin")
        t0 = time.monotonic()
        cls.big_sha = harness.write_random_file(cls.big_src, cls.big_size, 1)
        cls.mid_sha = harness.write_random_file(cls.mid_src, cls.mid_size, 2)
        cls.s3.put(cls.BUCKET, "weights/big.bin", file=cls.big_src)
        cls.s3.put(cls.BUCKET, "weights/mid.bin", file=cls.mid_src)
        cls.s3.put(cls.BUCKET, "empty.bin", b"")
        cls.s3.put(cls.BUCKET, "small.txt", b"hello dsfs\n")
        print(f"setup: {cls.big_size >> 20} MiB + {cls.mid_size >> 20} MiB "
              f"uploaded in {time.monotonic() - t0:.1f}s")
        cls.mnt, cls.log = cls.mount_bucket()
        cls.big = os.path.join(cls.mnt, "weights", "big.bin")
        cls.mid = os.path.join(cls.mnt, "weights", "mid.bin")

    def test_big_sequential_sha256(self):
        self.assertEqual(os.stat(self.big).st_size, self.big_size)
        t0 = time.monotonic()
        got = harness.sha256_file(self.big, bufsize=MiB)
        dt = time.monotonic() - t0
        print(f"sequential read {self.big_size >> 20} MiB: {dt:.1f}s "
              f"({self.big_size / MiB / max(dt, 1e-6):.0f} MiB/s)")
        self.assertEqual(got, self.big_sha)

    def test_sequential_odd_buffer_sizes(self):
        # Reads of sizes that straddle any block/page boundary.
        h = hashlib.sha256()
        sizes = [1, 4095, 4097, 131071, 1 << 20, 3 * MiB + 5]
        i = 0
        with open(self.mid, "rb", buffering=0) as f:
            while True:
                b = f.read(sizes[i % len(sizes)])
                i += 1
                if not b:
                    break
                h.update(b)
        self.assertEqual(h.hexdigest(), self.mid_sha)

    def test_random_preads_match_source(self):
        rng = random.Random(42)
        fd = os.open(self.big, os.O_RDONLY)
        src = os.open(self.big_src, os.O_RDONLY)
        try:
            for i in range(200):
                off = rng.randrange(0, self.big_size)
                n = rng.randrange(1, 2 * MiB)
                got = os.pread(fd, n, off)
                want = os.pread(src, n, off)
                self.assertEqual(len(got), len(want),
                                 f"read {i}: length at off={off} n={n}")
                self.assertTrue(got == want,
                                f"read {i}: bytes differ at off={off} n={n}")
            # Reads at and past the end.
            self.assertEqual(os.pread(fd, 100, self.big_size), b"")
            self.assertEqual(os.pread(fd, 100, self.big_size + MiB), b"")
            self.assertEqual(os.pread(fd, 100, self.big_size - 10),
                             os.pread(src, 100, self.big_size - 10))
        finally:
            os.close(fd)
            os.close(src)

    def test_mmap_reads(self):
        with open(self.mid, "rb") as f, open(self.mid_src, "rb") as s:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            ms = mmap.mmap(s.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                self.assertEqual(len(m), self.mid_size)
                rng = random.Random(7)
                for _ in range(100):
                    off = rng.randrange(0, self.mid_size)
                    n = rng.randrange(1, 300000)
                    self.assertTrue(m[off:off + n] == ms[off:off + n],
                                    f"mmap slice differs at {off}+{n}")
                self.assertEqual(hashlib.sha256(m).hexdigest(), self.mid_sha)
            finally:
                m.close()
                ms.close()

    def test_concurrent_readers_one_file(self):
        results = [None] * 8
        errors = []

        def reader(i):
            try:
                h = hashlib.sha256()
                fd = os.open(self.mid, os.O_RDONLY)
                try:
                    # Different buffer sizes so the readers interleave.
                    bs = (128 << 10) * (i + 1)
                    while True:
                        b = os.read(fd, bs)
                        if not b:
                            break
                        h.update(b)
                finally:
                    os.close(fd)
                results[i] = h.hexdigest()
            except Exception as e:  # reported below
                errors.append(f"reader {i}: {e!r}")

        threads = [threading.Thread(target=reader, args=(i,))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
            self.assertFalse(t.is_alive(), "a reader hung")
        self.assertEqual(errors, [])
        for i, r in enumerate(results):
            self.assertEqual(r, self.mid_sha, f"reader {i}")

    def test_zero_byte_file(self):
        p = os.path.join(self.mnt, "empty.bin")
        st = os.stat(p)
        self.assertEqual(st.st_size, 0)
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"")

    def test_small_file(self):
        with open(os.path.join(self.mnt, "small.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello dsfs\n")

    def test_missing_name_enoent(self):
        self.assertErrno(errno.ENOENT, os.stat,
                         os.path.join(self.mnt, "no-such-file"))
        self.assertErrno(errno.ENOENT, os.open,
                         os.path.join(self.mnt, "weights", "nope.bin"),
                         os.O_RDONLY)
        self.assertErrno(errno.ENOENT, os.listdir,
                         os.path.join(self.mnt, "no-such-dir"))

    def test_read_only(self):
        # rw is the default: -o ro refuses every change with EROFS.
        m, _ = self.mount_bucket(extra_opts=["ro"])
        existing = os.path.join(m, "small.txt")
        self.assertErrno(errno.EROFS, os.open, os.path.join(m, "new.txt"),
                         os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertErrno(errno.EROFS, os.open, existing, os.O_WRONLY)
        self.assertErrno(errno.EROFS, os.open, existing, os.O_RDWR)
        self.assertErrno(errno.EROFS, os.mkdir, os.path.join(m, "newdir"))
        self.assertErrno(errno.EROFS, os.unlink, existing)
        self.assertErrno(errno.EROFS, os.rmdir, os.path.join(m, "weights"))
        self.assertErrno(errno.EROFS, os.rename, existing,
                         os.path.join(m, "renamed.txt"))
        self.assertErrno(errno.EROFS, os.chmod, existing, 0o600)
        self.assertErrno(errno.EROFS, os.truncate, existing, 0)
        self.assertErrno(errno.EROFS, os.symlink, "small.txt",
                         os.path.join(m, "ln"))
        # Nothing changed in the bucket.
        self.assertEqual(self.s3.get(self.BUCKET, "small.txt"),
                         b"hello dsfs\n")
        st, _ = self.s3.head(self.BUCKET, "new.txt")
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main()
