"""Never a wrong byte from the SFS share (fallback=DIR): a share file is
served as an OBS version only once proven to hold that version's bytes
(MD5 = single-part ETag, or the multipart ETag recomputed with a common part
size); an unproven share file is served only under its own identity, and a
handle pinned to the OBS version gets EIO past what the node holds.

Mounted against s3rver behind scripts/s3proxy.py ("OBS down" = the proxy
refuses connections). Each test has its own directory of objects, its own
share files and its own cache_dir; objects are 8-16 MiB (4 MiB blocks), so
the whole file runs in well under 90 s (x3 under ASan).

Every test fails on the code before share proofs (main at 3ee1a24); the
docstrings say how.
"""

import errno
import mmap
import os
import re
import time
import unittest

import fallback_util as fu
import harness
from harness import MiB

PROBE_INTERVAL = 2.0    # s: fallback_probe_interval= of these mounts
STAT_TTL = 1.0          # s: stat_ttl= / list_ttl= of these mounts
PART = 5 * MiB          # part size of the multipart uploads
EIO_BOUND = 20.0        # s: a read of bytes the node does not hold fails by then
SLACK = 10.0            # s: loaded 2-core machine

PROVE_XATTR = "user.dsfs.prove"


def parse_prove_report(text):
    """A user.dsfs.prove report -> ({path: verdict}, {field: count}).
    Lines are '<verdict> <path>', the last one
    'total N proven P differs D missing M unprovable U [error E]'."""
    verdicts, totals = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("total "):
            words = line.split()
            totals = {words[i]: int(words[i + 1])
                      for i in range(0, len(words) - 1, 2)}
            continue
        verdict, _, path = line.partition(" ")
        verdicts[path.strip()] = verdict
    if totals is None:
        raise AssertionError(f"no 'total' line in the prove report:\n{text}")
    # Proofs that could not run (the share failed) are counted as 'error';
    # none of these tests expects one.
    if totals.pop("error", 0) != 0:
        raise AssertionError(f"proofs failed:\n{text}")
    return verdicts, totals


def verdict_of(verdicts, key):
    """The verdict for `key`, whether the report names it by key, by path
    in the mount or with a leading slash."""
    found = [v for p, v in verdicts.items()
             if p == key or p.endswith("/" + key)]
    if len(found) != 1:
        raise AssertionError(f"{key}: {len(found)} report lines in "
                             f"{verdicts}")
    return found[0]


class DirectHandle:
    """An O_DIRECT read handle (no page cache, no kernel read-ahead: each
    read() is one FUSE read the daemon answers, and its error reaches us)."""

    def __init__(self, path, bufsize=MiB):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        self.buf = mmap.mmap(-1, bufsize)
        self.data = bytearray()

    def read(self, nbytes):
        """Reads nbytes more (a multiple of bufsize), fewer at EOF."""
        goal = len(self.data) + nbytes
        while len(self.data) < goal:
            got = os.readv(self.fd, [self.buf])
            if not got:
                break
            self.data += self.buf[:got]

    def read_rest(self):
        while True:
            got = os.readv(self.fd, [self.buf])
            if not got:
                return
            self.data += self.buf[:got]

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.buf.close()


def read_direct_bytes(path):
    h = DirectHandle(path)
    try:
        h.read_rest()
    finally:
        h.close()
    return bytes(h.data)


class IntegrityTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.share = os.path.join(cls.tmp, "share")
        os.makedirs(cls.share)
        t0 = time.monotonic()
        # key -> (OBS bytes, OBS ETag)
        cls.obs = {}
        # (a) a stale single-part copy: same size, other bytes.
        cls.put("a/stale.bin", harness.rand_bytes(1, 16 * MiB + 4321),
                share=harness.rand_bytes(2, 16 * MiB + 4321))
        # (b) identical copies, single-part and multipart (3 parts of
        # 5 MiB), plus one nested copy, one object the share lacks and one
        # whose ETag carries no digest (as SSE-KMS ETags).
        cls.put("b/single.bin", harness.rand_bytes(3, 24 * MiB + 123))
        cls.put("b/multi.bin", harness.rand_bytes(4, 2 * PART + 3 * MiB + 77),
                multipart=True)
        cls.put("b/sub/nested.bin", harness.rand_bytes(5, 64 * 1024 + 1))
        cls.put("b/sub/only-obs.bin", harness.rand_bytes(6, 4096), share=None)
        cls.put("b/sub/kms.bin", harness.rand_bytes(7, 8192),
                etag="0f1e2d3c4b5a69788796a5b4c3d2e1f0-kms")
        # (c) unproven copies (same size, other bytes) of both kinds.
        cls.put("c/single.bin", harness.rand_bytes(8, 12 * MiB + 5),
                share=harness.rand_bytes(9, 12 * MiB + 5))
        cls.put("c/multi.bin", harness.rand_bytes(10, 2 * PART + 3 * MiB + 77),
                multipart=True,
                share=harness.rand_bytes(11, 2 * PART + 3 * MiB + 77))
        # (d) two identical copies: one proven, one left unproven.
        cls.put("d/proven.bin", harness.rand_bytes(12, 8 * MiB + 9))
        cls.put("d/control.bin", harness.rand_bytes(13, 8 * MiB + 9))
        # (e) background proof of an identical copy.
        cls.put("e/background.bin", harness.rand_bytes(14, 8 * MiB + 11))
        etag = cls.obs["b/multi.bin"][1]
        if not re.fullmatch(r"[0-9a-f]{32}-3", etag):
            raise harness.HarnessError(f"multipart ETag {etag!r}")
        print(f"setup: {len(cls.obs)} objects in "
              f"{time.monotonic() - t0:.1f}s; multipart ETag {etag}")
        cls.proxy = fu.FaultProxy(cls.server.port,
                                  os.path.join(cls.tmp, "proxy.log"))
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)

    @classmethod
    def put(cls, key, data, share=b"same", multipart=False, etag=None):
        """Puts `data` on OBS and `share` (default: the same bytes; None:
        no share copy) on the share."""
        if multipart:
            obs_etag = cls.server.put_multipart_s3_style(cls.BUCKET, key, data,
                                                         PART)
        else:
            cls.s3.put(cls.BUCKET, key, data)
            obs_etag = cls.s3.head(cls.BUCKET, key)[1]["etag"].strip('"')
        if etag is not None:
            cls.server.set_stored_etag(cls.BUCKET, key, etag)
            obs_etag = etag
        cls.obs[key] = (data, obs_etag)
        if share is not None:
            p = os.path.join(cls.share, key)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data if share == b"same" else share)

    def share_bytes(self, key):
        with open(os.path.join(self.share, key), "rb") as f:
            return f.read()

    def setUp(self):
        self.proxy.reset()

    def new_cache_dir(self):
        d = os.path.join(self.tmp, f"cache-{self._testMethodName}-"
                         f"{time.monotonic_ns()}")
        os.makedirs(d)
        return d

    def mount_share(self, cache_dir, *opts):
        mnt, log = self.mount_bucket(
            server=self.proxy,
            extra_opts=[f"fallback={self.share}", f"cache_dir={cache_dir}",
                        f"fallback_probe_interval={int(PROBE_INTERVAL)}s",
                        f"stat_ttl={int(STAT_TTL)}s",
                        f"list_ttl={int(STAT_TTL)}s", "negative_ttl=100ms",
                        "prefetch_whole=", "readahead_max=4M", *opts])
        self.addCleanup(self.unmount_now, mnt)
        return mnt, log

    def obs_down(self):
        self.proxy.configure(refuse=True)

    def obs_up_and_recovered(self, log):
        t0 = time.monotonic()
        self.proxy.configure(refuse=False)
        fu.wait_log(log, "fallback: OBS recovered", PROBE_INTERVAL + SLACK)
        return time.monotonic() - t0

    def prove(self, path):
        t0 = time.monotonic()
        text = os.getxattr(path, PROVE_XATTR).decode()
        dt = time.monotonic() - t0
        print(f"prove {os.path.relpath(path, self.tmp)} ({dt:.2f}s):\n"
              f"{text.rstrip()}")
        return parse_prove_report(text)

    def open_pinned(self, mnt, key, nbytes):
        """Opens key (OBS healthy: the handle is pinned to the OBS version)
        and reads its first nbytes; checks them."""
        h = DirectHandle(os.path.join(mnt, key))
        self.addCleanup(h.close)
        h.read(nbytes)
        self.assertEqual(bytes(h.data), self.obs[key][0][:nbytes], key)
        return h

    def read_rest_bounded(self, h, timeout=EIO_BOUND + 40):
        """Reads the rest through h. Returns (error, seconds); a read
        still blocked after `timeout` fails the test (a hang)."""
        _, err, dt = fu.call_with_deadline(h.read_rest, timeout)
        return err, dt

    def assert_eio_never_share_bytes(self, key, h, err, dt):
        obs = self.obs[key][0]
        got = bytes(h.data)
        self.assertEqual(got, obs[:len(got)],
                         f"{key}: bytes other than OBS's were returned")
        self.assertIsInstance(err, OSError,
                              f"{key}: read {len(got)} bytes with no error "
                              f"(the unproven share was served)")
        self.assertEqual(err.errno, errno.EIO, f"{key}: {err!r}")
        self.assertLess(len(got), len(obs), key)
        self.assertLess(dt, EIO_BOUND, f"{key}: EIO only after {dt:.1f}s")

    # ------------------------------------------------------------ a

    def test_a_stale_single_part_copy(self):
        """The share's copy has OBS's size and other bytes. A handle opened
        while OBS is healthy keeps reading after OBS goes down: it gets
        EIO, never share bytes. A new open during the outage reads the
        share's own bytes, twice the same. After OBS returns, a new open and
        a remount on the same cache_dir read exactly OBS's bytes.

        Fails today (3ee1a24): the pinned handle gets ESTALE (the share's
        reply is refused as another version), not EIO with 'is not
        proven'. Before 3ee1a24 (1fbf5dc) the share copy passed the size
        guard, its bytes were served to the pinned handle and cached under
        the OBS ETag, and after the remount the cache served OBS bytes
        mixed with the share's."""
        key = "a/stale.bin"
        obs, share = self.obs[key][0], self.share_bytes(key)
        cache = self.new_cache_dir()
        mnt, log = self.mount_share(cache)
        path = os.path.join(mnt, key)
        self.assertEqual(os.stat(path).st_size, len(obs))
        h = self.open_pinned(mnt, key, 4 * MiB)
        t_down = time.monotonic()
        self.obs_down()
        err, dt = self.read_rest_bounded(h)
        pinned_got = bytes(h.data)
        h.close()
        print(f"\nstale: pinned handle after OBS down: {len(pinned_got)} "
              f"bytes, {err!r} after {dt:.2f}s")

        time.sleep(STAT_TTL + 0.5)  # a new lookup, not the cached OBS stat
        t0 = time.monotonic()
        first = fu.call_with_deadline(lambda: fu.read_file(path), 60)
        second = fu.call_with_deadline(lambda: read_direct_bytes(path), 60)
        print(f"stale: new open during the outage: {first[1]!r} "
              f"{len(first[0] or b'')} bytes in {first[2]:.2f}s "
              f"({time.monotonic() - t_down:.1f}s after OBS went down)")
        rec = self.obs_up_and_recovered(log)
        time.sleep(STAT_TTL + 0.5)
        after = fu.call_with_deadline(lambda: read_direct_bytes(path), 60)
        self.unmount_now(mnt)
        t0 = time.monotonic()
        mnt2, _ = self.mount_share(cache)
        remounted = fu.read_file(os.path.join(mnt2, key))
        print(f"stale: recovered in {rec:.1f}s; remount + read "
              f"{time.monotonic() - t0:.2f}s")

        # The checks, most telling first.
        self.assertTrue(remounted == obs,
                        "after the remount the cache served bytes other "
                        "than OBS's" +
                        (" (the share's)" if remounted == share else ""))
        self.assertIsNone(after[1], f"read after recovery: {after[1]!r}")
        self.assertTrue(after[0] == obs,
                        "after recovery a new open read other bytes")
        self.assertEqual(pinned_got, obs[:len(pinned_got)],
                         "the OBS-pinned handle returned the share's bytes")
        self.assertIsInstance(err, OSError, "the OBS-pinned handle read the "
                              "whole file from the unproven share")
        self.assertEqual(err.errno, errno.EIO)
        self.assertLess(dt, EIO_BOUND)
        for got, e, _ in (first, second):
            self.assertIsNone(e, f"new open during the outage: {e!r}")
            self.assertTrue(got == share, "a new open during the outage did "
                            "not read the share's own bytes" +
                            (" (it read OBS's)" if got == obs else ""))
        self.assertGreaterEqual(len(fu.log_lines(log, "is not proven")), 1)

    # ------------------------------------------------------------ b

    def test_b_proven_copies_continue_a_pinned_read(self):
        """Identical share copies, single-part and multipart (ETag
        <md5>-3, 5 MiB parts): the prove xattr on their directory reports
        each one (recursively) as proven, the object the share lacks as
        missing and the one whose ETag carries no digest as unprovable;
        handles opened while OBS is healthy read on after OBS goes down,
        from the share, byte-identical.

        Fails today: no user.dsfs.prove xattr (ENODATA)."""
        mnt, log = self.mount_share(self.new_cache_dir())
        verdicts, totals = self.prove(os.path.join(mnt, "b"))
        want = {"b/single.bin": "proven", "b/multi.bin": "proven",
                "b/sub/nested.bin": "proven", "b/sub/only-obs.bin": "missing",
                "b/sub/kms.bin": "unprovable"}
        self.assertEqual({k: verdict_of(verdicts, k) for k in want}, want)
        self.assertEqual(totals, {"total": 5, "proven": 3, "differs": 0,
                                  "missing": 1, "unprovable": 1})
        self.assertGreaterEqual(fu.counter(mnt, "dsfs_share_proven_total"), 2)

        keys = ("b/single.bin", "b/multi.bin")
        # 1 MiB read: read-ahead (readahead_max=4M) holds at most blocks 0-1
        # when OBS goes down; blocks 2-6 and 2-3 must come from the share.
        handles = [self.open_pinned(mnt, k, MiB) for k in keys]
        base = fu.counter(mnt, "dsfs_fallback_secondary_requests_total")
        parallel_base = fu.counter_by_source(
            mnt, "dsfs_parallel_requests_total").get("share", 0)
        t_down = time.monotonic()
        self.obs_down()
        results = [self.read_rest_bounded(h) for h in handles]
        st = fu.mount_stats(mnt)
        print(f"\nproven: pinned reads after OBS down: "
              f"{[(len(h.data), repr(e), round(dt, 2)) for h, (e, dt) in zip(handles, results)]}, "
              f"{st.get('dsfs_fallback_secondary_requests_total', 0) - base:.0f} "
              f"share requests, {time.monotonic() - t_down:.1f}s in all")
        for k, h, (err, _) in zip(keys, handles, results):
            self.assertIsNone(err, f"{k}: {err!r}")
            self.assertTrue(bytes(h.data) == self.obs[k][0],
                            f"{k}: wrong bytes across the failover")
        # Share reads of proven copies: the failover's, and those of two
        # sources at once (fallback_parallel=on), which may serve a block
        # while OBS is down before the circuit opens.
        parallel = fu.counter_by_source(
            mnt, "dsfs_parallel_requests_total").get("share", 0)
        self.assertGreaterEqual(
            st.get("dsfs_fallback_secondary_requests_total", 0) - base +
            parallel - parallel_base, 4,
            "the share served fewer blocks than the node lacked")
        self.assertEqual(len(fu.log_lines(log, "is not proven")), 0)
        # Two sources at once may have served every missing block from the
        # share, so the reads alone need not have asked OBS anything; a
        # lookup of a new name does, and opens the circuit.
        os.path.exists(os.path.join(mnt, "b", "not-there-after-obs-down"))
        fu.wait_log(log, "fallback: OBS unavailable", 5)

    def test_b2_background_proof(self):
        """Without the xattr: once OBS has answered for a file (open), the
        background prover proves its share copy (dsfs_share_proven_total
        goes up); then a read pinned to the OBS version continues from the
        share after OBS goes down, exact.

        Fails today: no dsfs_share_proven_total counter."""
        key = "e/background.bin"
        mnt, log = self.mount_share(self.new_cache_dir())
        h = self.open_pinned(mnt, key, MiB)
        t0 = time.monotonic()
        harness.wait_until(
            lambda: fu.counter(mnt, "dsfs_share_proven_total") >= 1, 30, 0.1,
            "dsfs_share_proven_total >= 1 (background proof)")
        print(f"\nbackground proof of {len(self.obs[key][0]) >> 20} MiB done "
              f"{time.monotonic() - t0:.2f}s after the open")
        self.obs_down()
        err, dt = self.read_rest_bounded(h)
        self.assertIsNone(err, f"{err!r} after {dt:.1f}s")
        self.assertTrue(bytes(h.data) == self.obs[key][0], "wrong bytes")

    # ------------------------------------------------------------ c

    def test_c_unproven_copies_eio_for_pinned_handles(self):
        """Same-size copies with other bytes, single-part and multipart:
        the prove xattr reports both as differs; a handle pinned to the OBS
        version reads what the node holds, then gets EIO within 20 s (not
        the share's bytes), with an 'is not proven' log line.

        Fails today: no prove xattr; the pinned handles were served the
        share's bytes (only the size was compared)."""
        mnt, log = self.mount_share(self.new_cache_dir())
        verdicts, totals = self.prove(os.path.join(mnt, "c"))
        keys = ("c/single.bin", "c/multi.bin")
        self.assertEqual({k: verdict_of(verdicts, k) for k in keys},
                         dict.fromkeys(keys, "differs"))
        self.assertEqual(totals, {"total": 2, "proven": 0, "differs": 2,
                                  "missing": 0, "unprovable": 0})
        self.assertGreaterEqual(fu.counter(mnt, "dsfs_share_differs_total"), 2)
        handles = [self.open_pinned(mnt, k, 4 * MiB) for k in keys]
        self.obs_down()
        results = [self.read_rest_bounded(h) for h in handles]
        print(f"\nunproven: pinned reads after OBS down: "
              f"{[(len(h.data), repr(e), round(dt, 2)) for h, (e, dt) in zip(handles, results)]}")
        for k, h, (err, dt) in zip(keys, handles, results):
            self.assert_eio_never_share_bytes(k, h, err, dt)
        fu.wait_log(log, "is not proven", 5)
        print(f"'is not proven' lines: "
              f"{fu.log_lines(log, 'is not proven')}")

    # ------------------------------------------------------------ d

    def test_d_proof_persists_across_remount(self):
        """A proof made through the xattr is kept in cache_dir: after a
        remount with proof_rate=0 (no background proofs), a handle pinned
        to the OBS version continues from the share after OBS goes down,
        and a new open during the outage reads OBS's bytes; an identical
        copy never proven (the control) gets EIO instead.

        Fails today: no proof_rate= option, no prove xattr."""
        proven, control = "d/proven.bin", "d/control.bin"
        cache = self.new_cache_dir()
        mnt, _ = self.mount_share(cache, "proof_rate=0")
        self.assertEqual(os.stat(os.path.join(mnt, control)).st_size,
                         len(self.obs[control][0]))
        verdicts, totals = self.prove(os.path.join(mnt, proven))  # a file
        self.assertEqual(verdict_of(verdicts, proven), "proven")
        self.assertEqual(totals["total"], 1)
        self.assertEqual(totals["proven"], 1)
        self.unmount_now(mnt)

        t0 = time.monotonic()
        mnt, log = self.mount_share(cache, "proof_rate=0")
        print(f"\nremount {time.monotonic() - t0:.2f}s")
        hp = self.open_pinned(mnt, proven, MiB)
        hc = self.open_pinned(mnt, control, MiB)
        self.obs_down()
        err_p, dt_p = self.read_rest_bounded(hp)
        err_c, dt_c = self.read_rest_bounded(hc)
        print(f"persisted proof: proven handle {err_p!r} {dt_p:.2f}s, "
              f"control handle {len(hc.data)} bytes then {err_c!r} after "
              f"{dt_c:.2f}s")
        self.assertIsNone(err_p, f"the persisted proof was not used: "
                          f"{err_p!r}")
        self.assertTrue(bytes(hp.data) == self.obs[proven][0], "wrong bytes")
        self.assert_eio_never_share_bytes(control, hc, err_c, dt_c)
        time.sleep(STAT_TTL + 0.5)
        got, err, dt = fu.call_with_deadline(
            lambda: read_direct_bytes(os.path.join(mnt, proven)), 60)
        self.assertIsNone(err, f"new open during the outage: {err!r}")
        self.assertTrue(got == self.obs[proven][0], "new open: wrong bytes")


if __name__ == "__main__":
    unittest.main()
