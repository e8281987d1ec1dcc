"""dsfsctl stats against a real mount: the counters agree with a known
read (bytes by tier on a cold read and on a re-read after remount from the
disk cache), --json agrees with --prometheus, --watch redraws with rates
and stops on SIGINT, and the exit codes for a directory outside any dsfs
mount, a missing path and a dead mount. Times are generous hang bounds."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import cache_util as cu
import harness
from harness import MiB

BLOCK = 4 * MiB
SIZE = 6 * MiB + 12345  # two blocks, the second short


def dsfsctl_bin():
    path = os.environ.get("DSFSCTL_BIN") or os.path.join(
        os.path.dirname(harness.dsfs_bin()), "ctl", "dsfsctl")
    if not os.path.exists(path):
        raise unittest.SkipTest(f"dsfsctl not found at {path} (set DSFSCTL_BIN)")
    return path


def ctl(*args, timeout=60):
    return subprocess.run([dsfsctl_bin(), *args], capture_output=True,
                          text=True, timeout=timeout)


def prometheus_series(text):
    """{series key as written: value} of Prometheus text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def tiers(st):
    return ", ".join(f"{t} {st.get(k, 0):.0f}" for t, k in (
        ("OBS", "dsfs_s3_bytes_read_total"),
        ("disk", "dsfs_cache_disk_bytes_read_total"),
        ("read-ahead", "dsfs_readahead_bytes_served_total"))) + f" of {SIZE}"


class CtlStatsTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfsctl talks to dsfs mounts only")
        dsfsctl_bin()
        path = os.path.join(cls.tmp, "model.bin")
        cls.sha = harness.write_random_file(path, SIZE, 7)
        cls.s3.put(cls.BUCKET, "model.bin", file=path)

    def json_stats(self, mnt):
        r = ctl("stats", mnt, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def read_model(self, mnt):
        self.assertEqual(harness.sha256_file(os.path.join(mnt, "model.bin")),
                         self.sha)

    def test_01_tiers_on_a_cold_read_and_a_remount(self):
        cdir = os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp), "c")
        opts = [f"cache_dir={cdir}", "cache_size=1G", "prefetch_whole="]
        mnt, _ = self.mount_bucket(extra_opts=opts)
        self.read_model(mnt)
        cold = self.json_stats(mnt)
        print("cold:", tiers(cold))
        self.assertEqual(cold["dsfs_s3_bytes_read_total"], SIZE)
        self.assertEqual(cold["dsfs_cache_disk_bytes_read_total"], 0)
        self.assertEqual(cold["dsfs_cache_disk_on"], 1)
        self.assertGreaterEqual(cold['dsfs_s3_requests_total{op="GET"}'], 2)
        self.assertEqual(cold['dsfs_s3_request_seconds_count{op="GET"}'],
                         cold['dsfs_s3_requests_total{op="GET"}'])
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= 2, 60, 0.1,
                           "both blocks on disk")
        table = ctl("stats", mnt)
        self.assertEqual(table.returncode, 0, table.stderr)
        for word in ("reads by tier", "OBS", "requests", "p99", "GET"):
            self.assertIn(word, table.stdout)
        self.unmount_now(mnt)

        mnt, _ = self.mount_bucket(extra_opts=opts)
        self.read_model(mnt)
        warm = self.json_stats(mnt)
        print("remount:", tiers(warm))
        self.assertEqual(warm["dsfs_s3_bytes_read_total"], 0)
        # Every byte from disk. The counter counts block reads from disk,
        # and the first block may be read twice (the demand read's cache
        # lookup races the read-ahead that open starts): at least SIZE.
        self.assertGreaterEqual(warm["dsfs_cache_disk_bytes_read_total"], SIZE)
        self.assertLessEqual(warm["dsfs_cache_disk_bytes_read_total"], SIZE + BLOCK)
        self.unmount_now(mnt)

    def test_02_json_agrees_with_prometheus(self):
        mnt, _ = self.mount_bucket()
        self.read_model(mnt)
        cu.wait_settled(mnt, ["dsfs_s3_requests_total"])
        prom = ctl("stats", mnt, "--prometheus")
        self.assertEqual(prom.returncode, 0, prom.stderr)
        self.assertIn('# TYPE dsfs_s3_request_seconds histogram', prom.stdout)
        js = self.json_stats(mnt)
        series = prometheus_series(prom.stdout)
        self.assertEqual(set(js), set(series))
        for key in ("dsfs_s3_bytes_read_total", 'dsfs_s3_requests_total{op="GET"}',
                    'dsfs_s3_request_seconds_count{op="GET"}',
                    'dsfs_s3_request_seconds_bucket{op="GET",le="+Inf"}'):
            self.assertEqual(js[key], series[key], key)
        self.assertEqual(js["dsfs_s3_bytes_read_total"], SIZE)
        r = ctl("stats", mnt, "--json", "--prometheus")
        self.assertEqual(r.returncode, 2, "--json and --prometheus together")

    def test_03_watch_redraws_with_rates_until_sigint(self):
        mnt, _ = self.mount_bucket()
        p = subprocess.Popen([dsfsctl_bin(), "stats", mnt, "--watch", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            time.sleep(0.5)
            self.read_model(mnt)
            time.sleep(2.0)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        frames = out.count(f"dsfs stats {mnt} at ")
        print(f"watch: {frames} frames in ~2.5 s")
        self.assertEqual(p.returncode, 0, err)
        self.assertGreaterEqual(frames, 2, out)
        self.assertIn("rate/s", out)
        self.assertRegex(out, r"\d B/s|iB/s")

    def test_04_exit_codes(self):
        plain = tempfile.mkdtemp(dir=self.tmp)
        r = ctl("stats", plain)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("not a dsfs mount", r.stderr)
        r = ctl("stats", os.path.join(plain, "missing"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no such file", r.stderr)

        mnt, _ = self.mount_bucket()
        pid = cu.daemon_pid(mnt)
        os.kill(pid, signal.SIGKILL)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}")
                           or cu._is_zombie(pid), 30, 0.1, "daemon to die")
        r = ctl("stats", mnt)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("daemon", r.stderr)
        self.assertIn(f"fusermount3 -u {mnt}", r.stderr)
        subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        self.unmount_now(mnt)
        self.assertFalse(harness.is_mounted(mnt))


if __name__ == "__main__":
    unittest.main()
