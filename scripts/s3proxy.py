#!/usr/bin/env python3
"""s3proxy: origin emulator and fault-injection proxy for S3 on loopback.

An HTTP/1.1 reverse proxy in front of one S3 server on 127.0.0.1 (s3rver in
tests). It passes requests and bodies through unchanged (the Host header too,
so SigV4 signatures made for the proxy's address still verify upstream), keeps
client and upstream connections alive, and serves many connections at once
(one thread per client connection, each with its own upstream connection).
Bodies are moved with splice(2) when they are forwarded untouched.

Origin emulation (every S3 request):
  --latency-ms MS      sleep before the request goes upstream (so before the
                       response starts)
  --bw-per-conn RATE   token bucket per client connection on body bytes, both
                       directions (K/M/G = powers of 1024 bytes per second)

Faults (per request, only for the operations in --fault-ops, default "get" =
GET of an object; add head, list, put, other, or use --include-meta for
get,head,list):
  --error-rate P --error-code C   answer C with an S3 XML error body instead
                                  of forwarding (503/429 SlowDown,
                                  500 InternalError)
  --reset-rate P                  forward, send part of the body, then reset
                                  the connection (RST)
  --short-rate P                  forward, send part of the body (fewer bytes
                                  than Content-Length), then close (FIN)
  --stall-rate P --stall-ms MS    wait MS before the first response byte
Modes (every S3 request, whatever --fault-ops says):
  --blackhole   read the request, never answer (connection stays open)
  --refuse      stop listening (connect gets ECONNREFUSED); open connections
                are reset
  --honor-if-match  answer 412 to a GET/HEAD whose If-Match is not the
                upstream's ETag (s3rver ignores If-Match; OBS honours it)

Each request draws its fault from one random.Random(--seed) in arrival order,
so a given sequence of requests sees the same faults on every run.

Control channel (JSON over HTTP), on the control port (always up, printed as
"control on 127.0.0.1:PORT") and on the proxy port itself while it listens.
Paths under /__proxy/ are never forwarded and never faulted:
  GET  /__proxy/config         current configuration
  POST /__proxy/config         merge a JSON object of settings (same names as
                               the flags, with underscores), answer the result
  GET  /__proxy/stats          counters of requests and injected faults; "multipart"
                               counts mpu_create/mpu_part/mpu_complete/mpu_abort
                               (these names also work in fault_ops, to fail one step)
  POST /__proxy/stats/reset    zero the counters
The proxy prints "listening on 127.0.0.1:PORT" once it accepts connections
(--port 0 picks a free port). It serves until killed.
"""

import argparse
import fcntl
import json
import os
import random
import re
import select
import socket
import struct
import sys
import threading
import time

HEAD_LIMIT = 64 * 1024
CHUNK = 1 << 20
OPS = ("get", "head", "list", "put", "other")
# Multipart-upload steps, counted apart (stats "multipart") and usable in
# fault_ops to fail one step alone; "mpu_abort" records AbortMultipartUpload.
MPU_OPS = ("mpu_create", "mpu_part", "mpu_complete", "mpu_abort")
ERROR_NAMES = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    429: ("SlowDown", "Please reduce your request rate."),
}
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}
HAVE_SPLICE = hasattr(os, "splice")


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we can forward."""


class Abort(Exception):
    """Stop serving this client connection (closed, reset or faulted)."""


def parse_rate(text):
    """'64M' -> 67108864 bytes/s; 0 or '' -> 0 (unlimited)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", str(text))
    if not m:
        raise ValueError("bad rate: %r" % (text,))
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


class Config:
    """Settings that can change at run time; guarded by Proxy.lock."""

    FIELDS = {
        "latency_ms": float, "bw_per_conn": parse_rate, "error_rate": float,
        "error_code": int, "reset_rate": float, "short_rate": float,
        "stall_rate": float, "stall_ms": float, "blackhole": bool,
        "refuse": bool, "fault_ops": None, "seed": int, "honor_if_match": bool,
    }

    def __init__(self):
        self.latency_ms = 0.0
        self.bw_per_conn = 0
        self.error_rate = 0.0
        self.error_code = 503
        self.reset_rate = 0.0
        self.short_rate = 0.0
        self.stall_rate = 0.0
        self.stall_ms = 5000.0
        self.blackhole = False
        self.refuse = False
        self.fault_ops = ["get"]
        self.seed = 0
        # Answer 412 to a GET/HEAD whose If-Match differs from the ETag the
        # upstream returned (s3rver ignores If-Match; OBS and S3 honour it).
        self.honor_if_match = False

    def as_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    @staticmethod
    def parse_ops(value):
        ops = value.split(",") if isinstance(value, str) else list(value)
        ops = [o.strip().lower() for o in ops if o.strip()]
        for o in ops:
            if o not in OPS + MPU_OPS:
                raise ValueError("unknown op %r (known: %s)" % (o, ",".join(OPS + MPU_OPS)))
        return ops

    def validated(self, updates):
        """Return {field: value} checked and converted, or raise ValueError."""
        out = {}
        for k, v in updates.items():
            if k not in self.FIELDS:
                raise ValueError("unknown setting %r" % (k,))
            if k == "fault_ops":
                out[k] = self.parse_ops(v)
            elif self.FIELDS[k] is bool:
                if not isinstance(v, bool):
                    raise ValueError("%s must be true or false" % k)
                out[k] = v
            else:
                out[k] = self.FIELDS[k](v)
        for k in ("error_rate", "reset_rate", "short_rate", "stall_rate"):
            if k in out and not 0.0 <= out[k] <= 1.0:
                raise ValueError("%s must be in [0, 1]" % k)
        for k in ("latency_ms", "stall_ms", "bw_per_conn"):
            if k in out and out[k] < 0:
                raise ValueError("%s must be >= 0" % k)
        if "error_code" in out and not 400 <= out["error_code"] <= 599:
            raise ValueError("error_code must be a 4xx or 5xx status")
        total = sum(out.get(k, getattr(self, k))
                    for k in ("error_rate", "reset_rate", "short_rate"))
        if total > 1.0 + 1e-9:
            raise ValueError("error_rate + reset_rate + short_rate must be <= 1")
        return out


class Bucket:
    """Token bucket for one connection: at most `rate` bytes/s, 64 KiB burst."""

    BURST_S = 0.005

    def __init__(self, rate_fn):
        self.rate_fn = rate_fn
        self.next_free = time.monotonic()

    def take(self, n):
        rate = self.rate_fn()
        if rate <= 0:
            return
        now = time.monotonic()
        start = max(now, self.next_free)
        self.next_free = start + n / rate
        ahead = self.next_free - now - self.BURST_S
        if ahead > 0:
            time.sleep(ahead)

    def chunk(self):
        rate = self.rate_fn()
        if rate <= 0:
            return CHUNK
        # ~10 ms worth of bytes per step keeps the rate smooth.
        return max(16 * 1024, min(CHUNK, int(rate / 100)))


class Conn:
    """A blocking socket plus the bytes read past the last message head."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        """Bytes of one message head (through the blank line), or None on EOF
        before any byte."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > HEAD_LIMIT:
                raise ProtocolError("message head too large")
            if not self.fill():
                if self.buf:
                    raise ProtocolError("connection closed inside a message head")
                return None

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > HEAD_LIMIT or not self.fill():
                raise ProtocolError("bad chunked framing")

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ProtocolError("connection closed early")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def pump(self, dst, n, bucket, pipe):
        """Move exactly n bytes from this connection to socket dst.
        Returns the bytes moved (less than n only if the source hit EOF)."""
        moved = 0
        if self.buf:
            take = min(n, len(self.buf))
            bucket.take(take)
            dst.sendall(self.buf[:take])
            del self.buf[:take]
            moved += take
        if HAVE_SPLICE and pipe is not None:
            rfd, wfd = pipe
            src_fd, dst_fd = self.sock.fileno(), dst.fileno()
            while moved < n:
                want = min(n - moved, bucket.chunk())
                got = os.splice(src_fd, wfd, want, flags=os.SPLICE_F_MOVE)
                if got == 0:
                    return moved
                bucket.take(got)
                left = got
                while left:
                    left -= os.splice(rfd, dst_fd, left, flags=os.SPLICE_F_MOVE)
                moved += got
            return moved
        view = memoryview(bytearray(CHUNK))
        while moved < n:
            want = min(n - moved, bucket.chunk())
            got = self.sock.recv_into(view[:want])
            if got == 0:
                return moved
            bucket.take(got)
            dst.sendall(view[:got])
            moved += got
        return moved


def make_pipe():
    if not HAVE_SPLICE:
        return None
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)
    except OSError:
        pass
    return (r, w)


def parse_head(head, is_request):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError("bad header line %r" % line)
        headers.append((name.strip().lower(), value.strip()))
    parts = first.split(" ", 2)
    if is_request:
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ProtocolError("bad request line %r" % first)
    else:
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % first)
    return parts, headers


def header(headers, name):
    for k, v in headers:
        if k == name:
            return v
    return None


def wants_close(version, headers):
    conn = (header(headers, "connection") or "").lower()
    if "close" in conn:
        return True
    return version == "HTTP/1.0" and "keep-alive" not in conn


def body_length(headers):
    """-1 = chunked, None = no length (until close), else the length."""
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        return -1
    cl = header(headers, "content-length")
    if cl is None:
        return None
    if not cl.isdigit():
        raise ProtocolError("bad Content-Length %r" % cl)
    return int(cl)


def classify(method, target):
    path = target.split("?", 1)[0]
    query = target.split("?", 1)[1] if "?" in target else ""
    has_key = "/" in path.lstrip("/") and path.lstrip("/").split("/", 1)[1] != ""
    params = {q.split("=", 1)[0] for q in query.split("&") if q}
    if method == "GET":
        if has_key:
            # Sub-resources (ListParts, ACL, tags) are not object bodies.
            if params & {"uploadId", "acl", "tagging", "attributes", "retention", "legal-hold"}:
                return "other"
            return "get"
        if not params or params & {"list-type", "prefix", "delimiter", "marker",
                                   "continuation-token", "max-keys", "encoding-type",
                                   "start-after", "fetch-owner"}:
            return "list"
        return "other"
    if method == "HEAD":
        return "head" if has_key else "other"
    if method in ("PUT", "POST"):
        return "put"
    return "other"


def classify_mpu(method, target):
    """The multipart step of a request (an MPU_OPS name), or None."""
    query = target.split("?", 1)[1] if "?" in target else ""
    params = {q.split("=", 1)[0] for q in query.split("&") if q}
    if method == "POST" and "uploads" in params:
        return "mpu_create"
    if "uploadId" not in params:
        return None
    return {"PUT": "mpu_part", "POST": "mpu_complete",
            "DELETE": "mpu_abort"}.get(method)


def reset_socket(sock):
    """Close with RST (SO_LINGER 0) instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Proxy:
    def __init__(self, upstream, port, control_port, cfg, verbose=False):
        self.upstream = upstream
        self.port = port
        self.control_port = control_port
        self.verbose = verbose
        self.lock = threading.Lock()
        self.cfg = cfg                          # guarded by lock
        self.rng = random.Random(cfg.seed)      # guarded by lock
        self.stats = self.zero_stats()          # guarded by lock
        self.clients = set()                    # guarded by lock: open client sockets
        self.held = set()                       # guarded by lock: blackholed sockets
        self.listener = None                    # guarded by lock
        self.req_ids = 0                        # guarded by lock

    @staticmethod
    def zero_stats():
        return {
            "requests": {op: 0 for op in OPS},
            "multipart": {op: 0 for op in MPU_OPS},
            "forwarded": 0,
            "control": 0,
            "injected": {"error": 0, "reset": 0, "short": 0, "stall": 0,
                         "blackhole": 0},
            "latency_added": 0,
            "connections": {"accepted": 0, "active": 0, "reset_by_refuse": 0},
            "bytes": {"to_client": 0, "to_upstream": 0},
            "upstream_errors": 0,
            "protocol_errors": 0,
        }

    def log(self, msg):
        if self.verbose:
            print("s3proxy: " + msg, file=sys.stderr, flush=True)

    # ---- listening --------------------------------------------------------

    def bind(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1024)
        return s

    def start(self):
        ctl = self.bind(self.control_port)
        self.control_port = ctl.getsockname()[1]
        threading.Thread(target=self.accept_loop, args=(ctl, True), daemon=True).start()
        lst = self.bind(self.port)
        self.port = lst.getsockname()[1]
        with self.lock:
            refuse = self.cfg.refuse
            if refuse:
                lst.close()
            else:
                self.listener = lst
        if not refuse:
            threading.Thread(target=self.accept_loop, args=(lst, False), daemon=True).start()
        print("control on 127.0.0.1:%d" % self.control_port, flush=True)
        print("listening on 127.0.0.1:%d%s" % (self.port, " (refusing)" if refuse else ""),
              flush=True)

    def accept_loop(self, lst, control):
        while True:
            try:
                sock, _ = lst.accept()
            except OSError:
                return  # listener closed by --refuse
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if not control and self.listener is not lst:
                    reset_socket(sock)
                    return
                if not control:
                    self.stats["connections"]["accepted"] += 1
                    self.stats["connections"]["active"] += 1
                    self.clients.add(sock)
            threading.Thread(target=self.serve, args=(sock, control), daemon=True).start()

    def set_refuse(self, refuse):
        """Called with self.lock held."""
        if refuse and self.listener is not None:
            lst, self.listener = self.listener, None
            try:
                lst.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lst.close()
            for s in list(self.clients):
                self.stats["connections"]["reset_by_refuse"] += 1
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        elif not refuse and self.listener is None:
            lst = self.bind(self.port)
            self.listener = lst
            threading.Thread(target=self.accept_loop, args=(lst, False), daemon=True).start()

    def release_held(self):
        """Called with self.lock held: blackhole switched off."""
        for s in list(self.held):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.held.clear()

    # ---- one client connection ------------------------------------------

    def serve(self, sock, control):
        client = Conn(sock)
        state = {"up": None, "pipe": make_pipe()}
        bucket = Bucket(lambda: self.cfg.bw_per_conn)
        try:
            while True:
                head = client.read_head()
                if head is None:
                    break
                if not self.handle(client, head, state, bucket, control):
                    break
        except Abort:
            pass
        except ProtocolError as e:
            with self.lock:
                self.stats["protocol_errors"] += 1
            self.log("protocol error: %s" % e)
        except OSError as e:
            self.log("connection error: %s" % e)
        finally:
            up = state["up"]
            if up is not None:
                up.sock.close()
            if state["pipe"]:
                os.close(state["pipe"][0])
                os.close(state["pipe"][1])
            with self.lock:
                if not control:
                    self.clients.discard(sock)
                    self.held.discard(sock)
                    self.stats["connections"]["active"] -= 1
            try:
                sock.close()
            except OSError:
                pass

    def handle(self, client, head, state, bucket, control):
        """Serve one request. Returns False when the connection must close."""
        (method, target, version), headers = parse_head(head, True)
        if target.startswith("/__proxy/"):
            return self.control(client, method, target, version, headers)
        if control:
            self.send_simple(client.sock, 404, "text/plain", b"control port: only /__proxy/\n",
                             close=False)
            self.drain_body(client, headers)
            return True
        op = classify(method, target)
        mpu_op = classify_mpu(method, target)
        with self.lock:
            cfg = self.cfg
            self.stats["requests"][op] += 1
            if mpu_op:
                self.stats["multipart"][mpu_op] += 1
            self.req_ids += 1
            req_id = self.req_ids
            # Fixed number of draws per request: determinism by arrival order.
            u_fault, u_stall, u_cut = self.rng.random(), self.rng.random(), self.rng.random()
            blackhole = cfg.blackhole
            latency = cfg.latency_ms
            eligible = op in cfg.fault_ops or mpu_op in cfg.fault_ops
            fault = None
            if eligible:
                if u_fault < cfg.error_rate:
                    fault = "error"
                elif u_fault < cfg.error_rate + cfg.reset_rate:
                    fault = "reset"
                elif u_fault < cfg.error_rate + cfg.reset_rate + cfg.short_rate:
                    fault = "short"
            stall = eligible and u_stall < cfg.stall_rate
            stall_ms = cfg.stall_ms
            error_code = cfg.error_code
            if blackhole:
                self.stats["injected"]["blackhole"] += 1
                self.held.add(client.sock)
            else:
                if fault:
                    self.stats["injected"][fault] += 1
                if stall:
                    self.stats["injected"]["stall"] += 1
                if latency > 0:
                    self.stats["latency_added"] += 1
        if blackhole:
            self.log("blackhole %s %s" % (method, target))
            # Hold the connection: wait for the client to give up (or for
            # the blackhole to be switched off, which shuts the socket).
            while True:
                try:
                    if not client.sock.recv(65536):
                        break
                except OSError:
                    break
            raise Abort()
        if latency > 0:
            time.sleep(latency / 1000.0)
        if stall:
            time.sleep(stall_ms / 1000.0)
        if fault == "error":
            return self.inject_error(client, method, target, headers, error_code, req_id)
        return self.forward(client, head, method, version, headers, state, bucket,
                            fault, u_cut)

    # ---- control ----------------------------------------------------------

    def control(self, client, method, target, version, headers):
        n = body_length(headers)
        body = b""
        if n == -1:
            raise ProtocolError("chunked control bodies are not supported")
        if n:
            if n > HEAD_LIMIT:
                raise ProtocolError("control body too large")
            body = client.read_exact(n)
        path = target.split("?", 1)[0]
        status, out = 200, None
        with self.lock:
            self.stats["control"] += 1
            if path == "/__proxy/stats" and method == "GET":
                out = json.loads(json.dumps(self.stats))
            elif path == "/__proxy/stats/reset" and method == "POST":
                self.stats = self.zero_stats()
                self.stats["connections"]["active"] = len(self.clients)
                out = {"ok": True}
            elif path == "/__proxy/config" and method == "GET":
                out = self.cfg.as_dict()
            elif path == "/__proxy/config" and method == "POST":
                try:
                    updates = json.loads(body.decode() or "{}")
                    if not isinstance(updates, dict):
                        raise ValueError("body must be a JSON object")
                    checked = self.cfg.validated(updates)
                except ValueError as e:
                    status, out = 400, {"error": str(e)}
                else:
                    was_blackhole = self.cfg.blackhole
                    for k, v in checked.items():
                        setattr(self.cfg, k, v)
                    if "seed" in checked:
                        self.rng = random.Random(self.cfg.seed)
                    if "refuse" in checked:
                        try:
                            self.set_refuse(self.cfg.refuse)
                        except OSError as e:
                            status, out = 500, {"error": "re-listen failed: %s" % e}
                    if was_blackhole and not self.cfg.blackhole:
                        self.release_held()
                    if out is None:
                        out = self.cfg.as_dict()
                        self.log("config: %s" % json.dumps(checked))
            else:
                status, out = 404, {"error": "unknown control path %s %s" % (method, path)}
        data = (json.dumps(out, sort_keys=True) + "\n").encode()
        self.send_simple(client.sock, status, "application/json", data,
                         close=wants_close(version, headers))
        return not wants_close(version, headers)

    def send_simple(self, sock, status, ctype, body, close, head_only=False, extra=()):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error")),
                 "Content-Type: %s" % ctype,
                 "Content-Length: %d" % len(body),
                 "Connection: %s" % ("close" if close else "keep-alive")]
        lines += ["%s: %s" % kv for kv in extra]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        sock.sendall(data if head_only else data + body)

    # ---- faults -------------------------------------------------------------

    def drain_body(self, client, headers):
        """Read and drop a request body we will not forward. Returns False if
        the connection cannot be reused (unknown length, or the client waits
        for 100-continue)."""
        if "100-continue" in (header(headers, "expect") or "").lower():
            return False
        n = body_length(headers)
        if n is None or n == 0:
            return True
        if n == -1:
            while True:
                size = int(client.read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while client.read_line() != b"\r\n":
                        pass
                    return True
                client.read_exact(size + 2)
        while n > 0:
            got = len(client.read_exact(min(n, CHUNK)))
            n -= got
        return True

    def inject_error(self, client, method, target, headers, code, req_id):
        name, message = ERROR_NAMES.get(code, ("InternalError", "Injected error."))
        resource = target.split("?", 1)[0]
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                '<Message>%s</Message><Resource>%s</Resource>'
                '<RequestId>S3PROXY%010d</RequestId></Error>' % (
                    name, message, xml_escape(resource), req_id)).encode()
        reusable = self.drain_body(client, headers)
        self.send_simple(client.sock, code, "application/xml", body, close=not reusable,
                         head_only=(method == "HEAD"),
                         extra=(("x-amz-request-id", "S3PROXY%010d" % req_id),))
        self.log("error %d %s %s" % (code, method, target))
        return reusable

    # ---- forwarding -----------------------------------------------------------

    def upstream_conn(self, state):
        up = state["up"]
        if up is not None:
            # A keep-alive connection the server has closed reads as EOF.
            r, _, _ = select.select([up.sock], [], [], 0)
            if r and not up.buf:
                up.sock.close()
                state["up"] = up = None
        if up is None:
            s = socket.create_connection(self.upstream, timeout=10)
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state["up"] = up = Conn(s)
        return up

    def forward(self, client, head, method, version, headers, state, bucket, fault, u_cut):
        req_len = body_length(headers)
        expect = "100-continue" in (header(headers, "expect") or "").lower()
        client_close = wants_close(version, headers)
        up = None

        def send_request_body():
            if req_len == -1:
                self.copy_chunked(client, up.sock, bucket, state)
            elif req_len:
                moved = client.pump(up.sock, req_len, bucket, state["pipe"])
                if moved < req_len:
                    raise Abort()
                with self.lock:
                    self.stats["bytes"]["to_upstream"] += moved

        # A request without a body is sent again once on a fresh connection
        # when a reused keep-alive connection turns out to be closed.
        retryable = not req_len and not expect
        for attempt in (0, 1):
            reused = state["up"] is not None
            try:
                up = self.upstream_conn(state)
                up.sock.sendall(head)
                if not expect:
                    send_request_body()
                rhead = up.read_head()
                if rhead is None:
                    raise OSError("upstream closed the connection")
            except (OSError, ProtocolError) as e:
                if retryable and reused and attempt == 0:
                    self.drop_upstream(state)
                    continue
                return self.upstream_failed(client, state, e)
            break
        # Relay any 1xx, then the final response head.
        while True:
            (rver, rstatus, *_), rheaders = parse_head(rhead, False)
            status = int(rstatus)
            if not 100 <= status < 200:
                break
            client.sock.sendall(rhead)
            if status == 100 and expect:
                expect = False
                send_request_body()
            try:
                rhead = up.read_head()
            except (OSError, ProtocolError) as e:
                return self.upstream_failed(client, state, e)
            if rhead is None:
                return self.upstream_failed(client, state, OSError("upstream closed"))
        if (self.cfg.honor_if_match and method in ("GET", "HEAD") and 200 <= status < 300
                and header(headers, "if-match") is not None):
            want = header(headers, "if-match").strip().strip('"')
            got = (header(rheaders, "etag") or "").strip().strip('"')
            if want != "*" and want != got:
                # As S3 does: 412 and no body. The upstream body is not read.
                self.drop_upstream(state)
                with self.lock:
                    self.stats["if_match_412"] = self.stats.get("if_match_412", 0) + 1
                body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                        'PreconditionFailed</Code><Message>At least one of the pre-conditions '
                        'you specified did not hold</Message><Condition>If-Match</Condition>'
                        '</Error>').encode()
                self.send_simple(client.sock, 412, "application/xml", body,
                                 close=client_close, head_only=(method == "HEAD"))
                self.log("412 %s (If-Match %s, object %s)" % (method, want, got))
                return not client_close
        if expect:
            # Final answer without 100 Continue: the client may or may not
            # send the body; this connection cannot be reused safely.
            client_close = True
        self.log("%s %s -> %d" % (method, head.split(b" ", 2)[1].decode("latin-1"), status))
        resp_len = 0 if (method == "HEAD" or status in (204, 304)) else body_length(rheaders)
        up_close = wants_close(rver, rheaders) or resp_len is None
        with self.lock:
            self.stats["forwarded"] += 1

        if fault in ("reset", "short"):
            total = resp_len if resp_len and resp_len > 0 else 0
            if total == 0:
                # Nothing to cut: drop the connection before any byte.
                self.drop_upstream(state)
                if fault == "reset":
                    reset_socket(client.sock)
                raise Abort()
            cut = min(total - 1, int(total * (0.1 + 0.8 * u_cut)))
            client.sock.sendall(rhead)
            sent = up.pump(client.sock, cut, bucket, state["pipe"])
            with self.lock:
                self.stats["bytes"]["to_client"] += sent
            self.drop_upstream(state)
            self.log("%s after %d of %d bytes" % (fault, sent, total))
            if fault == "reset":
                reset_socket(client.sock)
            else:
                client.sock.shutdown(socket.SHUT_RDWR)
            raise Abort()

        client.sock.sendall(rhead)
        if resp_len == -1:
            self.copy_chunked(up, client.sock, bucket, state)
        elif resp_len is None:
            sent = up.pump(client.sock, 1 << 62, bucket, state["pipe"])
            with self.lock:
                self.stats["bytes"]["to_client"] += sent
            self.drop_upstream(state)
            return False
        elif resp_len:
            sent = up.pump(client.sock, resp_len, bucket, state["pipe"])
            with self.lock:
                self.stats["bytes"]["to_client"] += sent
            if sent < resp_len:
                # Upstream cut the body: pass the cut on, do not pad it.
                self.drop_upstream(state)
                raise Abort()
        if up_close:
            self.drop_upstream(state)
        return not client_close

    def copy_chunked(self, src, dst, bucket, state):
        while True:
            line = src.read_line()
            dst.sendall(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    t = src.read_line()
                    dst.sendall(t)
                    if t == b"\r\n":
                        return
            if src.pump(dst, size, bucket, state["pipe"]) < size:
                raise Abort()
            dst.sendall(src.read_exact(2))

    def drop_upstream(self, state):
        if state["up"] is not None:
            state["up"].sock.close()
            state["up"] = None

    def upstream_failed(self, client, state, err):
        self.drop_upstream(state)
        with self.lock:
            self.stats["upstream_errors"] += 1
        self.log("upstream error: %s" % err)
        try:
            self.send_simple(client.sock, 502, "text/plain",
                             ("s3proxy: upstream error: %s\n" % err).encode(), close=True)
        except OSError:
            pass
        return False


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def parse_upstream(text):
    host, sep, port = text.rpartition(":")
    if not sep or host not in ("127.0.0.1",) or not port.isdigit():
        raise argparse.ArgumentTypeError("upstream must be 127.0.0.1:PORT, got %r" % text)
    return (host, int(port))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--upstream", required=True, type=parse_upstream,
                    help="the S3 server, 127.0.0.1:PORT")
    ap.add_argument("--port", type=int, default=0, help="proxy port (0 = free port)")
    ap.add_argument("--control-port", type=int, default=0,
                    help="control port, stays up during --refuse (0 = free port)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--bw-per-conn", default="0", help="e.g. 64M (bytes/s), 0 = unlimited")
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--error-code", type=int, default=503)
    ap.add_argument("--reset-rate", type=float, default=0.0)
    ap.add_argument("--short-rate", type=float, default=0.0)
    ap.add_argument("--stall-rate", type=float, default=0.0)
    ap.add_argument("--stall-ms", type=float, default=5000.0)
    ap.add_argument("--blackhole", action="store_true")
    ap.add_argument("--refuse", action="store_true")
    ap.add_argument("--honor-if-match", action="store_true")
    ap.add_argument("--fault-ops", default="get",
                    help="operations faults apply to: get,head,list,put,other")
    ap.add_argument("--include-meta", action="store_true",
                    help="same as adding head,list to --fault-ops")
    ap.add_argument("--no-splice", action="store_true", help="copy bodies in user space")
    ap.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    args = ap.parse_args(argv)

    global HAVE_SPLICE
    if args.no_splice:
        HAVE_SPLICE = False
    cfg = Config()
    ops = args.fault_ops + (",head,list" if args.include_meta else "")
    try:
        checked = cfg.validated({
            "latency_ms": args.latency_ms, "bw_per_conn": args.bw_per_conn,
            "error_rate": args.error_rate, "error_code": args.error_code,
            "reset_rate": args.reset_rate, "short_rate": args.short_rate,
            "stall_rate": args.stall_rate, "stall_ms": args.stall_ms,
            "blackhole": args.blackhole, "refuse": args.refuse,
            "fault_ops": sorted(set(Config.parse_ops(ops)), key=(OPS + MPU_OPS).index),
            "seed": args.seed, "honor_if_match": args.honor_if_match,
        })
    except ValueError as e:
        ap.error(str(e))
    for k, v in checked.items():
        setattr(cfg, k, v)
    proxy = Proxy(args.upstream, args.port, args.control_port, cfg, args.verbose)
    proxy.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
