"""Differential test of the write path and namespace: seeded random
sequences of create / write-at-offset / truncate / rename (file and dir) /
mkdir / rmdir / unlink / symlink / chmod / read / listdir / stat applied to
the mount AND to a local tmp dir; after each step the return value, the
errno and the bytes must be equal.

  DSFS_DIFF_SEQUENCES  number of sequences (default 100)
  DSFS_DIFF_STEPS      steps per sequence (default 50)
  DSFS_DIFF_SEED       base seed (default 1); sequence i uses seed+i

On a mismatch the seed and the step list are printed: rerun with
DSFS_DIFF_SEED=<seed> DSFS_DIFF_SEQUENCES=1 to replay it.

Intended differences (docs/SEMANTICS.md, "Differences from a local
filesystem") are excluded in ONE place: normalize_stat() below.
"""

import errno
import os
import random
import stat
import unittest

import harness

SEQUENCES = int(os.environ.get("DSFS_DIFF_SEQUENCES", "100"))
STEPS = int(os.environ.get("DSFS_DIFF_STEPS", "50"))
SEED = int(os.environ.get("DSFS_DIFF_SEED", "1"))

# A small namespace so that operations collide often.
NAMES = ["a", "b", "d1", "d2", "d1/a", "d1/c", "d2/b", "d1/e/f", "d1/e"]
MODES = [0o644, 0o600, 0o755, 0o444, 0o700]


def normalize_stat(st):
    """The one place intended differences are dropped (SEMANTICS.md):
    times (not compared), st_ino/st_dev/st_nlink (no hard links; directory
    link counts are not computed), uid/gid (the mount's owner), st_blocks
    and st_blksize (no local allocation), a directory's st_size."""
    kind = stat.S_IFMT(st.st_mode)
    size = st.st_size if kind != stat.S_IFDIR else 0
    return (kind, stat.S_IMODE(st.st_mode) if kind != stat.S_IFLNK else 0,
            size)


def run_op(root, op):
    """Applies one op below root; returns a comparable value or ('err', name)."""
    name, args = op[0], op[1:]
    p = lambda rel: os.path.join(root, rel)
    try:
        if name == "create":
            fd = os.open(p(args[0]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, args[1])
            os.close(fd)
            return None
        if name == "write":
            rel, off, data = args
            fd = os.open(p(rel), os.O_WRONLY)
            try:
                n = os.pwrite(fd, data, off)
            finally:
                os.close(fd)
            return n
        if name == "truncate":
            os.truncate(p(args[0]), args[1])
            return None
        if name == "rename":
            os.rename(p(args[0]), p(args[1]))
            return None
        if name == "mkdir":
            os.mkdir(p(args[0]), 0o755)
            return None
        if name == "rmdir":
            os.rmdir(p(args[0]))
            return None
        if name == "unlink":
            os.unlink(p(args[0]))
            return None
        if name == "symlink":
            os.symlink(args[1], p(args[0]))
            return None
        if name == "readlink":
            return os.readlink(p(args[0]))
        if name == "chmod":
            os.chmod(p(args[0]), args[1])
            return None
        if name == "read":
            with open(p(args[0]), "rb") as f:
                return f.read()
        if name == "listdir":
            return sorted(os.listdir(p(args[0])))
        if name == "stat":
            return normalize_stat(os.lstat(p(args[0])))
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))
    raise AssertionError(f"unknown op {name}")


def gen_op(rng, snapshot):
    """One random op; `snapshot` (tree() of the local root) biases the
    names towards ones that exist, so that most steps do something."""
    existing = sorted(snapshot)
    files = sorted(k for k, (st, _) in snapshot.items() if st[0] == stat.S_IFREG)
    name = rng.choice(["create", "write", "write", "truncate", "rename",
                       "rename", "mkdir", "mkdir", "rmdir", "unlink",
                       "symlink", "readlink", "chmod", "read", "read",
                       "listdir", "stat"])
    pick = lambda: (rng.choice(existing) if existing and rng.random() < 0.6
                    else rng.choice(NAMES))
    rel = rng.choice(NAMES) if name in ("create", "mkdir", "symlink") else pick()
    if name in ("write", "truncate", "read") and files and rng.random() < 0.7:
        rel = rng.choice(files)
    if name == "create":
        return (name, rel, rng.choice(MODES[:3]))
    if name == "write":
        off = rng.choice([0, 0, 1, 100, 4095, 4096, 70000])
        size = rng.choice([1, 10, 4096, 5000, 65536])
        return (name, rel, off, rng.randbytes(size))
    if name == "truncate":
        return (name, rel, rng.choice([0, 1, 100, 5000, 100000]))
    if name == "rename":
        return (name, rel, pick())
    if name == "symlink":
        return (name, rel, rng.choice(["a", "../b", "d1/c", "nowhere"]))
    if name == "chmod":
        return (name, rel, rng.choice(MODES))
    if name == "listdir":
        return (name, rng.choice(["", "d1", "d2", "d1/e", "a"]) if rng.random() < 0.5
                else pick())
    return (name, rel)


def show(op):
    return tuple(f"<{len(a)} bytes>" if isinstance(a, bytes) else a for a in op)


def tree(root):
    """Whole-tree snapshot: relative path -> normalized stat and content."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            body = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    body = f.read()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(full)
            out[rel] = (normalize_stat(st), body)
    return out


class DifferentialTest(harness.MountTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        staging = os.path.join(cls.tmp, "staging")
        os.makedirs(staging)
        cls.mnt, cls.log = cls.mount_bucket(extra_opts=[f"tmpdir={staging}"])

    def run_sequence(self, seed):
        rng = random.Random(seed)
        top = f"seq{seed}"
        mroot = os.path.join(self.mnt, top)
        lroot = os.path.join(self.tmp, "local", top)
        os.makedirs(mroot)
        os.makedirs(lroot)
        done = []
        for step in range(STEPS):
            op = gen_op(rng, tree(lroot))
            done.append(op)
            want = run_op(lroot, op)
            got = run_op(mroot, op)
            if want != got:
                self.fail_sequence(seed, done, f"step {step}: {show(op)}: "
                                   f"local {want!r:.200} mount {got!r:.200}")
        want, got = tree(lroot), tree(mroot)
        if want != got:
            diff = sorted(k for k in set(want) | set(got)
                          if want.get(k) != got.get(k))
            self.fail_sequence(seed, done, f"final trees differ at {diff}")

    def fail_sequence(self, seed, done, msg):
        steps = "\n".join(f"  {i}: {show(op)}" for i, op in enumerate(done))
        self.fail(f"seed {seed} (replay: DSFS_DIFF_SEED={seed} "
                  f"DSFS_DIFF_SEQUENCES=1): {msg}\nsteps:\n{steps}")

    def test_random_sequences(self):
        for i in range(SEQUENCES):
            self.run_sequence(SEED + i)


if __name__ == "__main__":
    unittest.main()
