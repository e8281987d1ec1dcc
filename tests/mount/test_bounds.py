"""Bounds against broken servers and busy users: no endless loop, no
unbounded memory, no wait without a deadline. Served by the scripted server
(hostile_server.py), which misbehaves on request.

Each test fails on a dsfs without the bound: the listing loops for ever,
the error body is drained for request_timeout, memory grows with every
open directory handle, shutdown waits on black-holed GETs."""

import errno
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from hostile_server import ScriptedS3

# Under ASan the allocator keeps freed memory in its quarantine and caches
# (hundreds of MiB): the memory bounds are checked strictly in the normal
# build; a sanitizer build only catches gross growth.
ASAN_SLACK_MIB = 600 if os.environ.get("DSFS_SANITIZER_LOG_DIR") else 0

MiB = 1024 * 1024
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")
FORGED_KEY = "forged\nfallback: OBS recovered"
SYMLINK = str(stat.S_IFLNK | 0o777)


def vmrss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise harness.HarnessError(f"no VmRSS for {pid}")


class BoundsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.require_prereqs()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfs bounds and log format")
        cls.san_before = harness.sanitizer_snapshot()
        cls.tmp = tempfile.mkdtemp(prefix="dsfs-bounds-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        objects = {
            "ok.txt": b"ok\n",
            "loop/a": b"x", "empty/a": b"x", "slow/a": b"x",
            "big/f0000000": b"x",
            "endless.bin": b"x", "moved.bin": b"x", "huge.bin": b"x",
            "hang.bin": b"x", "hang.safetensors": b"x", FORGED_KEY: b"x",
            "long-link": (b"a" * 4096, {"mode": SYMLINK}),
            "nul-link": (b"abc\0def", {"mode": SYMLINK}),
        }
        for d in range(10):
            objects[f"seq{d}/f0000000"] = b"x"
        cls.server = ScriptedS3("bounds", objects)
        cls.server.faults.update({
            "endless.bin": "endless_500",
            "moved.bin": "redirect",
            "huge.bin": "huge_head",
            "hang.bin": "hang",
            "hang.safetensors": "hang",
            FORGED_KEY: "error_500:boom\nfallback: OBS recovered",
        })
        cls.server.list_faults.update({
            "loop/": "same_token", "empty/": "empty_pages",
            "slow/": "slow_forever"})
        cls.server.synthetic["big/"] = 200_000
        for d in range(10):
            cls.server.synthetic[f"seq{d}/"] = 100_000
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.passwd = harness.write_passwd(os.path.join(cls.tmp, "passwd"))
        cls.mounts = []
        cls.addClassCleanup(cls._cleanup)

    @classmethod
    def _cleanup(cls):
        for m in cls.mounts:
            harness.unmount(m)
        harness.check_sanitizer_reports(cls.san_before)

    def mount(self, *extra, name="mnt"):
        mnt = tempfile.mkdtemp(prefix=name + "-", dir=self.tmp)
        log = mnt + ".log"
        opts = [f"url={self.server.url}", "use_path_request_style",
                f"passwd_file={self.passwd}", "dbglevel=info",
                f"logfile={log}", "retries=2", *extra]
        harness.mount("bounds", mnt, opts)
        self.mounts.append(mnt)
        pids = harness.find_daemon_pids(mnt)
        self.assertEqual(len(pids), 1, pids)
        return mnt, log, pids[0]

    def unmount(self, mnt):
        harness.unmount(mnt)
        self.mounts.remove(mnt)

    def log_lines(self, log):
        with open(log, errors="replace") as f:
            return f.read().splitlines()

    def timed_ls(self, path, timeout=60):
        start = time.monotonic()
        r = subprocess.run(["ls", path], capture_output=True, text=True,
                           timeout=timeout)
        return r, time.monotonic() - start

    # ---------------------------------------------------- 1. listings

    def test_01_listing_with_a_repeated_token_fails_with_eio(self):
        mnt, log, _ = self.mount()
        r, took = self.timed_ls(os.path.join(mnt, "loop"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Input/output error", r.stderr)
        self.assertLess(took, 20)
        lines = [ln for ln in self.log_lines(log)
                 if "repeated continuation token" in ln]
        self.assertEqual(len(lines), 1, "\n".join(self.log_lines(log)))
        self.assertTrue(LOG_LINE.match(lines[0]), lines[0])

    def test_02_listing_of_empty_pages_fails_with_eio(self):
        mnt, log, _ = self.mount()
        # The root's listing says "empty" is a directory (a one-key LIST of
        # "empty/" alone gets an empty page and would say ENOENT).
        self.assertIn("empty", os.listdir(mnt))
        r, took = self.timed_ls(os.path.join(mnt, "empty"))
        self.assertIn("Input/output error", r.stderr)
        self.assertLess(took, 20)
        self.assertTrue(any("empty pages in a row" in ln
                            for ln in self.log_lines(log)))

    def test_03_killed_lister_is_freed_and_the_daemon_exits(self):
        # A listing that goes on for ever, slowly (new keys, new tokens):
        # only list_timeout (300 s) would end it; the interrupt must.
        mnt, log, pid = self.mount()
        ls = subprocess.Popen(["ls", os.path.join(mnt, "slow")],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        time.sleep(2)
        self.assertIsNone(ls.poll(), "the listing should still be going")
        start = time.monotonic()
        ls.kill()
        ls.wait(timeout=20)  # TimeoutExpired: the reader stays stuck
        freed = time.monotonic() - start
        print(f"\nkilled ls freed after {freed:.2f} s", flush=True)
        self.assertLess(freed, 20)
        start = time.monotonic()
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 20,
                           0.1, "the daemon to exit after the unmount")
        print(f"unmount + daemon exit {time.monotonic() - start:.2f} s",
              flush=True)
        self.mounts.remove(mnt)

    # ---------------------------------------------------- 2/3. memory

    def test_04_open_handles_share_one_listing(self):
        mnt, log, pid = self.mount("list_ttl=600")
        d = os.path.join(mnt, "big")
        start = time.monotonic()
        self.assertEqual(len(os.listdir(d)), 200_000)
        print(f"\n200k-key listing {time.monotonic() - start:.1f} s, "
              f"VmRSS {vmrss_mib(pid):.0f} MiB", flush=True)
        fds = []
        try:
            for _ in range(300):
                fds.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY))
            held = vmrss_mib(pid)
            print(f"300 open handles: VmRSS {held:.0f} MiB", flush=True)
            # Before: a copy of the listing per handle (~22 MB each), 6+ GB.
            self.assertLess(held, 400 + ASAN_SLACK_MIB)
        finally:
            for fd in fds:
                os.close(fd)
        print(f"closed: VmRSS {vmrss_mib(pid):.0f} MiB", flush=True)
        self.unmount(mnt)

    def test_05_expired_listings_are_freed(self):
        mnt, log, pid = self.mount("list_ttl=1")
        base = vmrss_mib(pid)
        peak = base
        for d in range(10):
            self.assertEqual(len(os.listdir(os.path.join(mnt, f"seq{d}"))),
                             100_000)
            time.sleep(1.1)  # past list_ttl
            peak = max(peak, vmrss_mib(pid))
        end = vmrss_mib(pid)
        print(f"\nten 100k-key listings: VmRSS {base:.0f} -> peak "
              f"{peak:.0f} -> {end:.0f} MiB", flush=True)
        # At most the last two listings (~20 MiB each) alive at any time;
        # before, all ten stayed (~300 MiB).
        self.assertLess(end - base, 120 + ASAN_SLACK_MIB)
        self.unmount(mnt)

    # ---------------------------------------------------- 4. error bodies

    def test_06_error_body_that_never_ends_is_cut(self):
        mnt, log, _ = self.mount()
        start = time.monotonic()
        with self.assertRaises(OSError) as cm:
            with open(os.path.join(mnt, "endless.bin"), "rb") as f:
                f.read()
        took = time.monotonic() - start
        print(f"\nendless 500 body: EIO after {took:.2f} s", flush=True)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(took, 20)  # request_timeout (30 s) per attempt before
        lines = "\n".join(self.log_lines(log))
        self.assertIn("500", lines)

    # ---------------------------------------------------- 5. log forging

    def test_07_keys_and_server_messages_cannot_forge_log_lines(self):
        mnt, log, _ = self.mount()
        self.assertIn(FORGED_KEY, os.listdir(mnt))
        with self.assertRaises(OSError):
            with open(os.path.join(mnt, FORGED_KEY), "rb") as f:
                f.read()
        lines = self.log_lines(log)
        self.assertTrue(any("forged\\nfallback: OBS recovered" in ln
                            for ln in lines), "\n".join(lines))
        for ln in lines:
            self.assertTrue(LOG_LINE.match(ln), f"forged log line: {ln!r}")

    # ---------------------------------------------------- 6. small ones

    def test_08_redirect_is_eio_with_a_reason(self):
        mnt, log, _ = self.mount()
        with self.assertRaises(OSError) as cm:
            with open(os.path.join(mnt, "moved.bin"), "rb") as f:
                f.read()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertTrue(any("redirected" in ln and "region or addressing" in ln
                            for ln in self.log_lines(log)))

    def test_09_size_over_five_tib_is_a_bad_reply(self):
        mnt, log, _ = self.mount()
        with self.assertRaises(OSError) as cm:
            os.stat(os.path.join(mnt, "huge.bin"))
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertTrue(any("5 TiB" in ln for ln in self.log_lines(log)))

    def test_10_symlink_targets_the_kernel_cannot_take(self):
        mnt, log, _ = self.mount()
        with self.assertRaises(OSError) as cm:
            os.readlink(os.path.join(mnt, "long-link"))
        self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        with self.assertRaises(OSError) as cm:
            os.readlink(os.path.join(mnt, "nul-link"))
        self.assertEqual(cm.exception.errno, errno.EIO)

    def test_11_refused_mounts(self):
        mnt, log, _ = self.mount()
        opts = [f"url={self.server.url}", "use_path_request_style",
                f"passwd_file={self.passwd}"]
        twice = harness.mount("bounds", mnt, opts, check=False)
        self.assertEqual(twice.returncode, 1, twice)
        self.assertIn("already a mount point", twice.stderr)
        other = tempfile.mkdtemp(prefix="other-", dir=self.tmp)
        inside = harness.mount("bounds", other,
                               opts + [f"cache_dir={other}/cache"], check=False)
        self.assertEqual(inside.returncode, 1, inside)
        self.assertIn("inside the mountpoint", inside.stderr)
        nolog = harness.mount("bounds", other,
                              opts + ["logfile=/nonexistent-dsfs/x.log"],
                              check=False)
        self.assertEqual(nolog.returncode, 1, nolog)
        self.assertIn("does not exist", nolog.stderr)
        self.assertFalse(os.path.exists("/nonexistent-dsfs"))
        bad = harness.mount("bounds", other, opts + ["request_timeout=0"],
                            check=False)
        self.assertEqual(bad.returncode, 1, bad)
        self.assertIn("request_timeout must be between", bad.stderr)
        self.assertFalse(harness.is_mounted(other))

    def test_12_log_and_cache_files_are_private(self):
        cache = os.path.join(self.tmp, "cache-private")
        mnt, log, _ = self.mount(f"cache_dir={cache}", "cache_size=64M")
        with open(os.path.join(mnt, "ok.txt"), "rb") as f:
            self.assertEqual(f.read(), b"ok\n")
        self.unmount(mnt)
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o600)
        for root, _, files in os.walk(cache):
            for name in files:
                m = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
                self.assertEqual(m & 0o077, 0, f"{root}/{name}: {oct(m)}")

    # ---------------------------------------------------- 7. shutdown

    def test_13_sigterm_with_gets_to_a_black_hole_is_quick_and_clean(self):
        cache = os.path.join(self.tmp, "cache-shutdown")
        mnt, log, pid = self.mount(f"cache_dir={cache}", "cache_size=64M",
                                   "first_byte_timeout=0")
        readers = [subprocess.Popen(
            ["cat", os.path.join(mnt, "hang.bin")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for _ in range(3)]
        time.sleep(1.5)
        self.assertTrue(all(r.poll() is None for r in readers),
                        "the reads should hang on the black hole")
        start = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30,
                           0.05, "the daemon to exit after SIGTERM")
        took = time.monotonic() - start
        print(f"\nSIGTERM with 3 GETs black-holed: exit after {took:.2f} s",
              flush=True)
        for r in readers:
            r.wait(timeout=10)
        self.assertLess(took, 10)
        self.mounts.remove(mnt)
        harness.wait_until(lambda: not harness.is_mounted(mnt), 10, 0.1,
                           "the mount to go")
        # A clean close: the next mount does not need to reconcile.
        self.assertTrue(os.path.exists(os.path.join(cache, "CLEAN")),
                        harness.tail(log))

    def test_14_umount_with_prefetch_gets_to_a_black_hole_is_quick(self):
        # prefetch_whole (*.safetensors) starts GETs on open; nobody waits
        # for them when the file is closed, the unmount must not either.
        cache = os.path.join(self.tmp, "cache-umount")
        mnt, log, pid = self.mount(f"cache_dir={cache}", "cache_size=64M",
                                   "first_byte_timeout=0")
        fd = os.open(os.path.join(mnt, "hang.safetensors"), os.O_RDONLY)
        time.sleep(1.5)
        os.close(fd)
        start = time.monotonic()
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 60,
                           0.05, "the daemon to exit after the unmount")
        took = time.monotonic() - start
        print(f"\numount with a prefetch GET black-holed: exit after "
              f"{took:.2f} s", flush=True)
        self.mounts.remove(mnt)
        self.assertLess(took, 10)
        self.assertTrue(os.path.exists(os.path.join(cache, "CLEAN")),
                        harness.tail(log))

    def test_15_killed_reader_is_freed(self):
        # A GET into a black hole, no first-byte deadline: only the
        # interrupt can free a reader killed while it waits. O_DIRECT: the
        # reader waits in the FUSE request itself (a buffered read waits on
        # the page lock, which SIGKILL breaks without the daemon's help).
        mnt, log, pid = self.mount("first_byte_timeout=0")
        cat = subprocess.Popen(["dd", "if=" + os.path.join(mnt, "hang.bin"),
                                "of=/dev/null", "bs=4096", "iflag=direct"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        self.assertIsNone(cat.poll(), "the read should hang on the black hole")
        start = time.monotonic()
        cat.kill()
        cat.wait(timeout=20)  # TimeoutExpired: the reader stays stuck (D state)
        freed = time.monotonic() - start
        print(f"\nkilled reader freed after {freed:.2f} s", flush=True)
        self.assertLess(freed, 20)
        # The mount still answers, and unmounts at once.
        with open(os.path.join(mnt, "ok.txt"), "rb") as f:
            self.assertEqual(f.read(), b"ok\n")
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 20,
                           0.1, "the daemon to exit after the unmount")
        self.mounts.remove(mnt)


if __name__ == "__main__":
    unittest.main()
