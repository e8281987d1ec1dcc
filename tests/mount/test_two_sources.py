"""Two sources at once (fallback_parallel=, default on): with OBS healthy,
a cold read of an object whose share copy is proven identical takes blocks
from OBS and from the share at once; a share copy that is not proven is
never read.

Mounted against s3rver behind scripts/s3proxy.py with a per-connection
bandwidth cap (the "OBS" pipe); the share is a plain directory. Each test
has its own cache_dir (cold reads). Assertions are about where the bytes
came from and that they are right (sha256); the MB/s printed are for the
report only, never asserted.
"""

import hashlib
import os
import time
import unittest

import fallback_util as fu
import harness
from harness import MiB

OBS_BW_PER_CONN = "4M"   # the proxy's cap per connection
MAX_INFLIGHT = "8"       # GETs in flight: OBS tops out near 8 x 4 MiB/s
PROVE_XATTR = "user.dsfs.prove"


class TwoSourcesTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.share = os.path.join(cls.tmp, "share")
        os.makedirs(cls.share)
        cls.obs = {}
        # Identical on OBS and the share (proven in the tests).
        cls.put("two/model.bin", harness.rand_bytes(21, 64 * MiB + 12345))
        cls.put("two/model-off.bin", harness.rand_bytes(22, 32 * MiB + 7))
        # Same size, other bytes on the share: never proven, never read.
        cls.put("two/stale.bin", harness.rand_bytes(23, 32 * MiB + 99),
                share=harness.rand_bytes(24, 32 * MiB + 99))
        cls.proxy = fu.FaultProxy(cls.server.port,
                                  os.path.join(cls.tmp, "proxy.log"))
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)

    @classmethod
    def put(cls, key, data, share=b"same"):
        cls.s3.put(cls.BUCKET, key, data)
        cls.obs[key] = hashlib.sha256(data).hexdigest()
        p = os.path.join(cls.share, key)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data if share == b"same" else share)

    def setUp(self):
        self.proxy.reset()

    def mount_two(self, *opts):
        cache = os.path.join(self.tmp, f"cache-{self._testMethodName}-"
                             f"{time.monotonic_ns()}")
        os.makedirs(cache)
        mnt, log = self.mount_bucket(
            server=self.proxy,
            extra_opts=[f"fallback={self.share}", f"cache_dir={cache}",
                        f"max_inflight={MAX_INFLIGHT}", *opts])
        self.addCleanup(self.unmount_now, mnt)
        return mnt, log

    def prove(self, path, want):
        text = os.getxattr(path, PROVE_XATTR).decode()
        self.assertRegex(text, r"(?m)^" + want + r" ", text)

    def cold_read(self, mnt, key):
        """Reads key whole through the capped proxy; checks its sha256 and
        returns MB/s (printed only)."""
        self.proxy.configure(bw_per_conn=OBS_BW_PER_CONN)
        t0 = time.monotonic()
        r = fu.TimedRead(os.path.join(mnt, key)).run()
        dt = time.monotonic() - t0
        self.proxy.configure(bw_per_conn=0)
        self.assertEqual(r.sha, self.obs[key], f"{key}: wrong bytes")
        mbs = r.nbytes / MiB / max(dt, 1e-6)
        return mbs

    def test_a_cold_read_takes_both_sources(self):
        """A proven copy: the cold read's bytes come from both OBS and the
        share, and are OBS's (sha256)."""
        mnt, _ = self.mount_two()
        key = "two/model.bin"
        self.prove(os.path.join(mnt, key), "proven")
        mbs = self.cold_read(mnt, key)
        by = fu.counter_by_source(mnt, "dsfs_parallel_bytes_total")
        print(f"\ncold read, two sources: {mbs:.0f} MiB/s "
              f"(obs {by.get('obs', 0) / MiB:.0f} MiB, "
              f"share {by.get('share', 0) / MiB:.0f} MiB)")
        self.assertGreater(by.get("share", 0), 0, by)
        self.assertGreater(by.get("obs", 0), 0, by)
        self.assertGreaterEqual(fu.counter(mnt, "dsfs_share_bytes_read_total"),
                                by["share"])
        self.assertEqual(
            fu.counter(mnt, "dsfs_fallback_secondary_requests_total"), 0)

    def test_b_unproven_copy_is_never_read(self):
        """A share copy with other bytes (its proof says 'differs'): every
        byte of the cold read is OBS's."""
        mnt, _ = self.mount_two()
        key = "two/stale.bin"
        self.prove(os.path.join(mnt, key), "differs")
        before = fu.counter(mnt, "dsfs_share_bytes_read_total")
        self.cold_read(mnt, key)
        by = fu.counter_by_source(mnt, "dsfs_parallel_bytes_total")
        self.assertEqual(by.get("share", 0), 0, by)
        self.assertEqual(fu.counter(mnt, "dsfs_share_bytes_read_total"),
                         before)

    def test_c_off_reads_obs_only(self):
        """fallback_parallel=off: a proven copy is not read while OBS is
        healthy."""
        mnt, _ = self.mount_two("fallback_parallel=off")
        key = "two/model-off.bin"
        self.prove(os.path.join(mnt, key), "proven")
        before = fu.counter(mnt, "dsfs_share_bytes_read_total")
        mbs = self.cold_read(mnt, key)
        print(f"\ncold read, fallback_parallel=off: {mbs:.0f} MiB/s")
        by = fu.counter_by_source(mnt, "dsfs_parallel_bytes_total")
        self.assertEqual(by.get("share", 0), 0, by)
        self.assertEqual(fu.counter(mnt, "dsfs_share_bytes_read_total"),
                         before)

    def test_d_on_vs_off_same_object(self):
        """The same proven object read cold with the option on and off (two
        mounts, each its own cache): the same bytes; MB/s printed."""
        key = "two/model-off.bin"
        rates = {}
        for mode in ("off", "on"):
            mnt, _ = self.mount_two(f"fallback_parallel={mode}")
            self.prove(os.path.join(mnt, key), "proven")
            rates[mode] = self.cold_read(mnt, key)
            self.unmount_now(mnt)
        print(f"\ncold {key}: off {rates['off']:.0f} MiB/s, "
              f"on {rates['on']:.0f} MiB/s")


if __name__ == "__main__":
    unittest.main()
