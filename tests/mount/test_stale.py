"""A handle pins the object version it opened: when the object changes
upstream, reads through that handle fail with ESTALE, never with bytes of
the new version, whether the server honours If-Match (OBS, S3: here the
fault proxy with honor_if_match) or ignores it (s3rver: dsfs checks the
ETag of every reply itself). A new open sees the new version.

prefetch_whole='' and a small read-ahead window keep the blocks past the
first read unfetched when the object changes.
"""

import errno
import os
import unittest

import fallback_util as fu
import harness
from harness import MiB

SIZE = 16 * MiB


class StaleTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proxy = fu.FaultProxy(cls.server.port, os.path.join(cls.tmp, "proxy.log"))
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)

    def check_stale(self, key, honor):
        v1 = harness.rand_bytes(11, SIZE)
        v2 = harness.rand_bytes(12, SIZE)  # same size: only the ETag tells
        self.s3.put(self.BUCKET, key, v1)
        self.proxy.reset()
        self.proxy.configure(honor_if_match=honor)
        mnt, log = self.mount_bucket(
            server=self.proxy,
            extra_opts=["prefetch_whole=", "readahead_max=1M", "block_size=1M"])
        self.addCleanup(self.unmount_now, mnt)
        path = os.path.join(mnt, key)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, MiB, 0), v1[:MiB])
            self.s3.put(self.BUCKET, key, v2)  # overwritten upstream
            with self.assertRaises(OSError) as cm:
                # Far from what was read, so no read-ahead holds it.
                os.pread(fd, MiB, SIZE - MiB)
            self.assertEqual(cm.exception.errno, errno.ESTALE,
                             f"expected ESTALE, got {cm.exception!r}")
        finally:
            os.close(fd)
        if honor:
            self.assertGreaterEqual(self.proxy.stats().get("if_match_412", 0), 1)
        # A new open (after the stat cache expires) reads the new version whole.
        harness.wait_until(lambda: os.stat(path) is not None, 10, what="stat")
        got = None
        for _ in range(30):
            with open(path, "rb") as f:
                try:
                    got = f.read()
                    break
                except OSError as e:
                    if e.errno != errno.ESTALE:
                        raise
            import time
            time.sleep(0.5)
        self.assertEqual(got, v2)

    def test_server_that_honours_if_match(self):
        self.check_stale("honours.bin", honor=True)

    def test_server_that_ignores_if_match(self):
        # s3rver answers with the new version: dsfs refuses it by its ETag.
        self.check_stale("ignores.bin", honor=False)


if __name__ == "__main__":
    unittest.main()
