"""Helpers for test_cache.py: the mount's counters, the cache directory's
files, tmpfs mounts, the daemon's memory, and scripts/s3proxy.py as a
request counter in front of s3rver."""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import harness
from harness import MiB

PROXY_SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "s3proxy.py")


def env_mb(name, default):
    return int(os.environ.get(name, str(default)))


# ------------------------------------------------------------- counters


def stats(mnt):
    """The mount's metrics (user.dsfs.stats) as {key: float}: each series
    under its key as written (dsfs_s3_requests_total{op="GET"}), and a
    labelled family also under its bare name, summed over its series."""
    text = os.getxattr(mnt, "user.dsfs.stats").decode()
    out = {}
    sums = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
        if "{" in key:
            name = key.split("{", 1)[0]
            sums[name] = sums.get(name, 0.0) + float(value)
    for name, total in sums.items():
        out.setdefault(name, total)
    return out


def counter(mnt, name):
    s = stats(mnt)
    if name not in s:
        raise AssertionError(f"counter {name} missing from user.dsfs.stats: "
                             f"{sorted(s)}")
    return s[name]


def wait_settled(mnt, names, quiet=1.5, timeout=20, interval=0.25):
    """Waits (bounded) until the counters `names` have not changed for
    `quiet` seconds; returns their last values. Used only to let background
    work finish before asserting that it did NOT do something."""
    deadline = time.monotonic() + timeout
    last = None
    since = time.monotonic()
    while True:
        s = stats(mnt)
        cur = tuple(s.get(n, 0) for n in names)
        now = time.monotonic()
        if cur != last:
            last, since = cur, now
        elif now - since >= quiet:
            return dict(zip(names, cur))
        if now > deadline:
            return dict(zip(names, cur))
        time.sleep(interval)


# --------------------------------------------------------- cache files


def block_files(cache_dir):
    """Paths of every block file under cache_dir/blocks/."""
    out = []
    root = os.path.join(cache_dir, "blocks")
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files]
    return out


def tmp_files(cache_dir):
    root = os.path.join(cache_dir, "tmp")
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, f) for f in os.listdir(root)]


def blocks_usage(cache_dir):
    """(apparent bytes, allocated bytes) of the files under blocks/. Files
    can vanish while we walk (eviction): they are skipped."""
    apparent = allocated = 0
    for p in block_files(cache_dir):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        apparent += st.st_size
        allocated += st.st_blocks * 512
    return apparent, allocated


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


class Sampler:
    """Calls fn() every `interval` seconds on a thread, keeps the maximum."""

    def __init__(self, fn, interval=0.05):
        self.fn = fn
        self.interval = interval
        self.max = None
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = self.fn()
            self.samples += 1
            self.max = v if self.max is None else max(self.max, v)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(10)


# ------------------------------------------------------------- system


def drop_page_cache():
    """Drops the kernel page cache (root only). Returns whether it did."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError as e:
        print(f"cache_util: drop_caches failed: {e}", file=sys.stderr)
        return False


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                    "tmpfs", path], check=True, capture_output=True)


def mount_loop_ext4(path, size_mb, image):
    """A small ext4 filesystem on a loop device (an EVS disk of its own):
    `image` is its backing file; `mount -o loop` frees the loop device at
    unmount (umount_tmpfs unmounts it too)."""
    os.makedirs(path, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(size_mb * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], check=True,
                   capture_output=True)
    subprocess.run(["mount", "-o", "loop", image, path], check=True,
                   capture_output=True)
    os.chmod(path, 0o700)


def remount_ro(path):
    subprocess.run(["mount", "-o", "remount,ro", path], check=True,
                   capture_output=True)


def umount_tmpfs(path):
    """Unmounts a tmpfs made by mount_tmpfs (lazily if busy)."""
    if not os.path.ismount(path):
        return
    r = subprocess.run(["umount", path], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def vm_hwm_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def daemon_pid(mnt):
    pids = harness.find_daemon_pids(mnt)
    if len(pids) != 1:
        raise AssertionError(f"expected one dsfs daemon for {mnt}, "
                             f"found {pids}")
    return pids[0]


def kill_and_detach(mnt, pid):
    """SIGKILLs the daemon and lazily detaches its (now dead) mount."""
    os.kill(pid, 9)
    harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}") or
                       _is_zombie(pid), 30, 0.05, f"dsfs {pid} to die")
    r = subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
    if r.returncode != 0 and harness.is_mounted(mnt):
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    harness.wait_until(lambda: not harness.is_mounted(mnt), 10, 0.05,
                       f"{mnt} to be detached")


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def sha256_range(path, offset, length, bufsize=MiB):
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        done = 0
        while done < length:
            b = os.pread(fd, min(bufsize, length - done), offset + done)
            if not b:
                break
            h.update(b)
            done += len(b)
    finally:
        os.close(fd)
    return h.hexdigest(), done


# ------------------------------------------------------------ s3proxy


class Proxy:
    """scripts/s3proxy.py (no faults) in front of s3rver: counts requests
    by operation independently of dsfs's own counters."""

    def __init__(self, upstream_port, logdir):
        self.log = os.path.join(logdir, f"s3proxy-{upstream_port}.log")
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, PROXY_SCRIPT, "--upstream",
             f"127.0.0.1:{upstream_port}", "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._logf,
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.stop()
            raise harness.HarnessError(
                f"s3proxy did not start: {harness.tail(self.log)}")
        # Keep draining stdout so the proxy never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method, path):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self._call("GET", "/__proxy/stats")

    def configure(self, **cfg):
        """Changes the proxy's fault settings (see scripts/s3proxy.py)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/__proxy/config", method="POST",
            data=json.dumps(cfg).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def reset(self):
        self._call("POST", "/__proxy/stats/reset")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._logf.close()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
