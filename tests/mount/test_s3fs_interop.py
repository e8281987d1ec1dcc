"""Interop with the real s3fs (1.90, Debian's package) on one s3rver bucket:
a tree made through s3fs reads identically through dsfs (types, modes,
owners, fractional mtimes, symlink targets, bytes, empty and nested
directories), and a tree whose namespace dsfs made (mkdir, symlink, chmod,
chown, utimens, rename) reads identically through s3fs. s3fs missing or
failing to mount is a failure with the reason, never a skip."""

import os
import shutil
import stat
import subprocess
import sys
import unittest

import harness

MTIME_NS = 1700000002_987654321
ATIME_NS = 1700000001_123456789


def snapshot(root):
    """{relative path: (type, mode bits, uid, gid, mtime_ns, size, content)}:
    content is the bytes of a file and the target of a symlink."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = f.read()
            else:
                content = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                        st.st_uid, st.st_gid, st.st_mtime_ns,
                        st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                        content)
    return out


class S3fsInteropTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s3fs = shutil.which("s3fs")
        if s3fs is None:
            raise harness.HarnessError(
                "s3fs is not installed (Debian package s3fs; scripts/setup.sh installs it)")
        v = subprocess.run([s3fs, "--version"], capture_output=True, text=True)
        print(f"interop against: {v.stdout.splitlines()[0] if v.stdout else v}",
              file=sys.stderr)
        cls.dsfs_mnt, cls.dsfs_log = cls.mount_bucket(extra_opts=["rw", "stat_ttl=1", "list_ttl=1"])
        cls.s3fs_mnt = cls.new_mountpoint("s3fs")
        cls.s3fs_log = os.path.join(cls.tmp, "s3fs.log")
        cls.s3fs_out = open(cls.s3fs_log, "w")
        cls.addClassCleanup(cls.s3fs_out.close)
        cls.s3fs_proc = subprocess.Popen(
            [s3fs, cls.BUCKET, cls.s3fs_mnt, "-f", "-o",
             f"url={cls.server.url()},use_path_request_style,passwd_file={cls.passwd},"
             "stat_cache_expire=1,dbglevel=warn"],
            stdout=cls.s3fs_out, stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls._stop_s3fs)
        try:
            harness.wait_until(lambda: harness.is_mounted(cls.s3fs_mnt)
                               or cls.s3fs_proc.poll() is not None, 30, 0.1,
                               "the s3fs mount")
        except harness.HarnessError:
            pass
        if not harness.is_mounted(cls.s3fs_mnt):
            raise harness.HarnessError(
                f"s3fs did not mount (exit {cls.s3fs_proc.poll()}): "
                f"{harness.tail(cls.s3fs_log)}")

    @classmethod
    def _stop_s3fs(cls):
        harness.unmount(cls.s3fs_mnt, wait_daemon=False)
        try:
            cls.s3fs_proc.wait(30)
        except subprocess.TimeoutExpired:
            cls.s3fs_proc.kill()
            cls.s3fs_proc.wait()

    def assertSameTree(self, a, b):
        sa, sb = snapshot(a), snapshot(b)
        self.assertEqual(sorted(sa), sorted(sb))
        for rel in sa:
            self.assertEqual(sa[rel], sb[rel], f"{rel}: {a} vs {b}")

    def test_1_tree_written_by_s3fs_reads_the_same_through_dsfs(self):
        root = os.path.join(self.s3fs_mnt, "froms3fs")
        os.mkdir(root, 0o750)
        os.mkdir(os.path.join(root, "empty"))
        os.makedirs(os.path.join(root, "a", "b", "c"))
        with open(os.path.join(root, "a", "b", "c", "deep.bin"), "wb") as f:
            f.write(harness.rand_bytes(1, 70000))
        with open(os.path.join(root, "plain.txt"), "w") as f:
            f.write("plain\n")
        with open(os.path.join(root, "private.key"), "w") as f:
            f.write("secret\n")
        os.chmod(os.path.join(root, "private.key"), 0o600)
        os.chown(os.path.join(root, "private.key"), 1234, 5678)
        os.chmod(os.path.join(root, "a"), 0o711)
        os.symlink("a/b/c/deep.bin", os.path.join(root, "link"))
        os.utime(os.path.join(root, "plain.txt"), ns=(ATIME_NS, MTIME_NS))
        os.utime(os.path.join(root, "a", "b"), ns=(ATIME_NS, MTIME_NS + 1))
        expected = snapshot(root)
        # The things the test is about are in the tree as s3fs shows it.
        self.assertEqual(expected["plain.txt"][4], MTIME_NS)
        self.assertEqual(expected["private.key"][1:4], (0o600, 1234, 5678))
        self.assertEqual(expected["link"][6], "a/b/c/deep.bin")
        self.assertEqual(expected["empty"][0], stat.S_IFDIR)
        self.assertSameTree(root, os.path.join(self.dsfs_mnt, "froms3fs"))

    def test_2_namespace_made_by_dsfs_reads_the_same_through_s3fs(self):
        # File bytes go in as a plain PUT (no metadata, as any tool writes
        # them); everything else is done through dsfs.
        self.s3.put(self.BUCKET, "staging/data.bin", harness.rand_bytes(2, 50000))
        self.s3.put(self.BUCKET, "staging/notes.txt", b"notes\n")
        d = self.dsfs_mnt
        root = os.path.join(d, "fromdsfs")
        os.mkdir(root, 0o750)
        os.mkdir(os.path.join(root, "empty"))
        os.makedirs(os.path.join(root, "x", "y"))
        os.rename(os.path.join(d, "staging", "data.bin"), os.path.join(root, "x", "y", "data.bin"))
        os.rename(os.path.join(d, "staging", "notes.txt"), os.path.join(root, "notes.txt"))
        os.chmod(os.path.join(root, "x", "y", "data.bin"), 0o644)
        os.chmod(os.path.join(root, "notes.txt"), 0o600)
        os.chown(os.path.join(root, "notes.txt"), 1234, 5678)
        os.utime(os.path.join(root, "notes.txt"), ns=(ATIME_NS, MTIME_NS))
        os.chmod(os.path.join(root, "x"), 0o711)
        os.utime(os.path.join(root, "x", "y"), ns=(ATIME_NS, MTIME_NS + 1))
        os.symlink("x/y/data.bin", os.path.join(root, "link"))
        # A directory renamed by dsfs keeps its contents for s3fs too.
        os.mkdir(os.path.join(root, "before"))
        os.symlink("../notes.txt", os.path.join(root, "before", "up"))
        os.rename(os.path.join(root, "before"), os.path.join(root, "after"))
        expected = snapshot(root)
        self.assertEqual(expected["notes.txt"][1:5], (0o600, 1234, 5678, MTIME_NS))
        self.assertEqual(expected["x"][1], 0o711)
        self.assertEqual(expected["after/up"][6], "../notes.txt")
        self.assertSameTree(root, os.path.join(self.s3fs_mnt, "fromdsfs"))


if __name__ == "__main__":
    unittest.main()
