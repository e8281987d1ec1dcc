"""S3Store against a real s3rver, without a mount: runs the s3rver suites
of the backends unit binary (tests/unit/backends/s3_store_s3rver_*_test.cc,
skipped there unless DSFS_S3RVER_URL is set) against an s3rver started
here, and fails if any of them skipped or none ran.

  DSFS_BACKENDS_TESTS  the dsfs_backends_tests binary (default: beside
                       DSFS_BIN's build directory, tests/dsfs_backends_tests)
"""

import os
import re
import subprocess
import tempfile
import unittest

import harness


def backends_tests_bin():
    path = os.environ.get("DSFS_BACKENDS_TESTS")
    if not path:
        build = os.path.dirname(os.path.dirname(harness.dsfs_bin()))
        path = os.path.join(build, "tests", "dsfs_backends_tests")
    if not os.access(path, os.X_OK):
        raise harness.HarnessError(f"backends test binary not found at {path}")
    return path


class S3StoreAgainstS3rver(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="dsfs-s3store-")
        self.s3rver = harness.S3rver(self.workdir, buckets=["demo"]).start()
        self.addCleanup(self.s3rver.stop)

    def run_suites(self, pattern, at_least):
        env = dict(os.environ)
        env["DSFS_S3RVER_URL"] = self.s3rver.url()
        env["DSFS_S3RVER_BUCKET"] = "demo"
        proc = subprocess.run(
            [backends_tests_bin(), f"--gtest_filter={pattern}"],
            env=env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=600)
        out = proc.stdout + proc.stderr
        print(out[-4000:])
        self.assertEqual(proc.returncode, 0, out[-4000:])
        self.assertNotIn("[  SKIPPED ]", out)
        m = re.search(r"\[  PASSED  \] (\d+) tests?", out)
        self.assertIsNotNone(m, out[-2000:])
        self.assertGreaterEqual(int(m.group(1)), at_least)

    def test_writes(self):
        # Put/Head/Get with metadata, a 3-part multipart upload, Copy with
        # REPLACE metadata, Delete.
        self.run_suites("S3rverWritesTest.*", 3)

    def test_reads(self):
        # Head, paginated List, ranged and whole Get; access denied; a
        # missing bucket.
        self.run_suites("S3rverOptInTest.*", 3)


if __name__ == "__main__":
    unittest.main()
