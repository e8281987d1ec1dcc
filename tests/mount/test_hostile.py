"""Hostile listings: keys that cannot be POSIX names are hidden and logged,
never followed; the rest of the bucket stays usable. Served by the scripted
server (hostile_server.py), which also lists implicit directories the way S3
does (s3rver does not)."""

import errno
import os
import re
import shutil
import stat
import tempfile
import unittest

import harness
from hostile_server import HOSTILE_OBJECTS, LONG_NAME, ScriptedS3

VISIBLE_FILES = {
    "ok.txt": b"ok\n",
    "a/good.txt": b"good\n",
    "c/fine.txt": b"fine\n",
    "deep/x/y/z.txt": b"deep\n",
}


class HostileListingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.require_prereqs()
        cls.san_before = harness.sanitizer_snapshot()
        cls.tmp = tempfile.mkdtemp(prefix="dsfs-hostile-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        # Small pages: the hostile entries also arrive across page breaks.
        cls.server = ScriptedS3("hostile", HOSTILE_OBJECTS, page_size=3)
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.passwd = harness.write_passwd(os.path.join(cls.tmp, "passwd"))
        cls.mnt = os.path.join(cls.tmp, "mnt")
        os.mkdir(cls.mnt)
        cls.log = os.path.join(cls.tmp, "dsfs.log")
        opts = [f"url={cls.server.url}", "use_path_request_style",
                f"passwd_file={cls.passwd}"]
        if harness.is_dsfs():
            opts += ["dbglevel=debug", f"logfile={cls.log}"]
        harness.mount("hostile", cls.mnt, opts)
        cls.addClassCleanup(cls._cleanup)

    @classmethod
    def _cleanup(cls):
        harness.unmount(cls.mnt)
        harness.check_sanitizer_reports(cls.san_before)

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def test_root_shows_only_valid_names(self):
        self.assertEqual(sorted(os.listdir(self.mnt)),
                         ["a", "c", "deep", "ok.txt"])

    def test_subdirectories_show_only_valid_names(self):
        self.assertEqual(os.listdir(self.p("a")), ["good.txt"])
        self.assertEqual(os.listdir(self.p("c")), ["fine.txt"])

    def test_implicit_directories_listed(self):
        # Only deep/x/y/z.txt exists: deep, deep/x, deep/x/y are directories
        # and appear in their parents' listings.
        self.assertEqual(os.listdir(self.p("deep")), ["x"])
        self.assertEqual(os.listdir(self.p("deep", "x")), ["y"])
        for d in ("deep", "deep/x", "deep/x/y"):
            self.assertTrue(stat.S_ISDIR(os.stat(self.p(d)).st_mode), d)

    def test_walk_stays_inside_and_reads_valid_files(self):
        found = {}
        root_real = os.path.realpath(self.mnt)
        for root, dirs, files in os.walk(self.mnt):
            for name in dirs + files:
                self.assertNotIn(name, (".", "..", ""))
                self.assertNotIn("/", name)
                self.assertLessEqual(len(name.encode()), 255)
                full = os.path.join(root, name)
                self.assertTrue(
                    os.path.realpath(full).startswith(root_real + os.sep),
                    f"{full} resolves outside the mount")
            for f in files:
                full = os.path.join(root, f)
                with open(full, "rb") as fh:
                    found[os.path.relpath(full, self.mnt)] = fh.read()
        self.assertEqual(found, VISIBLE_FILES)

    def test_hostile_names_do_not_resolve(self):
        with self.assertRaises(OSError) as cm:
            os.stat(self.p(LONG_NAME))
        self.assertIn(cm.exception.errno, (errno.ENOENT, errno.ENAMETOOLONG))
        # "a/../../etc" must not become a name anywhere in the mount.
        self.assertErrno(errno.ENOENT, os.stat, self.p("etc"))
        self.assertErrno(errno.ENOENT, os.stat, self.p("escape"))
        self.assertErrno(errno.ENOENT, os.stat, self.p("x"))
        self.assertErrno(errno.ENOENT, os.stat, self.p("a", "b"))

    @unittest.skipUnless(harness.is_dsfs(), "dsfs log format")
    def test_log_mentions_skipped_keys(self):
        os.listdir(self.mnt)
        os.listdir(self.p("a"))
        os.listdir(self.p("c"))
        with open(self.log, errors="replace") as f:
            lines = f.read().splitlines()
        word = re.compile(r"skip|hid|invalid|ignor|reject|unsafe", re.I)
        flagged = [ln for ln in lines if word.search(ln)]
        self.assertTrue(any(".." in ln for ln in flagged),
                        "no log line about a '..' key:\n" +
                        "\n".join(lines[-30:]))
        self.assertTrue(any("L" * 20 in ln for ln in flagged),
                        "no log line about the 300-byte name:\n" +
                        "\n".join(lines[-30:]))

    def assertErrno(self, err, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, err, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
