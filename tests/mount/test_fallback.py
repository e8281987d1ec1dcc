"""Fault tolerance and the SFS fallback (fallback=DIR), mounted against
s3rver behind scripts/s3proxy.py, whose faults and modes are switched at
run time through its control API.

The share is a local directory holding the same files as the bucket (plus
the symlinks of test_8 and the other copy of test_7, made by those tests).
A share file is served as the OBS version only once proven to hold its
bytes (the user.dsfs.prove xattr, or the background prover): the tests
that continue a read across the failover prove the file first. Assertions are about behaviour; the only time bounds
are the explicit, generous deadlines (failover, recovery, EIO, read() call
duration, mount failure), derived from the configuration below; the
measured numbers are printed.

Environment (besides harness.py's):
  DSFS_TEST_FB_SHARD_MB  size of each of the 4 shards (default 128; 32 when
                         DSFS_SANITIZER_LOG_DIR is set, a sanitizer run)
  DSFS_TEST_FULL=1       4 x 1 GiB shards (the size of real model shards)
  DSFS_TEST_KEEP_LOGS    a directory: each mount's log is copied there
  DSFS_TEST_FB_DBGLEVEL  the mounts' dbglevel (default info)
"""

import errno
import hashlib
import mmap
import os
import re
import shutil
import time
import unittest

import fallback_util as fu
import harness
from harness import MiB

NSHARDS = 4
# Configuration the bounds are derived from (common/config.h S3Config and
# FallbackConfig defaults, unless a test mounts with other values).
FIRST_BYTE = 2.0        # s: first_byte_timeout=, an answer not started is cut
RETRIES = 4             # retries=: attempts after the first
RETRY_CAP = 3.0         # s: the largest backoff between two attempts
PROBE_INTERVAL = 2.0    # s: fallback_probe_interval= used by these tests
SLACK = 10.0            # s: loaded 2-core machine


def shard_bytes():
    if os.environ.get("DSFS_TEST_FULL") == "1":
        return 1024 * MiB
    # A sanitizer build (scripts/test.sh --sanitize sets the log dir) reads
    # several times slower: smaller shards by default there.
    default = "32" if os.environ.get("DSFS_SANITIZER_LOG_DIR") else "128"
    return int(os.environ.get("DSFS_TEST_FB_SHARD_MB", default)) * MiB


class FallbackTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.share = os.path.join(cls.tmp, "share")
        os.makedirs(os.path.join(cls.share, "shards"))
        t0 = time.monotonic()
        cls.shard_size = shard_bytes() + 4321  # not block aligned
        cls.shard_sha = []
        for i in range(NSHARDS):
            p = os.path.join(cls.share, "shards", f"shard-{i}.bin")
            cls.shard_sha.append(
                harness.write_random_file(p, cls.shard_size, 100 + i))
            cls.s3.put(cls.BUCKET, f"shards/shard-{i}.bin", file=p)
        # Small objects, in the bucket and the share alike.
        cls.small = {"small/a.bin": harness.rand_bytes(7, MiB + 3),
                     "small/b.bin": harness.rand_bytes(8, 2 * MiB + 5),
                     "real.txt": b"a regular object\n"}
        for key, data in cls.small.items():
            cls.put_both(key, data)
        print(f"setup: {NSHARDS} x {cls.shard_size >> 20} MiB written and "
              f"uploaded in {time.monotonic() - t0:.1f}s")
        cls.proxy = fu.FaultProxy(cls.server.port,
                                  os.path.join(cls.tmp, "proxy.log"))
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)

    @classmethod
    def put_both(cls, key, data):
        p = os.path.join(cls.share, key)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        cls.s3.put(cls.BUCKET, key, data)

    def setUp(self):
        self.proxy.reset()

    def mount_proxy(self, *opts):
        mnt, log = self.mount_bucket(
            server=self.proxy, extra_opts=opts,
            dbglevel=os.environ.get("DSFS_TEST_FB_DBGLEVEL", "info"))
        keep = os.environ.get("DSFS_TEST_KEEP_LOGS")
        if keep:  # registered first, so it runs after the unmount
            os.makedirs(keep, exist_ok=True)
            self.addCleanup(lambda: os.path.exists(log) and shutil.copy(
                log, os.path.join(keep, f"{self._testMethodName}-"
                                  f"{os.path.basename(log)}")))
        self.addCleanup(self.unmount_now, mnt)
        return mnt, log

    def prove(self, path):
        """Proves path's share copy (user.dsfs.prove, synchronous): a read
        pinned to the OBS version may then continue from the share."""
        t0 = time.monotonic()
        report = os.getxattr(path, "user.dsfs.prove").decode()
        self.assertRegex(report, r"(?m)^proven \S*" +
                         re.escape(os.path.basename(path)) + "$", report)
        print(f"\nprove {os.path.basename(path)}: "
              f"{time.monotonic() - t0:.2f}s")

    def shard_paths(self, mnt, n=NSHARDS):
        return [os.path.join(mnt, "shards", f"shard-{i}.bin")
                for i in range(n)]

    def assert_reads_exact(self, readers, shas):
        for r, sha in zip(readers, shas):
            self.assertIsNone(r.error, f"{r.path}: {r.error!r}")
            self.assertEqual(r.nbytes, self.shard_size, r.path)
            self.assertEqual(r.sha, sha, f"{r.path}: wrong bytes")

    # ------------------------------------------------------------ 1

    def test_1_slowdown_503_four_shards_concurrently(self):
        """10% of GETs answered 503 SlowDown: dsfs retries them; the four
        concurrent readers see no error and exact bytes, and the circuit
        (a fallback is configured) never opens on throttling alone."""
        self.proxy.configure(error_rate=0.1, error_code=503, seed=11)
        mnt, log = self.mount_proxy(f"fallback={self.share}",
                                    "prefetch_whole=")
        t0 = time.monotonic()
        readers = fu.read_concurrently(self.shard_paths(mnt))
        dt = time.monotonic() - t0
        st = fu.mount_stats(mnt)
        injected = self.proxy.stats()["injected"]["error"]
        print(f"\n503: {NSHARDS} x {self.shard_size >> 20} MiB in {dt:.1f}s, "
              f"{injected} x 503 injected, retries "
              f"{st.get('dsfs_s3_retries_total')}, errors "
              f"{st.get('dsfs_s3_errors_total')}")
        self.assert_reads_exact(readers, self.shard_sha)
        self.assertGreater(injected, 0, "the proxy injected no 503")
        self.assertGreater(st.get("dsfs_s3_retries_total", 0), 0)
        self.assertEqual(st.get("dsfs_fallback_open_total", 0), 0,
                         "10% throttling opened the circuit")
        self.assertEqual(st.get("dsfs_fallback_secondary_requests_total", 0),
                         0)
        self.assertEqual(fu.log_lines(log, "fallback: OBS unavailable"), [])

    # ------------------------------------------------------------ 2

    def test_2_resets_and_short_bodies_never_cache_wrong_bytes(self):
        """Resets and short bodies mid-GET: reads complete with exact bytes,
        and the disk cache filled meanwhile holds only exact bytes (a
        remount on a clean proxy reads them back from the cache)."""
        cache = os.path.join(self.tmp, "cache-resets")
        os.makedirs(cache)
        n = 2
        self.proxy.configure(reset_rate=0.1, short_rate=0.1, seed=22)
        mnt, log = self.mount_proxy(f"cache_dir={cache}", "prefetch_whole=")
        readers = fu.read_concurrently(self.shard_paths(mnt, n))
        inj = self.proxy.stats()["injected"]
        retries = fu.counter(mnt, "dsfs_s3_retries_total")
        print(f"\nresets {inj['reset']}, short bodies {inj['short']}, "
              f"retries {retries}")
        self.assert_reads_exact(readers, self.shard_sha[:n])
        self.assertGreater(inj["reset"], 0)
        self.assertGreater(inj["short"], 0)
        self.assertGreater(retries, 0)
        self.unmount_now(mnt)

        self.proxy.reset()
        mnt2, _ = self.mount_proxy(f"cache_dir={cache}", "prefetch_whole=")
        readers = fu.read_concurrently(self.shard_paths(mnt2, n))
        gets = self.proxy.stats()["requests"]["get"]
        hits = fu.counter(mnt2, "dsfs_cache_disk_hits_total")
        print(f"re-read: {hits:.0f} disk-cache hits, {gets} GETs reached the "
              f"proxy")
        self.assert_reads_exact(readers, self.shard_sha[:n])
        # Bytes came from the cache (else this proves nothing about it). Not
        # all of them need to: a full cache-write queue drops blocks.
        self.assertGreater(hits, 0, "the re-read did not use the cache")

    # ------------------------------------------------------------ 3

    def test_3_first_byte_stall_one_in_twenty(self):
        """A 5 s first-byte stall on 1 in 20 GETs: every read completes with
        exact bytes, and no read() call waits out a whole stall: with
        first_byte_timeout=1s a stalled GET is cut after 1 s and retried
        (one more stall on the retry is 1 in 20), so a read() costs ~1-2.5 s
        at worst; the bound is the stall itself minus 0.5 s."""
        stall_s = 5.0
        self.proxy.configure(stall_rate=0.05, stall_ms=stall_s * 1000, seed=1)
        mnt, log = self.mount_proxy("prefetch_whole=", "first_byte_timeout=1s")
        n = 2
        t0 = time.monotonic()
        readers = fu.read_concurrently(self.shard_paths(mnt, n))
        dt = time.monotonic() - t0
        stalls = self.proxy.stats()["injected"]["stall"]
        worst = max(r.max_call for r in readers)
        print(f"\nstall: {n} x {self.shard_size >> 20} MiB in {dt:.1f}s, "
              f"{stalls} stalls injected, longest read() call {worst:.2f}s")
        self.assert_reads_exact(readers, self.shard_sha[:n])
        self.assertGreater(stalls, 0, "the proxy injected no stall")
        self.assertLess(worst, stall_s - 0.5,
                        "a read() waited out a whole first-byte stall")

    # ------------------------------------------------------------ 4

    def test_4_obs_dies_mid_read_then_recovers(self):
        """OBS becomes unreachable (proxy refuses connections) while a shard
        (its share copy proven) is read with no cache: the read completes
        from the share, exact;
        one 'OBS unavailable' line. OBS back: within the probe interval
        (+ slack) an object only OBS has becomes readable; one 'OBS
        recovered' line."""
        mnt, log = self.mount_proxy(
            f"fallback={self.share}",
            f"fallback_probe_interval={int(PROBE_INTERVAL)}s",
            "prefetch_whole=", "readahead_max=8M", "stat_ttl=1s",
            "list_ttl=1s", "negative_ttl=100ms",
            # The failover itself: with two sources at once the proven
            # share may serve every block before OBS is ever asked again
            # (test_two_sources covers that).
            "fallback_parallel=0")
        path = self.shard_paths(mnt)[1]
        self.prove(path)
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
            done = 0
            while done < 8 * MiB:
                b = os.read(fd, MiB)
                h.update(b)
                done += len(b)
            self.assertEqual(fu.counter(
                mnt, "dsfs_fallback_secondary_requests_total"), 0)
            watch = fu.CounterWatch(
                mnt, "dsfs_fallback_secondary_requests_total", 0).start()
            t_down = time.monotonic()
            self.proxy.configure(refuse=True)
            first_read_after = None
            while True:
                b = os.read(fd, MiB)
                if first_read_after is None:
                    first_read_after = time.monotonic() - t_down
                if not b:
                    break
                h.update(b)
                done += len(b)
        finally:
            os.close(fd)
        watch.stop()
        self.assertEqual(done, self.shard_size)
        self.assertEqual(h.hexdigest(), self.shard_sha[1],
                         "the read across the failover returned wrong bytes")
        self.assertIsNotNone(watch.when, "nothing was served from the share")
        failover = watch.when - t_down
        fu.wait_log(log, "fallback: OBS unavailable", 10)
        print(f"\nfailover: first share request {failover:.2f}s after OBS "
              f"went down (first read() returned after "
              f"{first_read_after:.2f}s)")

        # An object only OBS has: invisible while on the share.
        fresh = harness.rand_bytes(44, 3 * MiB + 1)
        self.s3.put(self.BUCKET, "only-obs.bin", fresh)
        fresh_path = os.path.join(mnt, "only-obs.bin")
        self.assertErrno(errno.ENOENT, os.stat, fresh_path)

        t_up = time.monotonic()
        self.proxy.configure(refuse=False)
        bound = PROBE_INTERVAL + SLACK
        got = None
        while time.monotonic() - t_up < bound:
            try:
                got = fu.read_file(fresh_path)
                break
            except OSError:
                time.sleep(0.05)
        recovery = time.monotonic() - t_up
        print(f"recovery: OBS-only object readable {recovery:.2f}s after OBS "
              f"came back (probe interval {PROBE_INTERVAL}s)")
        self.assertIsNotNone(got, f"not back on OBS within {bound}s")
        self.assertEqual(got, fresh)
        fu.wait_log(log, "fallback: OBS recovered", 5)
        time.sleep(PROBE_INTERVAL)  # a second transition would show by now
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS unavailable")),
                         1)
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS recovered")), 1)
        st = fu.mount_stats(mnt)
        self.assertEqual(st.get("dsfs_fallback_open_total"), 1)
        self.assertEqual(st.get("dsfs_fallback_close_total"), 1)
        self.s3.delete(self.BUCKET, "only-obs.bin")

    def test_4b_obs_blackholed_mid_read(self):
        """OBS stops answering (connections accepted, requests never
        answered) while a shard (its share copy proven) is read (O_DIRECT,
        no cache): each attempt
        is cut by the first-byte deadline and retried; the circuit opens
        once `fallback_threshold` requests have failed that way, within
        (retries + 1) x (first-byte deadline + largest backoff) + slack, and
        no read() call blocks longer than that; the read completes from the
        share, exact, with no error; one 'OBS unavailable' line; once OBS
        answers again, one 'OBS recovered' line within the probe interval
        + slack.

        The failover itself: with two sources at once (fallback_parallel=on)
        the proven copy would serve these reads and OBS's stall would be
        hedged, never opening the circuit (test_two_sources)."""
        mnt, log = self.mount_proxy(
            f"fallback={self.share}",
            f"fallback_probe_interval={int(PROBE_INTERVAL)}s",
            "prefetch_whole=", "readahead_max=8M", "fallback_parallel=off")
        path = self.shard_paths(mnt)[3]
        self.prove(path)
        bound = (RETRIES + 1) * (FIRST_BYTE + RETRY_CAP) + SLACK
        h = hashlib.sha256()
        longest = 0.0
        done = 0
        buf = mmap.mmap(-1, MiB)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        watch = fu.CounterWatch(mnt, "dsfs_fallback_secondary_requests_total",
                                0)
        try:
            for _ in range(8):
                got = os.readv(fd, [buf])
                h.update(buf[:got])
                done += got
            watch.start()
            t_down = time.monotonic()
            self.proxy.configure(blackhole=True)

            def rest():
                nonlocal longest, done
                while True:
                    t0 = time.monotonic()
                    got = os.readv(fd, [buf])
                    longest = max(longest, time.monotonic() - t0)
                    if not got:
                        return
                    h.update(buf[:got])
                    done += got

            _, err, dt = fu.call_with_deadline(rest, 2 * bound + 30)
        finally:
            os.close(fd)
            buf.close()
        if err is not None:  # let the circuit open anyway, to measure it
            harness.wait_until(lambda: watch.when is not None, bound,
                               0.2, "the circuit to open")
        watch.stop()
        failover = None if watch.when is None else watch.when - t_down
        print(f"\nblackhole: read {err!r} after {done >> 20} MiB; first "
              f"share request {failover}s after OBS stopped answering "
              f"(bound {bound}s); longest read() {longest:.1f}s; rest of the "
              f"read {dt:.1f}s")
        fu.wait_log(log, "fallback: OBS unavailable", 10)

        t_up = time.monotonic()
        self.proxy.configure(blackhole=False)
        fu.wait_log(log, "fallback: OBS recovered", PROBE_INTERVAL + SLACK)
        print(f"blackhole recovery: 'OBS recovered' logged within "
              f"{time.monotonic() - t_up:.1f}s")
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS unavailable")),
                         1)
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS recovered")), 1)
        self.assertIsNotNone(failover, "nothing was served from the share")
        self.assertLess(failover, bound)
        self.assertIsNone(err, "the read failed although the share has the "
                          "file")
        self.assertLess(longest, bound, "a read() blocked past the failover")
        self.assertEqual((h.hexdigest(), done),
                         (self.shard_sha[3], self.shard_size))

    def test_4c_obs_failing_500_served_from_share(self):
        """OBS is up but fails every GET (500 InternalError, after dsfs's
        retries): 'failing' like 'unreachable' must mean reads of a proven
        share copy are served from the share, with no application error,
        byte-identical. Read with O_DIRECT so the kernel does not hide a
        FUSE read error by reading the page again.

        Known bug: FallbackStore::Get returns a primary-down failure to the
        caller while the consecutive-failure count is below
        fallback_threshold (`if (!OnPrimaryFailure(...)) return r;`), so the
        first reads fail with EIO although the share has the file.

        The failover itself, as 4b: fallback_parallel=off."""
        mnt, log = self.mount_proxy(
            f"fallback={self.share}",
            f"fallback_probe_interval={int(PROBE_INTERVAL)}s",
            "prefetch_whole=", "readahead_max=8M", "fallback_parallel=off")
        path = self.shard_paths(mnt)[0]
        self.prove(path)
        self.proxy.configure(error_rate=1.0, error_code=500)
        res, err, dt = fu.call_with_deadline(lambda: fu.read_direct(path),
                                             120)
        st = fu.mount_stats(mnt)
        print(f"\nOBS failing every GET: {err!r} after {dt:.1f}s, open_total "
              f"{st.get('dsfs_fallback_open_total')}, secondary requests "
              f"{st.get('dsfs_fallback_secondary_requests_total')}")
        self.assertIsNone(err, "an application read failed although the "
                          "share has the file")
        self.assertEqual(res, (self.shard_sha[0], self.shard_size))
        self.assertEqual(st.get("dsfs_fallback_open_total"), 1)
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS unavailable")),
                         1)

    # ------------------------------------------------------------ 5

    def test_5a_mount_while_obs_down_with_fallback(self):
        """OBS down at mount time with fallback=: the mount succeeds (circuit
        open from the start) and reads come from the share."""
        self.proxy.configure(refuse=True)
        t0 = time.monotonic()
        mnt, log = self.mount_proxy(f"fallback={self.share}",
                                    "prefetch_whole=")
        print(f"\nmount with OBS down took {time.monotonic() - t0:.2f}s")
        readers = fu.read_concurrently(self.shard_paths(mnt)[2:3])
        self.assert_reads_exact(readers, self.shard_sha[2:3])
        self.assertEqual(fu.read_file(os.path.join(mnt, "small", "a.bin")),
                         self.small["small/a.bin"])
        st = fu.mount_stats(mnt)
        self.assertGreater(st.get("dsfs_fallback_secondary_requests_total", 0),
                           0)
        self.assertEqual(st.get("dsfs_fallback_open_total"), 1)
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS unavailable")),
                         1)
        self.assertEqual(self.proxy.stats()["requests"]["get"], 0)

    def test_5b_mount_while_obs_down_without_fallback_fails(self):
        """Without fallback= the same mount fails: exit 1, 'cannot connect',
        within ~15 s."""
        self.proxy.configure(refuse=True)
        mnt = self.new_mountpoint()
        opts = self.base_opts(self.proxy)
        res = harness.mount(self.BUCKET, mnt, opts, check=False, timeout=60)
        if harness.is_mounted(mnt):
            self.addCleanup(harness.unmount, mnt)
        print(f"\nmount without fallback, OBS refusing: {res}")
        self.assertEqual(res.returncode, 1, res)
        self.assertIn("cannot connect", res.stderr.lower())
        self.assertFalse(harness.is_mounted(mnt))
        self.assertLess(res.elapsed, 15 + SLACK / 2)

    def test_5c_mount_while_obs_blackholed(self):
        """OBS accepts connections but never answers at mount time: without
        fallback= the mount fails (exit 1) within ~15 s; with it, the mount
        succeeds on the share."""
        self.proxy.configure(blackhole=True)
        mnt = self.new_mountpoint()
        res = harness.mount(self.BUCKET, mnt, self.base_opts(self.proxy),
                            check=False, timeout=60)
        if harness.is_mounted(mnt):
            self.addCleanup(harness.unmount, mnt)
        print(f"\nmount without fallback, OBS black-holed: {res}")
        self.assertEqual(res.returncode, 1, res)
        self.assertFalse(harness.is_mounted(mnt))
        self.assertLess(res.elapsed, 15 + SLACK / 2)
        t0 = time.monotonic()
        mnt, log = self.mount_proxy(f"fallback={self.share}")
        print(f"mount with fallback, OBS black-holed: "
              f"{time.monotonic() - t0:.1f}s")
        self.assertEqual(fu.read_file(os.path.join(mnt, "small", "b.bin")),
                         self.small["small/b.bin"])
        self.assertEqual(len(fu.log_lines(log, "fallback: OBS unavailable")),
                         1)

    # ------------------------------------------------------------ 6

    def test_6_no_fallback_eio_then_recovers_without_remount(self):
        """OBS goes down under a mount without fallback: reads fail with EIO
        within a bound and never hang; when OBS is back, reads work again
        in the same mount (once the probe, every fallback_probe_interval,
        has seen OBS answer)."""
        mnt, log = self.mount_proxy(
            "prefetch_whole=", "stat_ttl=1s", "list_ttl=1s",
            "negative_ttl=100ms",
            f"fallback_probe_interval={int(PROBE_INTERVAL)}s")
        a = os.path.join(mnt, "small", "a.bin")
        b = os.path.join(mnt, "small", "b.bin")
        self.assertEqual(fu.read_file(a), self.small["small/a.bin"])
        self.assertEqual(os.stat(b).st_size, len(self.small["small/b.bin"]))
        self.proxy.configure(refuse=True)
        time.sleep(1.5)  # past stat_ttl: nothing is answered from memory
        # retries=4 with backoff capped at 3 s: a few seconds per request,
        # and a read may need a HEAD then a GET.
        bound = 2 * (RETRIES + 1) * RETRY_CAP + SLACK
        times = []
        for p in (a, b):
            _, err, dt = fu.call_with_deadline(lambda p=p: fu.read_file(p),
                                               bound)
            times.append(dt)
            self.assertIsInstance(err, OSError, f"{p}: read succeeded?")
            self.assertEqual(err.errno, errno.EIO, f"{p}: {err!r}")
        print(f"\nno fallback, OBS refusing: EIO after "
              f"{', '.join(f'{t:.2f}s' for t in times)}")
        t_up = time.monotonic()
        self.proxy.configure(refuse=False)
        got = None
        while time.monotonic() - t_up < PROBE_INTERVAL + SLACK:
            try:
                got = fu.read_file(a)
                break
            except OSError:
                time.sleep(0.1)
        print(f"readable again {time.monotonic() - t_up:.2f}s after OBS "
              f"came back")
        self.assertEqual(got, self.small["small/a.bin"])
        self.assertEqual(fu.read_file(b), self.small["small/b.bin"])

    def test_6b_no_fallback_blackhole_eio_bound(self):
        """Same with OBS black-holed (requests never answered), default
        retries: every attempt is cut by the first-byte deadline, so a read
        (HEAD then GET) fails with EIO within 2 x (retries + 1) x
        (first-byte deadline + largest backoff) + slack, never hangs; reads
        work again once OBS answers."""
        mnt, log = self.mount_proxy("prefetch_whole=", "stat_ttl=1s",
                                    "list_ttl=1s", "negative_ttl=100ms")
        b = os.path.join(mnt, "small", "b.bin")
        self.assertEqual(os.stat(b).st_size, len(self.small["small/b.bin"]))
        self.proxy.configure(blackhole=True)
        time.sleep(1.5)
        bound = 2 * (RETRIES + 1) * (FIRST_BYTE + RETRY_CAP) + SLACK
        _, err, dt = fu.call_with_deadline(lambda: fu.read_file(b), bound)
        print(f"\nno fallback, OBS black-holed: {err!r} after {dt:.1f}s "
              f"(bound {bound}s)")
        self.assertIsInstance(err, OSError)
        self.assertEqual(err.errno, errno.EIO)
        self.proxy.configure(blackhole=False)
        self.assertEqual(fu.read_file(b), self.small["small/b.bin"])

    # ------------------------------------------------------------ 7

    def test_7_share_copy_of_another_size(self):
        """The share's copy has another size (and other bytes) than OBS's
        version: it is another version. A handle opened while OBS was
        healthy (pinned to the OBS version) reads OBS bytes, then gets EIO
        past what the node holds, with one 'is not proven' line, never share
        bytes; a new open during the outage serves the share's own size and
        bytes, the same on every read."""
        key = "mismatch.bin"
        obs = harness.rand_bytes(70, 24 * MiB)
        share = harness.rand_bytes(71, 24 * MiB + 4096)
        self.s3.put(self.BUCKET, key, obs)
        with open(os.path.join(self.share, key), "wb") as f:
            f.write(share)
        self.addCleanup(os.unlink, os.path.join(self.share, key))
        self.addCleanup(self.s3.delete, self.BUCKET, key)
        mnt, log = self.mount_proxy(
            f"fallback={self.share}", "prefetch_whole=", "readahead_max=4M",
            "stat_ttl=1s", "list_ttl=1s")
        path = os.path.join(mnt, key)
        self.assertEqual(os.stat(path).st_size, len(obs))
        got = bytearray()
        buf = mmap.mmap(-1, MiB)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)

        def rest():
            while True:
                n = os.readv(fd, [buf])
                if not n:
                    return
                got.extend(buf[:n])

        try:
            for _ in range(4):
                got.extend(buf[:os.readv(fd, [buf])])
            self.proxy.configure(refuse=True)
            _, err, dt = fu.call_with_deadline(rest, 60)
        finally:
            os.close(fd)
            buf.close()
        self.assertEqual(bytes(got), obs[:len(got)],
                         "bytes other than OBS's were returned")
        self.assertIsInstance(err, OSError,
                              "the whole file was read after the switch")
        self.assertEqual(err.errno, errno.EIO)
        self.assertLess(len(got), len(obs))
        self.assertLess(dt, 20, f"EIO only after {dt:.1f}s")
        fu.wait_log(log, "is not proven", 5)
        # The fallback's own line, once per key and version (each failed
        # read also logs its error, which quotes the same words).
        self.assertEqual(len([
            line for line in fu.log_lines(log, "is not proven")
            if "fallback: " in line and key in line]), 1)

        time.sleep(1.2)  # past stat_ttl: a new lookup, on the share
        self.assertEqual(os.stat(path).st_size, len(share))
        for _ in range(2):
            data, err2, _ = fu.call_with_deadline(lambda: fu.read_file(path),
                                                  60)
            self.assertIsNone(err2, f"new open during the outage: {err2!r}")
            self.assertTrue(data == share, "a new open during the outage "
                            "did not read the share's own bytes")
        print(f"\nanother size: {len(got) >> 20} MiB of OBS bytes, then "
              f"{err!r} after {dt:.2f}s; a new open read the share's "
              f"{len(share)} bytes")

    # ------------------------------------------------------------ 8

    def test_8_hostile_share_entries_never_followed(self):
        """The share holds a symlink to /etc/passwd named like an object the
        bucket has, and a symlink to /etc named like a bucket 'directory':
        neither is followed, with OBS up or down; listings in fallback show
        no /etc entries."""
        obs_pw = b"obs copy of passwd.txt\n"
        obs_cfg = b"obs copy of cfg/passwd\n"
        self.s3.put(self.BUCKET, "passwd.txt", obs_pw)
        self.s3.put(self.BUCKET, "cfg/passwd", obs_cfg)
        self.addCleanup(self.s3.delete, self.BUCKET, "passwd.txt")
        self.addCleanup(self.s3.delete, self.BUCKET, "cfg/passwd")
        for name, target in (("passwd.txt", "/etc/passwd"), ("cfg", "/etc")):
            link = os.path.join(self.share, name)
            os.symlink(target, link)
            self.addCleanup(os.unlink, link)
        with open("/etc/passwd", "rb") as f:
            etc_passwd = f.read()
        etc_names = set(os.listdir("/etc"))

        mnt, log = self.mount_proxy(f"fallback={self.share}", "stat_ttl=1s",
                                    "list_ttl=1s", "negative_ttl=100ms")
        pw = os.path.join(mnt, "passwd.txt")
        cfgpw = os.path.join(mnt, "cfg", "passwd")
        self.assertEqual(fu.read_file(pw), obs_pw)
        self.assertEqual(fu.read_file(cfgpw), obs_cfg)

        self.proxy.configure(refuse=True)
        time.sleep(1.5)  # past the TTLs: the share is asked

        def read_or_error(p):
            try:
                return fu.read_file(p)
            except OSError as e:
                return e

        for p, obs_bytes in ((pw, obs_pw), (cfgpw, obs_cfg)):
            r = read_or_error(p)
            if isinstance(r, bytes):
                self.assertEqual(r, obs_bytes, f"{p}: {r[:80]!r}")
                self.assertNotIn(b"root:", r)
        root = set(os.listdir(mnt))
        self.assertIn("real.txt", root, "root listing not from the share")
        self.assertGreater(
            fu.counter(mnt, "dsfs_fallback_secondary_requests_total"), 0)
        leaked = (root - {"shards", "small", "real.txt", "cfg",
                          "passwd.txt"}) & etc_names
        self.assertEqual(leaked, set(), f"/etc entries in the root: {leaked}")
        # The share's cfg is a symlink, refused: no such directory there.
        self.assertErrno(errno.ENOENT, os.listdir, os.path.join(mnt, "cfg"))
        # A name only /etc has, through the symlinked directory.
        probe = next(n for n in ("hostname", "os-release", "hosts", "fstab")
                     if n in etc_names)
        r = read_or_error(os.path.join(mnt, "cfg", probe))
        self.assertIsInstance(r, OSError, f"cfg/{probe} was read: {r!r:.80}")
        self.assertNotEqual(read_or_error(pw), etc_passwd)


if __name__ == "__main__":
    unittest.main()
