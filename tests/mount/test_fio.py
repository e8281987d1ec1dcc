"""fio random writes with --verify=crc32c on the mount (the verify reads
through the mount right after), then a remount with an empty block cache
and the same verify again: the bytes come from the store this time."""

import os
import shutil
import subprocess
import unittest

import harness


def fio(directory, *extra):
    cmd = ["fio", "--name=dsfs-verify", f"--directory={directory}",
           "--rw=randwrite", "--bs=4k", "--size=8M", "--nrfiles=2",
           "--ioengine=psync", "--fallocate=none", "--verify=crc32c",
           "--verify_fatal=1", "--randseed=1234",
           "--verify_state_save=0", *extra]  # no state file in the cwd
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)


class FioTest(harness.MountTestCase):

    def test_random_writes_verify_through_the_mount_and_after_a_remount(self):
        if shutil.which("fio") is None:
            raise harness.HarnessError("fio missing: run scripts/setup.sh")
        staging = os.path.join(self.tmp, "staging")
        os.makedirs(staging)
        cache1 = os.path.join(self.tmp, "cache1")
        mnt, _ = self.mount_bucket(extra_opts=[f"tmpdir={staging}",
                                               f"cache_dir={cache1}"])
        os.makedirs(os.path.join(mnt, "fio"))
        r = fio(os.path.join(mnt, "fio"))
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])
        self.assertNotIn("verify failed", r.stdout)
        self.unmount_now(mnt)
        for i in range(2):  # fio's file names: <job>.<thread>.<file>
            st, hdrs = self.s3.head(self.BUCKET, f"fio/dsfs-verify.0.{i}")
            self.assertEqual(st, 200)
            self.assertEqual(int(hdrs["content-length"]), 4 * harness.MiB)
        cache2 = os.path.join(self.tmp, "cache2")  # empty: nothing cached
        mnt, _ = self.mount_bucket(extra_opts=[f"tmpdir={staging}",
                                               f"cache_dir={cache2}"])
        r = fio(os.path.join(mnt, "fio"), "--verify_only")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])
        # The verify pass read the 8 MiB back (fio's READ summary line).
        self.assertRegex(r.stdout, r"READ: bw=.*io=8192KiB", r.stdout[-3000:])
        self.assertNotIn("verify failed", r.stdout)
        self.unmount_now(mnt)


if __name__ == "__main__":
    unittest.main()
