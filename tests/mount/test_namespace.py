"""Namespace: listings are complete, directories exist the way s3fs/obsfs
users expect (markers, implicit prefixes), s3fs metadata and symlinks are
honoured, prefix mounts show only the prefix."""

import errno
import os
import stat
import time
import unittest

import harness

N_MANY = 2500
META_MTIME = 1600000000


def many_key(i):
    return f"many/f{i:05d}.bin"


def many_size(i):
    return (i * 37) % 1500


class NamespaceTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s3, b = cls.s3, cls.BUCKET
        t0 = time.monotonic()
        for i in range(N_MANY):
            s3.put(b, many_key(i), harness.rand_bytes(i, many_size(i)))
        print(f"setup: {N_MANY} objects in {time.monotonic() - t0:.1f}s")
        s3.put(b, "nest/l1/l2/l3/deep.txt", b"deep\n")
        s3.put(b, "nest/l1/side.txt", b"side\n")
        s3.put(b, "imp/b/c.txt", b"implicit\n")
        s3.put_dir_marker(b, "d/")
        s3.put_dir_marker(b, "dm/", meta=harness.s3fs_meta(
            mode=0o040750, uid=1201, gid=1202, mtime=META_MTIME))
        s3.put(b, "marked/", b"", content_type="application/x-directory")
        s3.put(b, "marked/x.txt", b"x")
        s3.put(b, "meta.txt", b"with metadata\n", meta=harness.s3fs_meta(
            mode=0o100640, uid=1234, gid=5678, mtime=META_MTIME))
        s3.put(b, "target.txt", b"the target\n")
        s3.put(b, "link", b"target.txt", meta=harness.s3fs_meta(
            mode=0o120777, mtime=META_MTIME))
        s3.put(b, "pfx/inside.txt", b"inside\n")
        s3.put(b, "pfx/sub/deeper.txt", b"deeper\n")
        s3.put(b, "pfxnot.txt", b"not in prefix\n")
        s3.put(b, "outside.txt", b"outside\n")
        cls.mnt, cls.log = cls.mount_bucket()

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def test_large_directory_complete_with_sizes(self):
        entries = {}
        with os.scandir(self.p("many")) as it:
            for e in it:
                entries[e.name] = e.stat(follow_symlinks=False)
        want = {many_key(i).split("/", 1)[1]: many_size(i)
                for i in range(N_MANY)}
        self.assertEqual(len(entries), N_MANY)
        self.assertEqual(set(entries), set(want))
        for name, st in entries.items():
            self.assertTrue(stat.S_ISREG(st.st_mode), name)
            self.assertEqual(st.st_size, want[name], name)
        # A second listing (possibly cached) is the same.
        self.assertEqual(sorted(os.listdir(self.p("many"))), sorted(want))
        # Content of a few, through lookup rather than the listing.
        for i in (0, 999, 1000, 1001, N_MANY - 1):
            with open(self.p(many_key(i)), "rb") as f:
                self.assertEqual(f.read(),
                                 harness.rand_bytes(i, many_size(i)))

    def test_root_listing(self):
        # s3rver 3.7.1 only reports a common prefix when some key sits
        # directly below it, so "nest" and "imp" (only deeper keys) are not
        # in its root listing; test_hostile checks that case against a
        # server that lists like S3.
        names = set(os.listdir(self.mnt))
        for n in ("many", "d", "dm", "marked", "meta.txt",
                  "target.txt", "link", "pfx", "pfxnot.txt", "outside.txt"):
            self.assertIn(n, names)
        # Dir markers do not show up as extra entries ("d/" is "d").
        self.assertNotIn("", names)
        self.assertEqual(len([n for n in names if n == "d"]), 1)

    def test_nested_directories(self):
        for d in ("nest", "nest/l1", "nest/l1/l2", "nest/l1/l2/l3"):
            self.assertTrue(stat.S_ISDIR(os.stat(self.p(d)).st_mode), d)
        self.assertIn("side.txt", os.listdir(self.p("nest", "l1")))
        self.assertEqual(os.listdir(self.p("nest", "l1", "l2")), ["l3"])
        with open(self.p("nest", "l1", "l2", "l3", "deep.txt"), "rb") as f:
            self.assertEqual(f.read(), b"deep\n")
        walked = []
        for root, dirs, files in os.walk(self.p("nest", "l1", "l2")):
            for f in files:
                walked.append(os.path.relpath(os.path.join(root, f),
                                              self.mnt))
        self.assertEqual(walked, ["nest/l1/l2/l3/deep.txt"])

    def test_implicit_directories(self):
        self.assertTrue(stat.S_ISDIR(os.stat(self.p("imp")).st_mode))
        self.assertTrue(stat.S_ISDIR(os.stat(self.p("imp", "b")).st_mode))
        self.assertEqual(os.listdir(self.p("imp")), ["b"])
        self.assertEqual(os.listdir(self.p("imp", "b")), ["c.txt"])
        with open(self.p("imp", "b", "c.txt"), "rb") as f:
            self.assertEqual(f.read(), b"implicit\n")

    def test_dir_marker_empty_directory(self):
        st = os.stat(self.p("d"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(os.listdir(self.p("d")), [])
        # A marker plus children: one directory, marker not listed inside.
        self.assertTrue(stat.S_ISDIR(os.stat(self.p("marked")).st_mode))
        self.assertEqual(os.listdir(self.p("marked")), ["x.txt"])

    def test_s3fs_metadata_file(self):
        st = os.stat(self.p("meta.txt"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640,
                         harness.mode_str(st.st_mode))
        self.assertEqual(st.st_uid, 1234)
        self.assertEqual(st.st_gid, 5678)
        self.assertEqual(int(st.st_mtime), META_MTIME)
        self.assertEqual(st.st_size, len(b"with metadata\n"))

    def test_s3fs_metadata_dir_marker(self):
        st = os.stat(self.p("dm"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750,
                         harness.mode_str(st.st_mode))
        self.assertEqual(st.st_uid, 1201)
        self.assertEqual(st.st_gid, 1202)
        self.assertEqual(int(st.st_mtime), META_MTIME)

    def test_s3fs_symlink(self):
        st = os.lstat(self.p("link"))
        self.assertTrue(stat.S_ISLNK(st.st_mode), harness.mode_str(st.st_mode))
        self.assertEqual(os.readlink(self.p("link")), "target.txt")
        with open(self.p("link"), "rb") as f:  # followed inside the mount
            self.assertEqual(f.read(), b"the target\n")

    def test_readdir_type_agrees_with_lstat(self):
        # scandir's is_symlink()/is_dir() use readdir's d_type when it is
        # known (find -type l does too): it must not contradict lstat.
        for e in os.scandir(self.mnt):
            st = os.lstat(e.path)
            self.assertEqual(e.is_symlink(), stat.S_ISLNK(st.st_mode), e.name)
            self.assertEqual(e.is_dir(follow_symlinks=False),
                             stat.S_ISDIR(st.st_mode), e.name)

    def test_statfs(self):
        sv = os.statvfs(self.mnt)
        self.assertGreater(sv.f_bsize, 0)
        self.assertGreaterEqual(sv.f_namemax, 255)

    def test_missing_entries(self):
        self.assertErrno(errno.ENOENT, os.stat, self.p("imp", "nope"))
        self.assertErrno(errno.ENOENT, os.stat, self.p("many", "f99999.bin"))
        # A file is not a directory.
        self.assertErrno(errno.ENOTDIR, os.listdir, self.p("outside.txt"))

    def test_prefix_mount(self):
        mnt, _ = self.mount_bucket(f"{self.BUCKET}:/pfx")
        self.assertEqual(sorted(os.listdir(mnt)), ["inside.txt", "sub"])
        with open(os.path.join(mnt, "inside.txt"), "rb") as f:
            self.assertEqual(f.read(), b"inside\n")
        with open(os.path.join(mnt, "sub", "deeper.txt"), "rb") as f:
            self.assertEqual(f.read(), b"deeper\n")
        self.assertErrno(errno.ENOENT, os.stat,
                         os.path.join(mnt, "outside.txt"))
        self.assertErrno(errno.ENOENT, os.stat, os.path.join(mnt, "pfx"))
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
