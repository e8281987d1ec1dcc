"""Namespace changes through the mount: mkdir, rmdir, rename, symlink,
chmod, chown, utimens, unlink (also while open), link; each visible at once
through the mount and stored in the s3fs/obsfs format (checked with a plain
HEAD of the object); permissions with allow_other/default_permissions for
another user."""

import errno
import os
import stat
import subprocess
import time
import unittest

import harness

DIR_TYPE = "application/x-directory"


class NamespaceWriteTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Another user must reach the mountpoint: the class's temp dirs are 0700.
        os.chmod(cls.tmp, 0o755)
        s3, b = cls.s3, cls.BUCKET
        s3.put(b, "plain.txt", b"plain bytes\n")
        s3.put(b, "tree/a.txt", b"A")
        s3.put(b, "tree/sub/b.txt", b"B")
        s3.put_dir_marker(b, "tree/", meta=harness.s3fs_meta(mode=0o040750))
        s3.put_dir_marker(b, "tree/empty/")
        # Objects the tests change, made before the mount so that the
        # mount's long TTLs never hide them.
        s3.put(b, "mv-src.txt", b"move me", meta=harness.s3fs_meta(mode=0o100600))
        s3.put(b, "mv-other.txt", b"other")
        s3.put(b, "attrs.txt", b"attrs")
        s3.put(b, "gone.txt", b"bye")
        s3.put(b, "open.txt", b"still readable")
        s3.put(b, "secret.txt", b"secret")
        s3.put(b, "public.txt", b"public")
        s3.put(b, "owned.txt", b"o", meta=harness.s3fs_meta(mode=0o100666, uid=1, gid=2))
        cls.mnt, cls.log = cls.mount_bucket(
            extra_opts=["rw", "allow_other", "stat_ttl=60", "list_ttl=60"])

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def head(self, key):
        st, hdrs = self.s3.head(self.BUCKET, key)
        return st, {k.lower(): v for k, v in hdrs.items()}

    def assertObject(self, key, mode=None, content_type=None, length=None):
        st, h = self.head(key)
        self.assertEqual(st, 200, f"HEAD {key}")
        if mode is not None:
            self.assertEqual(h.get("x-amz-meta-mode"), str(mode), f"{key}: {h}")
        if content_type is not None:
            self.assertEqual(h.get("content-type"), content_type, f"{key}: {h}")
        if length is not None:
            self.assertEqual(h.get("content-length"), str(length), f"{key}: {h}")
        return h

    def assertGone(self, key):
        st, _ = self.head(key)
        self.assertEqual(st, 404, f"HEAD {key} after removal")

    def test_01_mkdir_visible_at_once_and_stored_as_marker(self):
        before = os.listdir(self.mnt)  # cached for list_ttl=60
        self.assertNotIn("newdir", before)
        os.mkdir(self.p("newdir"), 0o750)
        self.assertIn("newdir", os.listdir(self.mnt))
        st = os.stat(self.p("newdir"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)
        h = self.assertObject("newdir/", mode=stat.S_IFDIR | 0o750,
                              content_type=DIR_TYPE, length=0)
        self.assertEqual(h.get("x-amz-meta-uid"), str(os.getuid()))
        self.assertIn("x-amz-meta-mtime", h)
        os.mkdir(self.p("newdir", "nested"))
        self.assertEqual(os.listdir(self.p("newdir")), ["nested"])
        self.assertObject("newdir/nested/", content_type=DIR_TYPE)
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("newdir"))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("plain.txt"))

    def test_02_rmdir(self):
        os.mkdir(self.p("rmme"))
        os.mkdir(self.p("rmme", "child"))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("rmme"))
        os.rmdir(self.p("rmme", "child"))
        os.rmdir(self.p("rmme"))
        self.assertNotIn("rmme", os.listdir(self.mnt))
        self.assertFalse(os.path.exists(self.p("rmme")))
        self.assertGone("rmme/")
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("plain.txt"))

    def test_03_rename_file_and_directory(self):
        self.assertIn("mv-src.txt", os.listdir(self.mnt))
        os.rename(self.p("mv-src.txt"), self.p("mv-dst.txt"))
        names = os.listdir(self.mnt)
        self.assertIn("mv-dst.txt", names)
        self.assertNotIn("mv-src.txt", names)
        with open(self.p("mv-dst.txt"), "rb") as f:
            self.assertEqual(f.read(), b"move me")
        self.assertEqual(stat.S_IMODE(os.stat(self.p("mv-dst.txt")).st_mode), 0o600)
        self.assertGone("mv-src.txt")
        self.assertObject("mv-dst.txt", mode=stat.S_IFREG | 0o600)
        self.assertEqual(self.s3.get(self.BUCKET, "mv-dst.txt"), b"move me")
        # Over an existing file: replaced.
        os.rename(self.p("mv-dst.txt"), self.p("mv-other.txt"))
        self.assertEqual(self.s3.get(self.BUCKET, "mv-other.txt"), b"move me")
        # A directory with nested content, an empty subdirectory and a marker.
        self.assertEqual(sorted(os.listdir(self.p("tree"))), ["a.txt", "empty", "sub"])
        os.rename(self.p("tree"), self.p("tree2"))
        self.assertFalse(os.path.exists(self.p("tree")))
        self.assertEqual(sorted(os.listdir(self.p("tree2"))), ["a.txt", "empty", "sub"])
        with open(self.p("tree2", "sub", "b.txt"), "rb") as f:
            self.assertEqual(f.read(), b"B")
        self.assertEqual(stat.S_IMODE(os.stat(self.p("tree2")).st_mode), 0o750)
        for k in ("tree/", "tree/a.txt", "tree/sub/b.txt", "tree/empty/"):
            self.assertGone(k)
        self.assertObject("tree2/", content_type=DIR_TYPE)
        self.assertObject("tree2/empty/", content_type=DIR_TYPE)
        self.assertEqual(self.s3.get(self.BUCKET, "tree2/sub/b.txt"), b"B")
        self.assertErrno(errno.EINVAL, os.rename, self.p("tree2"),
                         self.p("tree2", "sub", "inside"))

    def test_03b_rename_of_a_new_file_still_open(self):
        # open, write, rename, write, close: no byte was uploaded before the
        # rename, so the name moves with the staged data.
        with open(self.p("open-new.tmp"), "wb", buffering=0) as f:
            f.write(b"first ")
            os.rename(self.p("open-new.tmp"), self.p("open-new"))
            self.assertNotIn("open-new.tmp", os.listdir(self.mnt))
            self.assertEqual(os.stat(self.p("open-new")).st_size, 6)
            f.write(b"second")
        self.assertGone("open-new.tmp")
        self.assertEqual(self.s3.get(self.BUCKET, "open-new"), b"first second")
        with open(self.p("open-new"), "rb") as f:
            self.assertEqual(f.read(), b"first second")

    def test_04_symlink(self):
        os.symlink("plain.txt", self.p("ln"))
        self.assertEqual(os.readlink(self.p("ln")), "plain.txt")
        st = os.lstat(self.p("ln"))
        self.assertTrue(stat.S_ISLNK(st.st_mode))
        with open(self.p("ln"), "rb") as f:
            self.assertEqual(f.read(), b"plain bytes\n")
        self.assertIn("ln", os.listdir(self.mnt))
        self.assertObject("ln", mode=stat.S_IFLNK | 0o777, length=len("plain.txt"))
        self.assertEqual(self.s3.get(self.BUCKET, "ln"), b"plain.txt")

    def test_05_chmod_chown_utimens(self):
        os.chmod(self.p("attrs.txt"), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("attrs.txt")).st_mode), 0o640)
        self.assertObject("attrs.txt", mode=stat.S_IFREG | 0o640)
        os.chown(self.p("attrs.txt"), 1234, 5678)
        st = os.stat(self.p("attrs.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        h = self.assertObject("attrs.txt")
        self.assertEqual((h.get("x-amz-meta-uid"), h.get("x-amz-meta-gid")),
                         ("1234", "5678"))
        os.utime(self.p("attrs.txt"),
                 ns=(1700000001_123456789, 1700000002_987654321))
        st = os.stat(self.p("attrs.txt"))
        self.assertEqual(st.st_mtime_ns, 1700000002_987654321)
        self.assertEqual(st.st_atime_ns, 1700000001_123456789)
        h = self.assertObject("attrs.txt", mode=stat.S_IFREG | 0o640)
        self.assertEqual(h.get("x-amz-meta-mtime"), "1700000002.987654321")
        self.assertEqual(h.get("x-amz-meta-atime"), "1700000001.123456789")
        self.assertEqual(self.s3.get(self.BUCKET, "attrs.txt"), b"attrs")
        # A directory's marker carries its attributes.
        os.mkdir(self.p("chdir"))
        os.chmod(self.p("chdir"), 0o711)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("chdir")).st_mode), 0o711)
        self.assertObject("chdir/", mode=stat.S_IFDIR | 0o711, content_type=DIR_TYPE)

    def test_06_unlink_and_unlink_while_open(self):
        os.unlink(self.p("gone.txt"))
        self.assertFalse(os.path.exists(self.p("gone.txt")))
        self.assertGone("gone.txt")
        fd = os.open(self.p("open.txt"), os.O_RDONLY)
        try:
            os.unlink(self.p("open.txt"))
            self.assertFalse(os.path.exists(self.p("open.txt")))
            self.assertNotIn("open.txt", os.listdir(self.mnt))
            self.assertEqual(os.pread(fd, 100, 0), b"still readable")
            self.assertEqual(self.head("open.txt")[0], 200)  # deferred
        finally:
            os.close(fd)
        # The kernel sends RELEASE after close(2) returns: poll, bounded.
        harness.wait_until(lambda: self.head("open.txt")[0] == 404, 20, 0.1,
                           "the DELETE at the last close")
        os.mkdir(self.p("notafile"))
        self.assertErrno(errno.EISDIR, os.unlink, self.p("notafile"))

    def test_07_link_and_names(self):
        self.assertErrno(errno.EPERM, os.link, self.p("plain.txt"), self.p("hard"))
        self.assertErrno(errno.ENAMETOOLONG, os.mkdir, self.p("x" * 256))
        self.assertErrno(errno.ENAMETOOLONG, os.symlink, "t", self.p("z" * 256))
        self.assertErrno(errno.ENAMETOOLONG, os.rename, self.p("plain.txt"), self.p("w" * 256))
        # (255 bytes is allowed, unit: MkdirRefusesTakenAndBadNames; s3rver
        # cannot store such a key: its files get a suffix.)

    def run_as_nobody(self, *cmd):
        return subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
            capture_output=True, text=True, timeout=30)

    def test_08_permissions_for_another_user(self):
        os.chmod(self.p("secret.txt"), 0o600)
        os.chmod(self.p("public.txt"), 0o644)
        r = self.run_as_nobody("cat", self.p("public.txt"))
        self.assertEqual((r.returncode, r.stdout), (0, "public"), r.stderr)
        r = self.run_as_nobody("cat", self.p("secret.txt"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        # chmod of root's file by another user: the kernel refuses (EPERM).
        r = self.run_as_nobody("chmod", "0666", self.p("public.txt"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not permitted", r.stderr)
        self.assertObject("public.txt", mode=stat.S_IFREG | 0o644)
        # A 0700 directory made by root is closed to others.
        os.mkdir(self.p("private"), 0o700)
        r = self.run_as_nobody("ls", self.p("private"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)

    def test_09_uid_gid_umask_options(self):
        mnt, _ = self.mount_bucket(extra_opts=["rw", "uid=4321", "gid=8765", "umask=027"])
        st = os.stat(os.path.join(mnt, "owned.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (4321, 8765))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
