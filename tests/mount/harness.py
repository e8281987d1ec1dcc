"""Shared fixtures for dsfs mount tests.

Each tests/mount/test_*.py file is one ctest test (`mount.<name>`), run as
`python3 -m unittest -v <name>` from this directory with:

  DSFS_BIN          the dsfs binary under test (required unless
                    DSFS_TEST_CLIENT=s3fs)
  DSFS_SOURCE_DIR   the repository (s3rver is looked up in .deps/ there)
  DSFS_S3RVER       optional: path to an s3rver executable
  DSFS_TEST_CLIENT  "dsfs" (default) or "s3fs": run the data tests against
                    s3fs, to sanity-check the tests themselves
  DSFS_TEST_BIG_MB  size of the big object in test_read (default 1024)
  DSFS_SANITIZER_LOG_DIR  if set, the daemon's ASan/UBSan reports go to
                    files there, and a report fails the test class

Nothing here skips: a missing /dev/fuse, s3rver or dsfs binary is an error.
"""

import datetime
import errno
import hashlib
import hmac
import http.client
import os
import random
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DSFS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(HERE))
CLIENT = os.environ.get("DSFS_TEST_CLIENT", "dsfs")

# s3rver's only account.
S3RVER_AK = "S3RVER"
S3RVER_SK = "S3RVER"
REGION = "us-east-1"

MiB = 1024 * 1024


class HarnessError(RuntimeError):
    """A prerequisite or fixture failed: the test must fail, not skip."""


# ---------------------------------------------------------------- basics


def is_dsfs():
    return CLIENT == "dsfs"


def dsfs_bin():
    path = os.environ.get("DSFS_BIN")
    if not path:
        raise HarnessError("DSFS_BIN is not set (path of the dsfs binary)")
    if not os.access(path, os.X_OK):
        raise HarnessError(f"DSFS_BIN={path} is not an executable file")
    return path


def s3rver_bin():
    path = os.environ.get("DSFS_S3RVER") or os.path.join(
        SOURCE_DIR, ".deps", "node_modules", ".bin", "s3rver")
    if not os.access(path, os.X_OK):
        raise HarnessError(
            f"s3rver not found at {path}: run scripts/setup.sh "
            "(installs it into .deps/)")
    return path


def require_prereqs():
    """Raises HarnessError when something the mount tests need is missing."""
    if not os.path.exists("/dev/fuse"):
        raise HarnessError("/dev/fuse is missing: FUSE mounts impossible here")
    if shutil.which("fusermount3") is None:
        raise HarnessError("fusermount3 not found (package fuse3)")
    s3rver_bin()
    if CLIENT == "dsfs":
        dsfs_bin()
    elif CLIENT == "s3fs":
        if shutil.which("s3fs") is None:
            raise HarnessError("DSFS_TEST_CLIENT=s3fs but s3fs is missing")
    else:
        raise HarnessError(f"unknown DSFS_TEST_CLIENT={CLIENT}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def big_mb():
    return int(os.environ.get("DSFS_TEST_BIG_MB", "1024"))


# ------------------------------------------------------------ random data


def rand_bytes(seed, size):
    return random.Random(seed).randbytes(size)


def write_random_file(path, size, seed, chunk=8 * MiB):
    """Writes `size` deterministic bytes; returns their sha256 hex digest."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            b = rng.randbytes(n)
            h.update(b)
            f.write(b)
            left -= n
    return h.hexdigest()


def sha256_file(path, bufsize=MiB):
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            b = os.read(fd, bufsize)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)
    return h.hexdigest()


# -------------------------------------------------------------- S3 client


def _uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


class S3Error(RuntimeError):
    def __init__(self, status, body):
        super().__init__(f"S3 error {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class S3Client:
    """A small SigV4 S3 client (path-style) over one keep-alive connection."""

    def __init__(self, host, port, ak=S3RVER_AK, sk=S3RVER_SK, region=REGION,
                 tls_context=None):
        self.host, self.port = host, port
        self.ak, self.sk, self.region = ak, sk, region
        self.tls_context = tls_context
        self._conn = None
        self._lock = threading.Lock()

    def _connect(self):
        if self.tls_context is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=120, context=self.tls_context,
                blocksize=MiB)
        return http.client.HTTPConnection(self.host, self.port, timeout=120,
                                          blocksize=MiB)

    def _sign(self, method, path, query, headers, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        headers["host"] = f"{self.host}:{self.port}"
        headers["x-amz-date"] = amz_date
        headers["x-amz-content-sha256"] = payload_hash
        names = sorted(k.lower() for k in headers)
        lower = {k.lower(): str(v).strip() for k, v in headers.items()}
        canon_headers = "".join(f"{k}:{lower[k]}\n" for k in names)
        signed = ";".join(names)
        canon_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}"
            for k, v in sorted(query.items()))
        canon_uri = _uri_encode(path, safe="-_.~/")
        creq = "\n".join([method, canon_uri, canon_query, canon_headers,
                          signed, payload_hash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + self.sk).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, "
            f"SignedHeaders={signed}, Signature={sig}")
        return canon_uri + ("?" + canon_query if canon_query else "")

    def request(self, method, path, query=None, headers=None, body=b"",
                unsigned=False):
        """Returns (status, headers dict, body bytes). `body` may be bytes
        or an open binary file (then Content-Length must be in headers)."""
        query = dict(query or {})
        headers = dict(headers or {})
        if isinstance(body, (bytes, bytearray)):
            payload_hash = ("UNSIGNED-PAYLOAD" if unsigned else
                            hashlib.sha256(body).hexdigest())
            headers["Content-Length"] = str(len(body))
        else:
            payload_hash = "UNSIGNED-PAYLOAD"
        with self._lock:
            for attempt in range(2):
                url = self._sign(method, path, query, headers, payload_hash)
                if self._conn is None:
                    self._conn = self._connect()
                try:
                    self._conn.request(method, url, body=body, headers=headers)
                    resp = self._conn.getresponse()
                    data = resp.read()
                    return resp.status, {k.lower(): v for k, v in
                                         resp.getheaders()}, data
                except (http.client.HTTPException, ConnectionError,
                        BrokenPipeError):
                    self._conn.close()
                    self._conn = None
                    if attempt == 1 or not isinstance(
                            body, (bytes, bytearray)):
                        raise
        raise AssertionError("unreachable")

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @staticmethod
    def _key_path(bucket, key):
        return f"/{bucket}/{key}"

    def create_bucket(self, bucket):
        st, _, body = self.request("PUT", f"/{bucket}")
        if st not in (200, 409):
            raise S3Error(st, body)

    def put(self, bucket, key, data=None, file=None, meta=None,
            content_type="application/octet-stream"):
        """PUT an object from bytes or from a local file (streamed,
        UNSIGNED-PAYLOAD). `meta` maps names to x-amz-meta-<name> values."""
        headers = {"Content-Type": content_type}
        for k, v in (meta or {}).items():
            headers[f"x-amz-meta-{k}"] = str(v)
        if file is not None:
            size = os.path.getsize(file)
            headers["Content-Length"] = str(size)
            with open(file, "rb") as f:
                st, _, body = self.request("PUT", self._key_path(bucket, key),
                                           headers=headers, body=f)
        else:
            st, _, body = self.request("PUT", self._key_path(bucket, key),
                                       headers=headers, body=data or b"",
                                       unsigned=len(data or b"") > MiB)
        if st != 200:
            raise S3Error(st, body)

    def put_dir_marker(self, bucket, dirkey, meta=None):
        assert dirkey.endswith("/")
        self.put(bucket, dirkey, b"", meta=meta,
                 content_type="application/x-directory")

    def get(self, bucket, key, byte_range=None):
        headers = {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        st, hdrs, body = self.request("GET", self._key_path(bucket, key),
                                      headers=headers)
        if st not in (200, 206):
            raise S3Error(st, body)
        return body

    def head(self, bucket, key):
        st, hdrs, body = self.request("HEAD", self._key_path(bucket, key))
        return st, hdrs

    def delete(self, bucket, key):
        st, _, body = self.request("DELETE", self._key_path(bucket, key))
        if st not in (200, 204):
            raise S3Error(st, body)

    # Multipart upload: CreateMultipartUpload, UploadPart, Complete.

    def create_multipart_upload(self, bucket, key,
                                content_type="application/octet-stream"):
        """Returns the UploadId."""
        st, _, body = self.request("POST", self._key_path(bucket, key),
                                   query={"uploads": ""},
                                   headers={"Content-Type": content_type})
        if st != 200:
            raise S3Error(st, body)
        m = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
        if not m:
            raise S3Error(st, body)
        return m.group(1).decode()

    def upload_part(self, bucket, key, upload_id, number, data):
        """Returns the part's ETag (quotes stripped)."""
        st, hdrs, body = self.request(
            "PUT", self._key_path(bucket, key),
            query={"partNumber": str(number), "uploadId": upload_id},
            body=data, unsigned=True)
        if st != 200:
            raise S3Error(st, body)
        return hdrs.get("etag", "").strip('"')

    def complete_multipart_upload(self, bucket, key, upload_id, part_etags):
        """part_etags: [(number, etag)]. Returns the object's ETag as the
        server reports it (quotes stripped)."""
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
            for n, e in part_etags) + "</CompleteMultipartUpload>"
        st, _, body = self.request("POST", self._key_path(bucket, key),
                                   query={"uploadId": upload_id},
                                   body=xml.encode(),
                                   headers={"Content-Type": "application/xml"})
        if st != 200 or b"<Error>" in body:
            raise S3Error(st, body)
        m = re.search(rb"<ETag>([^<]+)</ETag>", body)
        return m.group(1).decode().replace("&quot;", "").strip('"') if m \
            else ""

    def put_multipart(self, bucket, key, data, part_size):
        """Uploads `data` in parts of part_size bytes (the last may be
        shorter). Returns the ETag the server gave the object."""
        upload_id = self.create_multipart_upload(bucket, key)
        parts = []
        for i, off in enumerate(range(0, len(data), part_size), start=1):
            parts.append((i, self.upload_part(bucket, key, upload_id, i,
                                              data[off:off + part_size])))
        return self.complete_multipart_upload(bucket, key, upload_id, parts)


def multipart_etag(data, part_size):
    """The ETag S3 and OBS give a multipart upload of `data` in parts of
    part_size bytes: hex MD5 of the concatenated binary part MD5s, '-',
    the part count."""
    digests = [hashlib.md5(data[o:o + part_size]).digest()
               for o in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def s3fs_meta(mode=None, uid=None, gid=None, mtime=None):
    """x-amz-meta-* values the way s3fs writes them (decimal numbers)."""
    meta = {}
    if mode is not None:
        meta["mode"] = str(mode)
    if uid is not None:
        meta["uid"] = str(uid)
    if gid is not None:
        meta["gid"] = str(gid)
    if mtime is not None:
        meta["mtime"] = str(int(mtime))
    return meta


# ----------------------------------------------------------------- s3rver


def s3rver_env():
    """s3rver 3.7.1 makes ListObjectsV2 continuation tokens with DES, which
    OpenSSL 3 (Node.js >= 17) only has in its legacy provider: without it
    every truncated V2 listing is a 500."""
    env = dict(os.environ)
    opts = env.get("NODE_OPTIONS", "")
    if "--openssl-legacy-provider" not in opts:
        env["NODE_OPTIONS"] = (opts + " --openssl-legacy-provider").strip()
    return env


class S3rver:
    """An s3rver process on 127.0.0.1 with its data in `workdir`."""

    def __init__(self, workdir, buckets=(), tls=None,
                 allow_mismatched_signatures=False):
        self.workdir = workdir
        self.buckets = list(buckets)
        self.tls = tls  # (keyfile, certfile) or None
        self.allow_mismatched = allow_mismatched_signatures
        self.port = None
        self.proc = None
        self.logpath = None
        self.datadir = None

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout=30):
        datadir = tempfile.mkdtemp(prefix="s3rver-data-", dir=self.workdir)
        self.datadir = datadir
        self.logpath = os.path.join(self.workdir, f"s3rver-{id(self)}.log")
        for attempt in range(3):
            self.port = free_port()
            cmd = [s3rver_bin(), "-d", datadir, "-a", "127.0.0.1",
                   "-p", str(self.port), "--silent"]
            if self.tls:
                cmd += ["--key", self.tls[0], "--cert", self.tls[1]]
            if self.allow_mismatched:
                cmd += ["--allow-mismatched-signatures"]
            for b in self.buckets:
                cmd += ["--configure-bucket", b]
            log = open(self.logpath, "ab")
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL,
                                         env=s3rver_env(),
                                         start_new_session=True)
            log.close()
            try:
                wait_until(self._answers, timeout, 0.2, "s3rver to answer")
                return self
            except HarnessError:
                self.stop()
                if attempt == 2:
                    with open(self.logpath, "rb") as f:
                        tail = f.read()[-2000:].decode(errors="replace")
                    raise HarnessError(f"s3rver did not start: {tail}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise HarnessError(
                f"s3rver exited with code {self.proc.returncode}")
        try:
            c = self.client()
            st, _, _ = c.request("GET", "/")
            c.close()
            return st == 200
        except (OSError, http.client.HTTPException):
            return False

    def client(self, ak=S3RVER_AK, sk=S3RVER_SK):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[1])
        return S3Client("127.0.0.1", self.port, ak, sk, tls_context=ctx)

    def put_multipart_s3_style(self, bucket, key, data, part_size):
        """A multipart upload of `data` whose ETag is the S3/OBS multipart
        form (see multipart_etag). s3rver 3.7.1 stores a completed upload
        as one object with the plain MD5 of its bytes as ETag (S3 and OBS
        never do that), so the S3 form is written into the ETag file s3rver
        keeps beside the object and answers HEAD, GET and LIST from.
        Returns that ETag, checked by a HEAD."""
        client = self.client()
        try:
            got = client.put_multipart(bucket, key, data, part_size)
            want = multipart_etag(data, part_size)
        finally:
            client.close()
        if got != want:
            self.set_stored_etag(bucket, key, want)
        return want

    def set_stored_etag(self, bucket, key, etag):
        """Makes s3rver answer `etag` for an existing object: s3rver keeps
        the ETag in a file beside the object's data (<name>._S3rver_object
        .md5) and answers HEAD, GET and LIST from it. For ETags S3 gives
        but s3rver does not make (multipart, SSE-KMS). Checked by a
        HEAD."""
        *dirs, name = key.split("/")
        path = os.path.join(self.datadir, bucket, *dirs,
                            f"{name}._S3rver_object.md5")
        if not os.path.exists(path):
            raise HarnessError(f"s3rver keeps no ETag file for {key} at "
                               f"{path}")
        with open(path, "w") as f:
            f.write(etag)
        client = self.client()
        try:
            st, hdrs = client.head(bucket, key)
        finally:
            client.close()
        if st != 200 or hdrs.get("etag", "").strip('"') != etag:
            raise HarnessError(f"ETag of {key}: HEAD {st} "
                               f"{hdrs.get('etag')!r}, want {etag!r}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def make_self_signed_cert(workdir, cn="localhost"):
    key = os.path.join(workdir, "tls.key")
    cert = os.path.join(workdir, "tls.crt")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return key, cert


# ------------------------------------------------------------ credentials


def write_passwd(path, ak=S3RVER_AK, sk=S3RVER_SK, bucket=None, mode=0o600):
    line = f"{bucket}:{ak}:{sk}\n" if bucket else f"{ak}:{sk}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(line)
    os.chmod(path, mode)
    return path


# ---------------------------------------------------------- mount / unmount


def is_mounted(mnt):
    mnt = os.path.realpath(mnt)
    return any(e[1] == mnt for e in proc_mounts())


def proc_mounts():
    """[(source, mountpoint, fstype, options)] from /proc/mounts."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4:
                dec = [p.replace("\\040", " ").replace("\\011", "\t")
                       .replace("\\012", "\n").replace("\\134", "\\")
                       for p in parts[:4]]
                out.append(tuple(dec))
    return out


def mount_entry(mnt):
    mnt = os.path.realpath(mnt)
    for e in proc_mounts():
        if e[1] == mnt:
            return e
    return None


def find_daemon_pids(mnt):
    """PIDs of processes whose command line names `mnt` (the FUSE daemon)."""
    mnt = os.path.realpath(mnt)
    pids = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in args:
            pids.append(int(d))
    return pids


def read_cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


class MountResult:
    def __init__(self, returncode, stdout, stderr, elapsed):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    def __repr__(self):
        return (f"MountResult(rc={self.returncode}, "
                f"elapsed={self.elapsed:.1f}s, stderr={self.stderr!r})")


def sanitizer_env(env):
    """Routes the daemon's sanitizer reports to files when requested."""
    d = os.environ.get("DSFS_SANITIZER_LOG_DIR")
    if not d:
        return env
    os.makedirs(d, exist_ok=True)
    env = dict(env)
    base = os.path.join(d, "dsfs")
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        cur = env.get(var, "")
        env[var] = (cur + ":" if cur else "") + f"log_path={base}"
    return env


def sanitizer_snapshot():
    """The sanitizer report files that exist now (see sanitizer_reports)."""
    d = os.environ.get("DSFS_SANITIZER_LOG_DIR")
    if not d or not os.path.isdir(d):
        return frozenset()
    return frozenset(os.listdir(d))


def sanitizer_reports(before=frozenset()):
    """Non-empty daemon sanitizer reports not in `before` (file paths)."""
    d = os.environ.get("DSFS_SANITIZER_LOG_DIR")
    if not d or not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if (name not in before and name.startswith("dsfs.") and
                os.path.getsize(p) > 0):
            out.append(p)
    return out


def check_sanitizer_reports(before):
    """Raises AssertionError quoting any new daemon sanitizer report."""
    reports = sanitizer_reports(before)
    if reports:
        text = "\n".join(f"== {p}\n{tail(p, 60)}" for p in reports)
        raise AssertionError(
            f"{len(reports)} sanitizer report(s) from dsfs:\n{text}")


def _s3fs_args(src, mnt, opts):
    """Translates dsfs options to s3fs ones (only for DSFS_TEST_CLIENT=s3fs)."""
    keep = []
    for o in opts:
        name = o.split("=", 1)[0]
        if name in ("url", "passwd_file", "use_path_request_style",
                    "allow_other", "uid", "gid", "umask", "ssl_verify",
                    "no_check_certificate", "ro"):
            if name == "ssl_verify":
                keep.append("no_check_certificate")
            else:
                keep.append(o)
        # dsfs-only options (dbglevel, logfile, ttls, timeouts) are dropped.
    keep.append("ro")
    return ["s3fs", src, mnt, "-o", ",".join(keep)]


def run_dsfs(args, env=None, timeout=90):
    """Runs `dsfs ARGS...` and waits for the (parent) process only. Output
    goes to files, not pipes, so a daemon child holding them cannot hang
    us."""
    env = sanitizer_env(dict(os.environ if env is None else env))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=env)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise HarnessError(f"{args!r} did not exit within {timeout}s")
        elapsed = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return MountResult(rc, out.read().decode(errors="replace"),
                           err.read().decode(errors="replace"), elapsed)


def mount(src, mnt, opts=(), env=None, foreground=False, check=True,
          timeout=90):
    """Mounts `src` (bucket or bucket:/prefix) on `mnt` with the client
    under test. With check=True a non-zero exit or a missing mount raises.
    Returns a MountResult."""
    opts = list(opts)
    if is_dsfs():
        args = [dsfs_bin(), src, mnt]
        if opts:
            args += ["-o", ",".join(opts)]
        if foreground:
            args.append("-f")
    else:
        args = _s3fs_args(src, mnt, opts)
    res = run_dsfs(args, env=env, timeout=timeout)
    if check:
        if res.returncode != 0:
            raise HarnessError(f"mount of {src} on {mnt} failed: {res}")
        # dsfs promises the mount is ready when the parent exits; s3fs does
        # not, so wait a little for it.
        wait_until(lambda: is_mounted(mnt), 2 if is_dsfs() else 20, 0.05,
                   f"{mnt} to appear in /proc/mounts")
    return res


def unmount(mnt, wait_daemon=True):
    """fusermount3 -u with retries, lazy unmount as the last resort; then
    waits (bounded) for the daemon to exit."""
    pids = find_daemon_pids(mnt)
    last = None
    for _ in range(20):
        if not is_mounted(mnt):
            break
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True,
                           text=True)
        if r.returncode == 0 or not is_mounted(mnt):
            break
        last = r.stderr
        time.sleep(0.5)
    else:
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        print(f"harness: lazy unmount of {mnt} after: {last}",
              file=sys.stderr)
    # Also when a signal already unmounted it: a daemon still exiting would
    # write its sanitizer report after this class's check, into the next
    # test's.
    if wait_daemon:
        for pid in pids:
            try:
                wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30,
                           0.1, f"daemon {pid} to exit after unmount")
            except HarnessError as e:
                print(f"harness: {e}", file=sys.stderr)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"(no log: {e})"


# ------------------------------------------------------------ test base


class MountTestCase(unittest.TestCase):
    """Base class: one s3rver with bucket BUCKET for the class, helpers to
    mount it (unmounted at class teardown)."""

    BUCKET = "dsfs-test"
    EXTRA_BUCKETS = ()

    @classmethod
    def setUpClass(cls):
        require_prereqs()
        cls._san_before = sanitizer_snapshot()
        cls.tmp = tempfile.mkdtemp(prefix="dsfs-mnt-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls._mounts = []
        cls._logs = []
        cls.addClassCleanup(cls._cleanup_mounts)
        cls.server = S3rver(cls.tmp, [cls.BUCKET, *cls.EXTRA_BUCKETS])
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.s3 = cls.server.client()
        cls.addClassCleanup(cls.s3.close)
        cls.passwd = write_passwd(os.path.join(cls.tmp, "passwd"))

    @classmethod
    def _cleanup_mounts(cls):
        for m in reversed(cls._mounts):
            unmount(m)
        for log in cls._logs:
            if os.path.exists(log):
                print(f"--- tail of {log}\n{tail(log, 25)}", file=sys.stderr)
        check_sanitizer_reports(cls._san_before)

    @classmethod
    def new_mountpoint(cls, name="mnt"):
        path = tempfile.mkdtemp(prefix=name + "-", dir=cls.tmp)
        return path

    @classmethod
    def base_opts(cls, server=None, logfile=None, dbglevel="info"):
        server = server or cls.server
        opts = [f"url={server.url()}", "use_path_request_style",
                f"passwd_file={cls.passwd}"]
        if is_dsfs():
            opts += [f"dbglevel={dbglevel}"]
            if logfile:
                opts.append(f"logfile={logfile}")
        return opts

    @classmethod
    def mount_bucket(cls, src=None, extra_opts=(), server=None,
                     dbglevel="info", env=None):
        """Mounts (default: the class bucket) and registers the unmount.
        Returns (mountpoint, logfile path)."""
        mnt = cls.new_mountpoint()
        log = os.path.join(cls.tmp, f"dsfs-{len(cls._logs)}.log")
        cls._logs.append(log)
        opts = cls.base_opts(server, log, dbglevel) + list(extra_opts)
        mount(src or cls.BUCKET, mnt, opts, env=env)
        cls._mounts.append(mnt)
        return mnt, log

    @classmethod
    def unmount_now(cls, mnt):
        unmount(mnt)
        if mnt in cls._mounts:
            cls._mounts.remove(mnt)

    def assertErrno(self, err, fn, *args, **kwargs):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(
            cm.exception.errno, err,
            f"{fn.__name__}{args}: expected {errno.errorcode[err]}, got "
            f"{errno.errorcode.get(cm.exception.errno)} ({cm.exception})")


def mode_str(m):
    return stat.filemode(m)
