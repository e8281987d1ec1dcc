"""The Prometheus endpoint: metrics_port= serves /metrics in the text
format that promtool accepts, on loopback unless metrics_addr= says
otherwise; a bad address or a port in use fails the mount with a reason."""

import os
import shutil
import socket
import subprocess
import unittest
import urllib.error
import urllib.request

import harness


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


class MetricsTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfs metrics endpoint")
        cls.s3.put(cls.BUCKET, "small.txt", b"hello dsfs\n")
        cls.port = harness.free_port()
        cls.mnt, cls.log = cls.mount_bucket(
            extra_opts=[f"metrics_port={cls.port}"])
        with open(os.path.join(cls.mnt, "small.txt"), "rb") as f:
            f.read()
        cls.url = f"http://127.0.0.1:{cls.port}/metrics"

    def test_metrics_are_valid_prometheus_text(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian's prometheus package) "
                             "is needed; scripts/setup.sh installs it")
        status, ctype, body = get(self.url)
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        self.assertRegex(body, r'(?m)^dsfs_s3_requests_total\{op="GET"\} [1-9]\d*$')
        r = subprocess.run([promtool, "check", "metrics"], input=body,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_gauges_histograms_and_labels_are_served(self):
        """The families beyond plain counters, each with its TYPE once."""
        _, _, body = get(self.url)
        for family, kind in (("dsfs_s3_request_seconds", "histogram"),
                             ("dsfs_s3_requests_total", "counter"),
                             ("dsfs_readahead_memory_bytes", "gauge"),
                             ("dsfs_readahead_bytes_served_total", "counter"),
                             ("dsfs_fallback_state", "gauge"),
                             ("dsfs_write_dirty_bytes", "gauge")):
            self.assertEqual(body.count(f"# TYPE {family} "), 1, family)
            self.assertIn(f"# TYPE {family} {kind}\n", body)
        self.assertRegex(body, r'(?m)^dsfs_s3_request_seconds_bucket'
                               r'\{op="GET",le="\+Inf"\} [1-9]\d*$')
        self.assertRegex(body, r'(?m)^dsfs_s3_request_seconds_count'
                               r'\{op="GET"\} [1-9]\d*$')
        self.assertRegex(body, r"(?m)^dsfs_fallback_state 0$")

    def test_other_paths_and_methods_are_refused(self):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            get(f"http://127.0.0.1:{self.port}/other")
        self.assertEqual(cm.exception.code, 404)
        req = urllib.request.Request(self.url, data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 405)

    def test_listens_on_loopback_only(self):
        # Not on the machine's other addresses (if it has one).
        addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None,
                                                     socket.AF_INET)}
        others = [a for a in addrs if not a.startswith("127.")]
        for a in others:
            with socket.socket() as s:
                s.settimeout(2)
                self.assertNotEqual(s.connect_ex((a, self.port)), 0,
                                    f"metrics reachable on {a}")
        with open(f"/proc/net/tcp") as f:
            listening = [l.split() for l in f.readlines()[1:]]
        local = [l[1] for l in listening if l[3] == "0A"]
        self.assertIn(f"0100007F:{self.port:04X}", local)

    def test_bad_address_and_busy_port_fail_the_mount(self):
        mnt = self.new_mountpoint()
        r = harness.mount(self.BUCKET, mnt,
                          self.base_opts(None, os.path.join(self.tmp, "bad.log"), "info")
                          + ["metrics_port=9", "metrics_addr=not-an-ip"],
                          check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("metrics_addr", r.stderr)
        self.assertFalse(harness.is_mounted(mnt))
        r = harness.mount(self.BUCKET, mnt,
                          self.base_opts(None, os.path.join(self.tmp, "busy.log"), "info")
                          + [f"metrics_port={self.port}"], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("port in use", r.stderr)
        self.assertFalse(harness.is_mounted(mnt))


if __name__ == "__main__":
    unittest.main()
