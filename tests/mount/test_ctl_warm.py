"""dsfsctl warm against a real mount: a directory of several files goes into
the disk cache (every block on disk when warm returns), a second warm skips
them all, a re-read after remount makes no OBS read, a warm over the cache
cap warns before the first byte, an interrupted warm resumes (only the
missing blocks are fetched) and redraws its progress on a pseudo-terminal;
dsfsctl verify without fallback= and both commands outside dsfs give their
errors. Times are hang bounds only."""

import json
import os
import re
import signal
import subprocess
import tempfile
import unittest

import cache_util as cu
import harness
from harness import MiB
from test_ctl_stats import ctl, dsfsctl_bin

SIZES = [6 * MiB + 12345, 4 * MiB, 100]  # blocks: 2 + 1 + 1
BLOCKS = 4


class CtlWarmTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfsctl talks to dsfs mounts only")
        dsfsctl_bin()
        cls.sha = {}
        for i, size in enumerate(SIZES):
            path = os.path.join(cls.tmp, f"f{i}")
            cls.sha[f"f{i}"] = harness.write_random_file(path, size, 11 + i)
            cls.s3.put(cls.BUCKET, f"model/f{i}", file=path)

    def stats(self, mnt):
        r = ctl("stats", mnt, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_01_warm_a_dir_then_skip_then_remount_reads_no_obs(self):
        cdir = os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp), "c")
        opts = [f"cache_dir={cdir}", "cache_size=1G", "prefetch_whole="]
        mnt, _ = self.mount_bucket(extra_opts=opts)
        r = ctl("warm", os.path.join(mnt, "model"), "--jobs", "4", timeout=300)
        print(r.stdout, r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{BLOCKS} blocks fetched, 0 skipped", r.stdout)
        self.assertNotIn("warning", r.stderr)
        self.assertIn("warm ", r.stderr)  # plain progress lines (no tty)
        self.assertEqual(len(cu.block_files(cdir)), BLOCKS)
        st = self.stats(mnt)
        self.assertEqual(st["dsfs_s3_bytes_read_total"], sum(SIZES))
        self.assertEqual(st["dsfs_cache_capacity_bytes"], 1024 * MiB)
        r = ctl("warm", os.path.join(mnt, "model"), timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"0 blocks fetched, {BLOCKS} skipped", r.stdout)
        self.assertEqual(self.stats(mnt)["dsfs_s3_bytes_read_total"], sum(SIZES))
        self.unmount_now(mnt)

        mnt, _ = self.mount_bucket(extra_opts=opts)
        for name, sha in self.sha.items():
            self.assertEqual(harness.sha256_file(os.path.join(mnt, "model", name)), sha)
        st = self.stats(mnt)
        self.assertEqual(st["dsfs_s3_bytes_read_total"], 0)
        self.assertEqual(st.get('dsfs_s3_requests_total{op="GET"}', 0), 0)
        self.unmount_now(mnt)

    def test_02_warm_over_the_cap_warns(self):
        cdir = os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp), "c")
        mnt, _ = self.mount_bucket(extra_opts=[f"cache_dir={cdir}", "cache_size=8M"])
        r = ctl("warm", os.path.join(mnt, "model"), timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr.splitlines()[0], "warning: .* exceed the cache cap")
        self.unmount_now(mnt)

    def test_03_errors(self):
        plain = tempfile.mkdtemp(dir=self.tmp)
        for cmd in ("warm", "verify"):
            r = ctl(cmd, plain)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("not in a dsfs mount", r.stderr)
        mnt, _ = self.mount_bucket()  # no cache_dir=, no fallback=
        r = ctl("warm", os.path.join(mnt, "model"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no disk cache", r.stderr)
        r = ctl("verify", os.path.join(mnt, "model"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("fallback=", r.stderr)
        self.unmount_now(mnt)

    def test_04_verify_proven_differs_missing(self):
        share = tempfile.mkdtemp(prefix="share-", dir=self.tmp)
        os.makedirs(os.path.join(share, "model"))
        with open(os.path.join(self.tmp, "f0"), "rb") as src:
            data = src.read()
        with open(os.path.join(share, "model", "f0"), "wb") as f:
            f.write(data)  # the same bytes: proven
        with open(os.path.join(share, "model", "f1"), "wb") as f:
            f.write(b"x" * SIZES[1])  # same size, other bytes: differs
        # model/f2: no share copy: missing
        mnt, _ = self.mount_bucket(extra_opts=[f"fallback={share}"])
        r = ctl("verify", os.path.join(mnt, "model"), timeout=120)
        print(r.stdout, r.stderr)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = dict(reversed(l.split(None, 1)) for l in r.stdout.splitlines()
                     if l.split(None, 1)[0] in ("proven", "differs", "missing"))
        self.assertEqual(lines, {"model/f0": "proven", "model/f1": "differs",
                                 "model/f2": "missing"})
        r = ctl("verify", os.path.join(mnt, "model", "f0"), timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.unmount_now(mnt)

    def test_05_interrupted_warm_resumes_and_a_tty_shows_bytes_and_rate(self):
        """Through a proxy slowed to 4 MiB/s per connection, a warm of a
        48 MiB object is interrupted (SIGINT) once it has fetched something;
        the next warm fetches only the rest (skipped > 0, fetched + skipped
        = every block, all on disk). On a pseudo-terminal (script -qc) the
        progress line is redrawn in place and shows bytes and a rate."""
        proxy = cu.Proxy(self.server.port, self.tmp)
        self.addCleanup(proxy.stop)
        size, blocks = 48 * MiB, 12
        src = os.path.join(self.tmp, "slow-big")
        harness.write_random_file(src, size, 77)
        s3 = self.server.client()  # a fresh connection (the class's may have idled out)
        self.addCleanup(s3.close)
        s3.put(self.BUCKET, "slow/big", file=src)
        cdir = os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp), "c")
        mnt, _ = self.mount_bucket(
            extra_opts=[f"cache_dir={cdir}", "cache_size=1G", "prefetch_whole="],
            server=proxy)
        proxy.configure(bw_per_conn=4 * MiB)
        path = os.path.join(mnt, "slow", "big")
        p = subprocess.Popen([dsfsctl_bin(), "warm", path, "--jobs", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        harness.wait_until(
            lambda: self.stats(mnt).get("dsfs_s3_bytes_read_total", 0) > 0,
            60, 0.1, "the first warm to fetch something")
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
        self.assertNotEqual(p.returncode, 0, "the first warm was not interrupted")
        cached_after_first = len(cu.block_files(cdir))
        self.assertLess(cached_after_first, blocks, "the first warm finished")

        # Again, on a pseudo-terminal: resumes, redraws its progress line.
        typescript = os.path.join(self.tmp, "warm.typescript")
        r = subprocess.run(
            ["script", "-qefc", f"{dsfsctl_bin()} warm {path}", typescript],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(typescript, encoding="utf-8", errors="replace", newline="") as f:
            tty = f.read()
        m = re.search(r"(\d+) blocks fetched, (\d+) skipped", tty)
        self.assertIsNotNone(m, tty)
        fetched, skipped = int(m.group(1)), int(m.group(2))
        print(f"\ninterrupted after {cached_after_first} of {blocks} blocks; "
              f"the resumed warm fetched {fetched}, skipped {skipped}")
        self.assertGreater(skipped, 0, "the resumed warm refetched everything")
        self.assertEqual(fetched + skipped, blocks)
        self.assertEqual(len(cu.block_files(cdir)), blocks)
        self.assertIn("\r\033[K", tty, "no in-place redraw on a tty")
        self.assertRegex(
            tty, r"warm [0-9.]+ [KMGT]?i?B / [0-9.]+ [KMGT]?i?B +[0-9.]+ [KMGT]?i?B/s")
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
