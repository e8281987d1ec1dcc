"""Write patterns through a real mount (multipart_size=5, through the fault
proxy): multipart edge sizes, out-of-order / overlapping / sparse writes
against a local model (sha256 by direct GET), the checkpoint pattern with a
concurrent reader that must never see a partial object, and a failed
UploadPart / CompleteMultipartUpload (close fails, the upload is aborted,
no object appears)."""

import errno
import hashlib
import os
import random
import threading
import unittest

import cache_util as cu
import harness
from harness import MiB

PART = 5 * MiB  # multipart_size=5


def sha(data):
    return hashlib.sha256(data).hexdigest()


class WritePatternsTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.staging = os.path.join(cls.tmp, "staging")
        os.makedirs(cls.staging)
        cls.proxy = cu.Proxy(cls.server.port, cls.tmp)
        cls.addClassCleanup(cls.proxy.stop)
        cls.mnt, cls.log = cls.mount_bucket(server=cls.proxy, extra_opts=[
            "multipart_size=5", f"tmpdir={cls.staging}", "parallel_count=4",
            "retries=1"])

    def tearDown(self):
        self.proxy.configure(error_rate=0.0, fault_ops=["get"])

    def p(self, name):
        return os.path.join(self.mnt, name)

    def got_sha(self, key):
        return sha(self.s3.get(self.BUCKET, key))

    def assertNoObject(self, key):
        st, _ = self.s3.head(self.BUCKET, key)
        self.assertEqual(st, 404, f"{key} should not exist")

    def test_01_multipart_edge_sizes(self):
        for i, size in enumerate((0, PART - 1, PART, PART + 1, 2 * PART + 17)):
            with self.subTest(size=size):
                data = harness.rand_bytes(100 + i, size)
                self.proxy.reset()
                with open(self.p(f"edge-{size}"), "wb") as f:
                    f.write(data)
                self.assertEqual(self.got_sha(f"edge-{size}"), sha(data))
                self.assertEqual(os.stat(self.p(f"edge-{size}")).st_size, size)
                mpu = self.proxy.stats()["multipart"]
                self.assertEqual(mpu["mpu_create"], 1 if size > PART else 0, mpu)
                self.assertEqual(mpu["mpu_abort"], 0, mpu)

    def test_02_out_of_order_overlapping_and_sparse_writes(self):
        rng = random.Random(7)
        model = bytearray()
        fd = os.open(self.p("scatter.bin"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # Out of order: the last part first, then the first ones.
            for off, n in ((2 * PART + 3, PART // 2), (0, PART + 11),
                           (PART - 100, 4096), (3 * PART + MiB, 17)):
                self.pwrite_model(fd, model, off, rng.randbytes(n))
            # Overlapping random writes, some beyond the end (sparse holes).
            for _ in range(40):
                off = rng.randrange(0, 4 * PART)
                self.pwrite_model(fd, model, off, rng.randbytes(rng.randrange(1, 200000)))
        finally:
            os.close(fd)
        self.assertEqual(self.got_sha("scatter.bin"), sha(bytes(model)))
        self.assertEqual(harness.sha256_file(self.p("scatter.bin")), sha(bytes(model)))

    @staticmethod
    def pwrite_model(fd, model, off, data):
        if off > len(model):
            model.extend(b"\0" * (off - len(model)))
        model[off:off + len(data)] = data
        assert os.pwrite(fd, data, off) == len(data)

    def test_03_checkpoint_pattern_never_shows_a_partial_object(self):
        versions = [harness.rand_bytes(200 + i, PART + 1000 * i + 1)
                    for i in range(4)]
        allowed = {sha(v) for v in versions}
        final = "ckpt/model.safetensors"
        os.makedirs(self.p("ckpt"), exist_ok=True)
        seen, bad = [], []
        stop = threading.Event()

        def poll():
            s3 = self.server.client()
            try:
                while not stop.is_set():
                    st, _ = s3.head(self.BUCKET, final)
                    if st == 200:
                        try:
                            h = sha(s3.get(self.BUCKET, final))
                        except harness.S3Error:
                            h = None  # replaced between HEAD and GET
                        if h is not None:
                            seen.append(("get", h))
                            if h not in allowed:
                                bad.append(("get", h))
                    try:
                        h = harness.sha256_file(self.p(final))
                    except OSError as e:
                        if e.errno not in (errno.ENOENT, errno.ESTALE):
                            bad.append(("mount", errno.errorcode[e.errno]))
                        continue
                    seen.append(("mount", h))
                    if h not in allowed:
                        bad.append(("mount", h))
            finally:
                s3.close()

        reader = threading.Thread(target=poll)
        reader.start()
        try:
            for i, data in enumerate(versions):
                tmp = self.p(f"ckpt/.model.safetensors.tmp{i}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    for off in range(0, len(data), MiB):
                        os.write(fd, data[off:off + MiB])
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, self.p(final))
                os.chmod(self.p(final), 0o644)
                self.assertEqual(self.got_sha(final), sha(data))
        finally:
            stop.set()
            reader.join(120)
        self.assertFalse(bad, f"the reader saw a partial or failed object: {bad[:5]}")
        self.assertTrue(seen, "the reader never saw the final name")
        self.assertEqual(sorted(os.listdir(self.p("ckpt"))), ["model.safetensors"])
        self.assertEqual(os.stat(self.p(final)).st_mode & 0o7777, 0o644)

    def failed_step_test(self, step, name):
        self.proxy.configure(fault_ops=[step], error_rate=1.0, error_code=500)
        self.proxy.reset()
        f = open(self.p(name), "wb")
        f.write(harness.rand_bytes(300, 2 * PART + 17))
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EIO, cm.exception)
        self.proxy.configure(error_rate=0.0, fault_ops=["get"])
        mpu = self.proxy.stats()["multipart"]
        self.assertEqual(mpu["mpu_create"], 1, mpu)
        self.assertGreaterEqual(mpu["mpu_abort"], 1, f"no AbortMultipartUpload: {mpu}")
        self.assertNoObject(name)

    def test_04_failed_upload_part_is_eio_aborted_and_leaves_no_object(self):
        self.failed_step_test("mpu_part", "fail-part.bin")

    def test_05_failed_complete_is_eio_aborted_and_leaves_no_object(self):
        self.failed_step_test("mpu_complete", "fail-complete.bin")


if __name__ == "__main__":
    unittest.main()
