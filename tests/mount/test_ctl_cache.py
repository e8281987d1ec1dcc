"""dsfsctl cache du|fsck|gc|clear against a cache a real mount filled: du
agrees with the files, a flipped byte and a truncated block make fsck exit
1 naming both, --repair fixes them and a remount reads exact bytes; clear,
gc and fsck --repair refuse (exit 5) while a mount holds the directory; a
directory that is no dsfs cache is exit 3 and left alone."""

import json
import os
import tempfile
import unittest

import cache_util as cu
import harness
from harness import MiB
from test_ctl_stats import ctl, dsfsctl_bin

SIZE = 6 * MiB + 12345  # two 4 MiB blocks, the second short


class CtlCacheTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not harness.is_dsfs():
            raise unittest.SkipTest("dsfs cache directories only")
        dsfsctl_bin()
        cls.sha = {}
        for name, seed in (("a.bin", 1), ("b.bin", 2)):
            path = os.path.join(cls.tmp, name)
            cls.sha[name] = harness.write_random_file(path, SIZE, seed)
            cls.s3.put(cls.BUCKET, name, file=path)

    def fill(self):
        cdir = os.path.join(tempfile.mkdtemp(prefix="cache-", dir=self.tmp), "c")
        opts = [f"cache_dir={cdir}", "cache_size=1G", "prefetch_whole="]
        mnt, _ = self.mount_bucket(extra_opts=opts)
        self.read_all(mnt)
        harness.wait_until(lambda: len(cu.block_files(cdir)) >= 4, 60, 0.1,
                           "four blocks on disk")
        return cdir, opts, mnt

    def read_all(self, mnt):
        for name, sha in self.sha.items():
            self.assertEqual(harness.sha256_file(os.path.join(mnt, name)), sha)

    def test_01_du_fsck_repair_remount(self):
        cdir, opts, mnt = self.fill()
        self.unmount_now(mnt)
        r = ctl("cache", "du", "--cache-dir", cdir, "--json", "--cache-size", "1G")
        self.assertEqual(r.returncode, 0, r.stderr)
        du = json.loads(r.stdout)
        files = cu.block_files(cdir)
        print("du:", du)
        self.assertEqual(du["blocks"], len(files))
        self.assertEqual(du["blocks"], 4)
        self.assertEqual(du["bytes"], sum(os.path.getsize(f) for f in files))
        self.assertEqual(du["objects"], 2)
        self.assertEqual(du["cap_bytes"], 1 << 30)
        self.assertTrue(du["clean"])
        self.assertIn("blocks", ctl("cache", "du", "--cache-dir", cdir).stdout)
        self.assertEqual(ctl("cache", "fsck", "--cache-dir", cdir).returncode, 0)

        flipped, truncated = sorted(files)[:2]
        with open(flipped, "r+b") as f:
            f.seek(os.path.getsize(flipped) - 100)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0xFF]))
        os.truncate(truncated, os.path.getsize(truncated) // 2)
        r = ctl("cache", "fsck", "--cache-dir", cdir)
        print(r.stdout)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"bad-checksum {flipped}", r.stdout)
        self.assertIn(f"wrong-size {truncated}", r.stdout)
        r = ctl("cache", "fsck", "--cache-dir", cdir, "--repair")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = ctl("cache", "fsck", "--cache-dir", cdir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 problems", r.stdout)
        self.assertEqual(len(cu.block_files(cdir)), 2)

        mnt, _ = self.mount_bucket(extra_opts=opts)
        self.read_all(mnt)
        self.unmount_now(mnt)

        r = ctl("cache", "gc", "--cache-dir", cdir, "--size", "5M")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = json.loads(ctl("cache", "du", "--cache-dir", cdir, "--json").stdout)
        self.assertLessEqual(after["bytes"], 5 * MiB)

    def test_02_refused_while_mounted(self):
        cdir, opts, mnt = self.fill()
        before = sorted(cu.block_files(cdir))
        for args in (["clear"], ["fsck", "--repair"], ["gc", "--size", "0"]):
            r = ctl("cache", *args, "--cache-dir", cdir)
            self.assertEqual(r.returncode, 5, args)
            self.assertIn("in use", r.stderr)
        self.assertEqual(sorted(cu.block_files(cdir)), before)
        self.assertEqual(ctl("cache", "du", "--cache-dir", cdir).returncode, 0)
        self.read_all(mnt)
        self.unmount_now(mnt)
        r = ctl("cache", "clear", "--cache-dir", cdir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(cu.block_files(cdir), [])
        mnt, _ = self.mount_bucket(extra_opts=opts)  # a valid, empty cache
        self.read_all(mnt)
        self.unmount_now(mnt)

    def test_03_not_a_cache_dir(self):
        d = tempfile.mkdtemp(prefix="random-", dir=self.tmp)
        with open(os.path.join(d, "x"), "w") as f:
            f.write("x")
        for args in (["du"], ["fsck", "--repair"], ["gc", "--size", "0"], ["clear"]):
            r = ctl("cache", *args, "--cache-dir", d)
            self.assertEqual(r.returncode, 3, args)
            self.assertIn("not a dsfs cache", r.stderr)
        self.assertEqual(os.listdir(d), ["x"])


if __name__ == "__main__":
    unittest.main()
