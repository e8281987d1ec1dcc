"""The command line contract: mount(8) and fstab work, options meant for
mount(8)/systemd are ignored, every bad input fails the mount with exit code
1 and a one-line `dsfs: error:` message, the daemon is ready when the parent
exits, and the secret key never shows in logs, cmdline or /proc/mounts."""

import filecmp
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
import unittest

import harness
from hostile_server import ScriptedS3

SECRET = "Sk-9f8e7d6c5b4a3f2e1d0c-SECRET"


def installed_dsfs():
    """The dsfs that mount(8) runs: mount clears PATH, and /bin/sh then
    searches its default PATH."""
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
              "/sbin", "/bin"):
        p = os.path.join(d, "dsfs")
        if os.access(p, os.X_OK):
            return p
    return None


class BlackHole:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except (socket.timeout, OSError):
                continue

    def close(self):
        self.stop_flag = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@unittest.skipUnless(harness.is_dsfs(), "dsfs command line only")
class CliTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.put(cls.BUCKET, "hello.txt", b"hello from s3rver\n")
        cls.s3.put(cls.BUCKET, "dir/inner.bin", harness.rand_bytes(5, 70000))

    # ------------------------------------------------------------ helpers
    def opts(self, **over):
        o = {"url": self.server.url(), "passwd_file": self.passwd}
        o.update(over)
        out = ["use_path_request_style"]
        for k, v in o.items():
            if v is not None:
                out.append(f"{k}={v}")
        return out

    def dsfs(self, *args, env=None, timeout=90):
        return harness.run_dsfs([harness.dsfs_bin(), *args], env=env,
                                timeout=timeout)

    def assertMountFails(self, res, *needles, mnt=None):
        if mnt and harness.is_mounted(mnt):
            self._mounts.append(mnt)  # unexpected success: still unmount
        self.assertEqual(res.returncode, 1, res)
        errs = [ln for ln in res.stderr.splitlines()
                if ln.startswith("dsfs: error:")]
        self.assertEqual(len(errs), 1,
                         f"want one 'dsfs: error:' line: {res.stderr!r}")
        for n in needles:
            self.assertIn(n.lower(), errs[0].lower(), res.stderr)
        if mnt:
            self.assertFalse(harness.is_mounted(mnt))

    def check_mounted_ok(self, mnt, source=None):
        e = harness.mount_entry(mnt)
        self.assertIsNotNone(e, "not in /proc/mounts")
        self.assertEqual(e[2], "fuse.dsfs", e)
        self.assertEqual(e[0], source or self.BUCKET, e)
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello from s3rver\n")
        with open(os.path.join(mnt, "dir", "inner.bin"), "rb") as f:
            self.assertEqual(f.read(), harness.rand_bytes(5, 70000))

    def require_installed(self):
        inst = installed_dsfs()
        self.assertIsNotNone(
            inst, "mount -t fuse.dsfs needs dsfs on the default PATH "
            "(scripts/test.sh installs it to /usr/local/bin)")
        self.assertTrue(
            filecmp.cmp(inst, harness.dsfs_bin(), shallow=False),
            f"{inst} is not the dsfs under test ({harness.dsfs_bin()}): "
            "run scripts/test.sh, or install the build first")

    # -------------------------------------------------------------- tests
    def test_help_and_version(self):
        for flag in ("--help", "-h"):
            r = self.dsfs(flag)
            self.assertEqual(r.returncode, 0, r)
            text = (r.stdout + r.stderr).lower()
            self.assertIn("usage", text)
            for opt in ("passwd_file", "url", "allow_other", "dbglevel"):
                self.assertIn(opt, text, f"{flag} does not mention {opt}")
        for flag in ("--version", "-V"):
            r = self.dsfs(flag)
            self.assertEqual(r.returncode, 0, r)
            self.assertRegex(r.stdout + r.stderr, r"dsfs.*\d+\.\d+\.\d+")

    def test_daemon_ready_when_parent_exits_and_exits_on_unmount(self):
        mnt = self.new_mountpoint()
        r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(self.opts()))
        self.assertEqual(r.returncode, 0, r)
        # No waiting: the parent returns only once the mount is up.
        self.assertTrue(harness.is_mounted(mnt), "not mounted at exit")
        self._mounts.append(mnt)
        self.check_mounted_ok(mnt)
        pids = harness.find_daemon_pids(mnt)
        self.assertEqual(len(pids), 1, pids)
        self.unmount_now(mnt)
        self.assertFalse(os.path.exists(f"/proc/{pids[0]}"),
                         "daemon still running 30 s after unmount")

    def test_foreground(self):
        mnt = self.new_mountpoint()
        env = harness.sanitizer_env(dict(os.environ))
        p = subprocess.Popen([harness.dsfs_bin(), self.BUCKET, mnt, "-f",
                              "-o", ",".join(self.opts())],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        try:
            harness.wait_until(lambda: harness.is_mounted(mnt) or
                               p.poll() is not None, 30, 0.1, "mount")
            self.assertIsNone(p.poll(), "dsfs -f exited")
            self.check_mounted_ok(mnt)
            subprocess.run(["fusermount3", "-u", mnt], check=True)
            self.assertEqual(p.wait(30), 0)
        finally:
            if p.poll() is None:
                harness.unmount(mnt)
                p.wait(30)

    def test_mount_t_fuse_dsfs(self):
        self.require_installed()
        mnt = self.new_mountpoint()
        r = harness.run_dsfs(["mount", "-t", "fuse.dsfs", self.BUCKET, mnt,
                              "-o", ",".join(self.opts())])
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        self.check_mounted_ok(mnt)
        # The daemon's command line names the mountpoint and no secret.
        pids = harness.find_daemon_pids(mnt)
        self.assertTrue(pids)
        self.unmount_now(mnt)

    def test_mount_t_prefix_source(self):
        self.require_installed()
        self.s3.put(self.BUCKET, "pfx/only.txt", b"prefixed\n")
        mnt = self.new_mountpoint()
        r = harness.run_dsfs(["mount", "-t", "fuse.dsfs",
                              f"{self.BUCKET}:/pfx", mnt,
                              "-o", ",".join(self.opts())])
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        self.assertEqual(os.listdir(mnt), ["only.txt"])
        self.unmount_now(mnt)

    def test_fstab_line(self):
        self.require_installed()
        mnt = self.new_mountpoint()
        fstab = os.path.join(self.tmp, "fstab")
        opts = ",".join(["_netdev", "nofail", "x-systemd.automount",
                         "x-systemd.mount-timeout=30", "comment=dsfs-test",
                         "rw", "dev", "suid", "noatime", "defaults",
                         "allow_other", "umask=0022", "dbglevel=warn",
                         *self.opts()])
        with open(fstab, "w") as f:
            f.write("# dsfs test fstab\n")
            f.write(f"{self.BUCKET} {mnt} fuse.dsfs {opts} 0 0\n")
        r = harness.run_dsfs(["mount", "-T", fstab, mnt])
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        self.check_mounted_ok(mnt)
        self.assertIn("allow_other", harness.mount_entry(mnt)[3])
        self.unmount_now(mnt)

    def test_mount_t_failure_is_reported(self):
        self.require_installed()
        mnt = self.new_mountpoint()
        bad = harness.write_passwd(os.path.join(self.tmp, "passwd-bad-t"),
                                   ak="NOSUCHKEY")
        r = harness.run_dsfs(["mount", "-t", "fuse.dsfs", self.BUCKET, mnt,
                              "-o", ",".join(self.opts(passwd_file=bad))])
        if harness.is_mounted(mnt):
            self._mounts.append(mnt)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("dsfs: error:", r.stderr)
        self.assertIn("access denied", r.stderr.lower())
        self.assertFalse(harness.is_mounted(mnt))

    def test_ignored_options_accepted(self):
        mnt = self.new_mountpoint()
        ignored = ["rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
                   "atime", "noatime", "relatime", "defaults", "auto",
                   "noauto", "user", "users", "_netdev", "nofail",
                   "x-systemd.automount", "x-systemd.idle-timeout=60",
                   "comment=fstab-comment"]
        r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(ignored),
                      "-o", ",".join(self.opts()))
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        self.check_mounted_ok(mnt)
        self.unmount_now(mnt)

    def test_uid_gid_umask_options(self):
        mnt = self.new_mountpoint()
        r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(
            self.opts(uid="1234", gid="4321", umask="0027")))
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        st = os.stat(os.path.join(mnt, "hello.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 4321))
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o027, 0,
                         harness.mode_str(st.st_mode))
        d = os.stat(os.path.join(mnt, "dir"))
        self.assertTrue(stat.S_ISDIR(d.st_mode))
        self.assertEqual((d.st_uid, d.st_gid), (1234, 4321))
        self.assertEqual(stat.S_IMODE(d.st_mode) & 0o027, 0)
        self.unmount_now(mnt)

    # -------------------------------------------------------- bad inputs
    def test_unknown_option(self):
        mnt = self.new_mountpoint()
        r = self.dsfs(self.BUCKET, mnt, "-o",
                      ",".join(self.opts() + ["frobnicate=3"]))
        self.assertMountFails(r, "unknown option", mnt=mnt)

    def test_missing_passwd_file(self):
        mnt = self.new_mountpoint()
        missing = os.path.join(self.tmp, "no-such-passwd")
        r = self.dsfs(self.BUCKET, mnt, "-o",
                      ",".join(self.opts(passwd_file=missing)))
        self.assertMountFails(r, missing, "no such file", mnt=mnt)

    def test_passwd_file_mode_0644(self):
        mnt = self.new_mountpoint()
        p = harness.write_passwd(os.path.join(self.tmp, "passwd-0644"),
                                 mode=0o644)
        r = self.dsfs(self.BUCKET, mnt, "-o",
                      ",".join(self.opts(passwd_file=p)))
        self.assertMountFails(r, "accessible by group or others", mnt=mnt)

    def test_wrong_secret(self):
        # s3rver checks no SigV4 signature, so this runs against the
        # scripted server, which does.
        srv = ScriptedS3("signed", {"hello.txt": b"signed hello\n"},
                         credentials=("AKSIGNED", "the-right-secret"))
        srv.start()
        self.addCleanup(srv.stop)

        def attempt(sk):
            mnt = self.new_mountpoint()
            p = harness.write_passwd(os.path.join(self.tmp, f"pw-{sk}"),
                                     ak="AKSIGNED", sk=sk)
            r = self.dsfs("signed", mnt, "-o", ",".join(
                self.opts(url=srv.url, passwd_file=p)))
            if r.returncode == 0:
                self._mounts.append(mnt)
            return mnt, r

        mnt, r = attempt("a-wrong-secret")
        self.assertMountFails(r, "access denied", mnt=mnt)
        self.assertGreater(srv.auth_failures, 0)
        # Control: the right secret mounts, every request verified.
        failures = srv.auth_failures
        mnt, r = attempt("the-right-secret")
        self.assertEqual(r.returncode, 0, r)
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            self.assertEqual(f.read(), b"signed hello\n")
        self.assertEqual(srv.auth_failures, failures)
        self.unmount_now(mnt)

    def test_unknown_access_key(self):
        mnt = self.new_mountpoint()
        p = harness.write_passwd(os.path.join(self.tmp, "passwd-ak"),
                                 ak="NOSUCHKEY")
        r = self.dsfs(self.BUCKET, mnt, "-o",
                      ",".join(self.opts(passwd_file=p)))
        self.assertMountFails(r, "access denied", mnt=mnt)

    def test_missing_bucket(self):
        mnt = self.new_mountpoint()
        r = self.dsfs("no-such-bucket", mnt, "-o", ",".join(self.opts()))
        self.assertMountFails(r, "does not exist", mnt=mnt)

    def test_refusing_endpoint(self):
        mnt = self.new_mountpoint()
        port = harness.free_port()  # nothing listens there
        r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(
            self.opts(url=f"http://127.0.0.1:{port}")))
        self.assertMountFails(r, "cannot connect", mnt=mnt)
        self.assertLess(r.elapsed, 60, r)

    def test_never_answering_endpoint(self):
        mnt = self.new_mountpoint()
        hole = BlackHole()
        try:
            r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(
                self.opts(url=f"http://127.0.0.1:{hole.port}")), timeout=120)
        finally:
            hole.close()
        if harness.is_mounted(mnt):
            self._mounts.append(mnt)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.lower(), r"timed out|cannot connect")
        print(f"never-answering endpoint: failed after {r.elapsed:.1f}s")
        # Contract: about 15 s with the default timeouts; 20 s is generous.
        self.assertLess(r.elapsed, 20, f"took {r.elapsed:.1f}s")
        self.assertFalse(harness.is_mounted(mnt))

    def test_missing_mountpoint(self):
        mnt = os.path.join(self.tmp, "no-such-dir")
        r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(self.opts()))
        self.assertMountFails(r, "mountpoint", "does not exist")

    # ------------------------------------------------------------ secrets
    def test_secret_never_leaks(self):
        # s3rver checks only the access key (never a SigV4 signature), so
        # the secret can be a string that appears nowhere else.
        srv = harness.S3rver(self.tmp, [self.BUCKET],
                             allow_mismatched_signatures=True).start()
        self.addCleanup(srv.stop)
        c = srv.client()
        c.put(self.BUCKET, "hello.txt", b"hello from s3rver\n")
        c.put(self.BUCKET, "dir/inner.bin", harness.rand_bytes(5, 70000))
        c.close()
        passwd = harness.write_passwd(os.path.join(self.tmp, "passwd-sec"),
                                      sk=SECRET)
        checked = 0
        for how in ("passwd_file", "env"):
            mnt = self.new_mountpoint()
            log = os.path.join(self.tmp, f"trace-{how}.log")
            env = dict(os.environ)
            opts = [f"url={srv.url()}", "use_path_request_style",
                    "dbglevel=trace", f"logfile={log}"]
            if how == "passwd_file":
                opts.append(f"passwd_file={passwd}")
            else:
                env["AWS_ACCESS_KEY_ID"] = harness.S3RVER_AK
                env["AWS_SECRET_ACCESS_KEY"] = SECRET
            r = self.dsfs(self.BUCKET, mnt, "-o", ",".join(opts), env=env)
            self.assertEqual(r.returncode, 0, r)
            self._mounts.append(mnt)
            self.check_mounted_ok(mnt)
            os.listdir(os.path.join(mnt, "dir"))
            pids = harness.find_daemon_pids(mnt)
            self.assertEqual(len(pids), 1, pids)
            self.assertNotIn(SECRET.encode(), harness.read_cmdline(pids[0]))
            with open("/proc/mounts") as f:
                self.assertNotIn(SECRET, f.read())
            self.assertNotIn(SECRET, r.stdout + r.stderr)
            self.unmount_now(mnt)
            with open(log, errors="replace") as f:
                text = f.read()
            self.assertGreater(len(text.splitlines()), 5,
                               "trace log is nearly empty: check vacuous")
            self.assertNotIn(SECRET, text)
            # Not even a recognisable piece of it.
            self.assertNotIn(SECRET[:12], text)
            checked += 1
        self.assertEqual(checked, 2)


if __name__ == "__main__":
    unittest.main()
