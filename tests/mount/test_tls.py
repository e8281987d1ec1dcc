"""TLS: certificates are verified by default; ca_file= adds a trusted CA;
turning verification off needs an explicit option."""

import os
import unittest

import harness


@unittest.skipUnless(harness.is_dsfs(), "dsfs options")
class TlsTest(unittest.TestCase):

    BUCKET = "tls-bucket"

    @classmethod
    def setUpClass(cls):
        harness.require_prereqs()
        cls.san_before = harness.sanitizer_snapshot()
        import shutil
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="dsfs-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.key, cls.cert = harness.make_self_signed_cert(cls.tmp)
        cls.server = harness.S3rver(cls.tmp, [cls.BUCKET],
                                    tls=(cls.key, cls.cert)).start()
        cls.addClassCleanup(cls.server.stop)
        c = cls.server.client()
        c.put(cls.BUCKET, "secret-weights.bin", harness.rand_bytes(9, 300000))
        c.close()
        cls.passwd = harness.write_passwd(os.path.join(cls.tmp, "passwd"))
        cls.mounts = []
        cls.addClassCleanup(cls._cleanup)

    @classmethod
    def _cleanup(cls):
        for m in cls.mounts:
            harness.unmount(m)
        harness.check_sanitizer_reports(cls.san_before)

    def mnt(self):
        import tempfile
        return tempfile.mkdtemp(prefix="mnt-", dir=self.tmp)

    def opts(self, *extra, host="localhost"):
        return [f"url={self.server.url(host)}", "use_path_request_style",
                f"passwd_file={self.passwd}", *extra]

    def check_read(self, mnt):
        with open(os.path.join(mnt, "secret-weights.bin"), "rb") as f:
            self.assertEqual(f.read(), harness.rand_bytes(9, 300000))

    def test_self_signed_refused_by_default(self):
        m = self.mnt()
        r = harness.mount(self.BUCKET, m, self.opts(), check=False)
        if r.returncode == 0:
            self.mounts.append(m)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("certificate", r.stderr.lower())
        self.assertFalse(harness.is_mounted(m))

    def test_accepted_with_ca_file(self):
        for host in ("localhost", "127.0.0.1"):
            m = self.mnt()
            harness.mount(self.BUCKET, m,
                          self.opts(f"ca_file={self.cert}", host=host))
            self.mounts.append(m)
            self.check_read(m)
            harness.unmount(m)

    def test_ca_file_missing(self):
        m = self.mnt()
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        r = harness.mount(self.BUCKET, m, self.opts(f"ca_file={missing}"),
                          check=False)
        if r.returncode == 0:
            self.mounts.append(m)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("dsfs: error:", r.stderr)

    def test_verification_off_explicitly(self):
        for opt in ("ssl_verify=0", "no_check_certificate"):
            m = self.mnt()
            log = os.path.join(self.tmp, f"noverify-{opt}.log")
            harness.mount(self.BUCKET, m, self.opts(opt, f"logfile={log}"))
            self.mounts.append(m)
            self.check_read(m)
            harness.unmount(m)
            with open(log, errors="replace") as f:
                self.assertRegex(f.read().lower(), r"verif|certificate",
                                 "turning TLS verification off must warn")


if __name__ == "__main__":
    unittest.main()
