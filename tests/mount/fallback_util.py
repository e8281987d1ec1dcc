"""Helpers for test_fallback: the fault proxy as a fixture, the mount's
counters, timed reads and log-line counting. Shared fixtures (s3rver,
mount/unmount) are in harness.py."""

import hashlib
import http.client
import json
import mmap
import os
import re
import subprocess
import sys
import threading
import time

import harness
from harness import MiB

PROXY_SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "s3proxy.py")

# What every test starts from (s3proxy.py's own defaults, no faults).
CLEAN_PROXY = dict(latency_ms=0, bw_per_conn=0, error_rate=0, error_code=503,
                   reset_rate=0, short_rate=0, stall_rate=0, stall_ms=5000,
                   blackhole=False, refuse=False, fault_ops=["get"], seed=1)


class FaultProxy:
    """scripts/s3proxy.py in front of an upstream S3 server on 127.0.0.1.
    url() makes it usable as the `server` of MountTestCase.base_opts."""

    def __init__(self, upstream_port, logpath, seed=1):
        self.upstream_port = upstream_port
        self.logpath = logpath
        self.seed = seed
        self.proc = None
        self.port = None
        self.ctl = None

    def start(self, timeout=20):
        self._log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, PROXY_SCRIPT, "--upstream",
             f"127.0.0.1:{self.upstream_port}", "--port", "0",
             "--seed", str(self.seed)],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            stdin=subprocess.DEVNULL, start_new_session=True)

        def read_ports():
            for line in self.proc.stdout:
                if line.startswith("control on 127.0.0.1:"):
                    self.ctl = int(line.rsplit(":", 1)[1])
                elif line.startswith("listening on 127.0.0.1:"):
                    self.port = int(line.split(":", 1)[1].split()[0])
                    return

        t = threading.Thread(target=read_ports, daemon=True)
        t.start()
        t.join(timeout)
        if self.port is None or self.ctl is None:
            self.stop()
            raise harness.HarnessError("s3proxy did not print its ports")
        return self

    def url(self, host="127.0.0.1"):
        return f"http://{host}:{self.port}"

    def _control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.ctl, timeout=10)
        try:
            conn.request(method, path, body=None if body is None else
                         json.dumps(body))
            resp = conn.getresponse()
            data = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        if resp.status != 200:
            raise harness.HarnessError(f"proxy {method} {path}: {data}")
        return data

    def configure(self, **settings):
        return self._control("POST", "/__proxy/config", settings)

    def reset(self):
        """No faults, counters zeroed, RNG reseeded."""
        self.configure(**CLEAN_PROXY)
        self.reset_stats()

    def stats(self):
        return self._control("GET", "/__proxy/stats")

    def reset_stats(self):
        self._control("POST", "/__proxy/stats/reset")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        self.proc = None


# ------------------------------------------------------------ counters


def mount_stats(mnt):
    """The mount's counters (user.dsfs.stats, Prometheus text) as
    {name: value}, labelled series summed per name."""
    text = os.getxattr(mnt, "user.dsfs.stats").decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def counter(mnt, name):
    return mount_stats(mnt).get(name, 0.0)


def counter_by_source(mnt, name):
    """{source: value} of a counter family with a `source` label (e.g.
    dsfs_parallel_bytes_total{source="share"})."""
    text = os.getxattr(mnt, "user.dsfs.stats").decode()
    out = {}
    for m in re.finditer(r'(?m)^' + re.escape(name) +
                         r'\{[^}]*source="([^"]+)"[^}]*\} (\S+)$', text):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


class CounterWatch:
    """Polls one counter of a mount in a thread and records the monotonic
    time at which it was first seen above `baseline` (at most `interval`
    late, or at stop() when the change came after the last poll)."""

    def __init__(self, mnt, name, baseline, interval=0.05):
        self.mnt, self.name, self.baseline = mnt, name, baseline
        self.interval = interval
        self.when = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                if counter(self.mnt, self.name) > self.baseline:
                    self.when = time.monotonic()
                    return
            except OSError:
                pass
            self._stop.wait(self.interval)

    def stop(self):
        """Stops polling. A change the poller missed (the work finished
        between two polls) is recorded now: `when` is then an upper bound."""
        self._stop.set()
        self._t.join(10)
        if self.when is None and counter(self.mnt, self.name) > self.baseline:
            self.when = time.monotonic()


# ------------------------------------------------------------ reading


class TimedRead:
    """Reads a whole file with os.read(bufsize) calls; sha256, byte count,
    and the longest single read() call."""

    def __init__(self, path, bufsize=MiB):
        self.path, self.bufsize = path, bufsize
        self.sha = None
        self.nbytes = 0
        self.max_call = 0.0
        self.error = None

    def run(self):
        h = hashlib.sha256()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            while True:
                t0 = time.monotonic()
                b = os.read(fd, self.bufsize)
                self.max_call = max(self.max_call, time.monotonic() - t0)
                if not b:
                    break
                h.update(b)
                self.nbytes += len(b)
        finally:
            os.close(fd)
        self.sha = h.hexdigest()
        return self


def read_direct(path, bufsize=MiB):
    """Reads a whole file with O_DIRECT (no page cache, no kernel
    read-ahead: every FUSE read error reaches the caller, the kernel
    retries nothing). Returns (sha256 hex, byte count)."""
    h = hashlib.sha256()
    buf = mmap.mmap(-1, bufsize)  # page aligned, as O_DIRECT wants
    n = 0
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while True:
            got = os.readv(fd, [buf])
            if got == 0:
                break
            h.update(buf[:got])
            n += got
    finally:
        os.close(fd)
        buf.close()
    return h.hexdigest(), n


def read_concurrently(paths, bufsize=MiB, timeout=600):
    """Reads each path in its own thread. Returns the TimedReads; an
    exception in a reader is stored in its .error."""
    readers = [TimedRead(p, bufsize) for p in paths]

    def run(r):
        try:
            r.run()
        except Exception as e:  # reported by the caller
            r.error = e

    threads = [threading.Thread(target=run, args=(r,), daemon=True)
               for r in readers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for r, t in zip(readers, threads):
        if t.is_alive():
            r.error = TimeoutError(f"read of {r.path} still running after "
                                   f"{timeout}s")
    return readers


def call_with_deadline(fn, timeout):
    """Runs fn() in a thread. Returns (result, exception, seconds); raises
    AssertionError when it is still running after `timeout` (a hang)."""
    box = {}

    def run():
        t0 = time.monotonic()
        try:
            box["result"] = fn()
        except Exception as e:
            box["error"] = e
        box["dt"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"call still blocked after {timeout}s (hang)")
    return box.get("result"), box.get("error"), box["dt"]


def read_file(path):
    with open(path, "rb", buffering=0) as f:
        out = bytearray()
        while True:
            b = f.read(MiB)
            if not b:
                return bytes(out)
            out += b


# ------------------------------------------------------------ logs


def log_lines(path, needle):
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if needle in line]


def wait_log(path, needle, timeout, count=1):
    harness.wait_until(lambda: len(log_lines(path, needle)) >= count,
                       timeout, 0.1, f"{needle!r} in {path}")
