"""The Debian package: `cpack -G DEB` in the build directory builds a .deb
that `apt-get install ./dsfs_*.deb` installs (dsfs and dsfsctl in /usr/bin,
man pages, a logrotate snippet, dependencies declared); `mount -t fuse.dsfs`
then runs the installed /usr/bin/dsfs; the logrotate snippet rotates a
running daemon's log (SIGHUP reopens it, the mount stays); `apt-get purge`
removes every file again. Installs into the system: run by scripts/test.sh
(ctest label `deb`), never next to an installed dsfs package."""

import glob
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "mount"))
import harness  # noqa: E402

PKG = "dsfs"
LOCAL_DSFS = "/usr/local/bin/dsfs"  # scripts/test.sh installs the build here
LOG_DIR = "/var/log/dsfs"


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(args, **kw)


def installed(pkg=PKG):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "install ok installed" in r.stdout


def build_dir():
    d = os.environ.get("DSFS_BUILD_DIR")
    if not d or not os.path.exists(os.path.join(d, "CPackConfig.cmake")):
        raise harness.HarnessError(
            f"DSFS_BUILD_DIR={d!r} is not a configured build directory "
            "(ctest sets it)")
    return d


class DebTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        if installed():
            raise harness.HarnessError(
                "a dsfs package is installed on this machine: this test "
                "installs and purges its own; remove it first")
        super().setUpClass()
        cls.s3.put(cls.BUCKET, "models/config.json", b'{"layers": 61}\n')
        cls.blob = harness.rand_bytes(7, 9 * 1024 * 1024 + 3)
        cls.s3.put(cls.BUCKET, "models/shard-0.bin", cls.blob)
        out = os.path.join(cls.tmp, "pkg")
        r = run(["cpack", "-G", "DEB", "-B", out], cwd=build_dir())
        if r.returncode != 0:
            raise harness.HarnessError(f"cpack failed:\n{r.stdout}\n{r.stderr}")
        debs = glob.glob(os.path.join(out, "dsfs_*.deb"))
        if len(debs) != 1:
            raise harness.HarnessError(f"cpack made {debs!r}, want one .deb")
        cls.deb = debs[0]
        print(f"\nbuilt {os.path.basename(cls.deb)}: "
              f"{os.path.getsize(cls.deb) / 1e6:.1f} MB")

    def field(self, name):
        r = run(["dpkg-deb", "-f", self.deb, name])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_1_contents_and_control(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        files = {ln.split()[-1].lstrip(".") for ln in r.stdout.splitlines()}
        for f in ("/usr/bin/dsfs", "/usr/bin/dsfsctl",
                  "/usr/share/man/man8/dsfs.8.gz",
                  "/usr/share/man/man8/dsfsctl.8.gz",
                  "/etc/logrotate.d/dsfs"):
            self.assertIn(f, files)
        self.assertFalse([f for f in files if "mount.fuse" in f],
                         "mount.fuse3 finds dsfs on PATH: no helper needed")
        self.assertEqual(self.field("Package"), PKG)
        depends = self.field("Depends")
        for dep in ("fuse3", "libfuse3-3", "libcurl4",
                    "libssl3", "libmicrohttpd12", "libpugixml1v5"):
            self.assertIn(dep, depends)
        r = run(["dpkg-deb", "--ctrl-tarfile", self.deb])
        self.assertEqual(r.returncode, 0)
        conffiles = run(["sh", "-c", f"dpkg-deb -I {self.deb} conffiles"])
        self.assertIn("/etc/logrotate.d/dsfs", conffiles.stdout)
        # The man pages render without groff warnings.
        for page in ("dsfs", "dsfsctl"):
            r = run(["sh", "-c", f"dpkg-deb --fsys-tarfile {self.deb} | "
                     f"tar -xO ./usr/share/man/man8/{page}.8.gz | zcat | "
                     "groff -man -ww -z -Tutf8"])
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_2_install_mount_rotate_purge(self):
        self.addCleanup(self._purge_if_installed)
        r = run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 "./" + os.path.basename(self.deb)],
                cwd=os.path.dirname(self.deb),
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        self.assertTrue(installed())
        for b in ("/usr/bin/dsfs", "/usr/bin/dsfsctl"):
            self.assertTrue(os.access(b, os.X_OK), b)
        r = run(["/usr/bin/dsfs", "--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(self.field("Version"), r.stdout + r.stderr)
        r = run(["man", "-w", "dsfs"])
        self.assertEqual(r.stdout.strip(), "/usr/share/man/man8/dsfs.8.gz")
        r = run(["man", "-P", "cat", "8", "dsfsctl"],
                env=dict(os.environ, MANWIDTH="80"))
        for cmd in ("stats", "warm", "verify", "fsck", "gc", "clear"):
            self.assertIn(cmd, r.stdout)
        r = run(["logrotate", "-d", "/etc/logrotate.d/dsfs"])
        self.assertEqual(r.returncode, 0, r.stderr)

        # mount(8) runs the dsfs it finds on /bin/sh's default PATH, where
        # /usr/local/bin comes first: move the build's copy aside.
        if os.path.exists(LOCAL_DSFS):
            aside = LOCAL_DSFS + ".test-deb-aside"
            os.rename(LOCAL_DSFS, aside)
            self.addCleanup(os.rename, aside, LOCAL_DSFS)

        mnt = self.new_mountpoint()
        log = os.path.join(LOG_DIR, f"test-deb-{os.getpid()}.log")
        self.addCleanup(self._remove_logs, log)
        opts = self.base_opts(logfile=log)
        r = harness.run_dsfs(["mount", "-t", "fuse.dsfs", self.BUCKET, mnt,
                              "-o", ",".join(opts)])
        self.assertEqual(r.returncode, 0, r)
        self._mounts.append(mnt)
        pids = harness.find_daemon_pids(mnt)
        self.assertEqual(len(pids), 1, pids)
        self.assertEqual(os.readlink(f"/proc/{pids[0]}/exe"), "/usr/bin/dsfs")
        with open(os.path.join(mnt, "models", "shard-0.bin"), "rb") as f:
            self.assertEqual(f.read(), self.blob)
        r = run(["/usr/bin/dsfsctl", "stats", mnt, "--prometheus"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dsfs_s3_bytes_read_total", r.stdout)

        # logrotate with the installed snippet: the log moves to .1, the
        # daemon reopens a new one on SIGHUP and keeps serving.
        harness.wait_until(lambda: os.path.getsize(log) > 0, 10, 0.1,
                           "the daemon's first log line")
        state = os.path.join(self.tmp, "logrotate.state")
        r = run(["logrotate", "-f", "-s", state, "/etc/logrotate.d/dsfs"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(log + ".1"), os.listdir(LOG_DIR))
        os.kill(pids[0], 10)  # SIGUSR1: a stats snapshot in the log
        harness.wait_until(lambda: os.path.exists(log) and
                           os.path.getsize(log) > 0, 10, 0.1,
                           "a log line in the reopened file")
        self.assertTrue(harness.is_mounted(mnt))
        with open(os.path.join(mnt, "models", "config.json"), "rb") as f:
            self.assertEqual(f.read(), b'{"layers": 61}\n')
        self.unmount_now(mnt)
        self._remove_logs(log)

        r = run(["apt-get", "purge", "-y", "-q", PKG],
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        self.assertFalse(installed())
        for f in ("/usr/bin/dsfs", "/usr/bin/dsfsctl",
                  "/usr/share/man/man8/dsfs.8.gz", "/etc/logrotate.d/dsfs"):
            self.assertFalse(os.path.exists(f), f"{f} left after purge")

    @staticmethod
    def _remove_logs(log):
        for f in glob.glob(log + "*"):
            os.unlink(f)

    @staticmethod
    def _purge_if_installed():
        if installed():
            run(["apt-get", "purge", "-y", "-q", PKG],
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


if __name__ == "__main__":
    unittest.main()
