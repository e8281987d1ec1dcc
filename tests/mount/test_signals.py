"""The daemon's signals: SIGHUP reopens the log file (logrotate) and never
unmounts, SIGUSR1 logs the counters, SIGTERM unmounts cleanly."""

import os
import signal
import time
import unittest

import harness


class SignalsTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfs signals")
        cls.s3.put(cls.BUCKET, "small.txt", b"hello dsfs\n")

    def read_small(self, mnt):
        with open(os.path.join(mnt, "small.txt"), "rb") as f:
            return f.read()

    def test_hup_reopens_the_log_and_keeps_the_mount(self):
        mnt, log = self.mount_bucket()
        [pid] = harness.find_daemon_pids(mnt)
        self.assertEqual(self.read_small(mnt), b"hello dsfs\n")
        os.rename(log, log + ".1")  # what logrotate does
        os.kill(pid, signal.SIGHUP)
        harness.wait_until(lambda: os.path.exists(log), 10, 0.05,
                           "a new log file after SIGHUP")
        harness.wait_until(
            lambda: "SIGHUP: log reopened" in open(log).read(), 10, 0.05,
            "the reopen line in the new log")
        self.assertTrue(harness.is_mounted(mnt), "SIGHUP unmounted dsfs")
        self.assertTrue(os.path.exists(f"/proc/{pid}"))
        self.assertEqual(self.read_small(mnt), b"hello dsfs\n")
        self.assertEqual(os.stat(log).st_mode & 0o077, 0, "the new log is private")
        with open(log + ".1") as f:
            self.assertNotIn("SIGHUP", f.read())

    def test_usr1_logs_the_counters(self):
        mnt, log = self.mount_bucket()
        [pid] = harness.find_daemon_pids(mnt)
        self.read_small(mnt)
        os.kill(pid, signal.SIGUSR1)
        # The snapshot is many log lines written one after another: wait for
        # the ones this test looks for, not only for the first. The mount and
        # the read above made requests, so the snapshot counts some.
        def requests_logged():
            return sum(float(l.rsplit(" ", 1)[1])
                       for l in open(log).read().splitlines()
                       if "stats: dsfs_s3_requests_total" in l)
        harness.wait_until(lambda: requests_logged() > 0, 10, 0.05,
                           "dsfs_s3_requests_total > 0 in the logged stats")
        self.assertTrue(harness.is_mounted(mnt))

    def test_term_unmounts_cleanly(self):
        mnt, log = self.mount_bucket()
        [pid] = harness.find_daemon_pids(mnt)
        self.read_small(mnt)
        os.kill(pid, signal.SIGTERM)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 20,
                           0.05, "the daemon to exit after SIGTERM")
        harness.wait_until(lambda: not harness.is_mounted(mnt), 10, 0.05,
                           "the mount to go")
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
