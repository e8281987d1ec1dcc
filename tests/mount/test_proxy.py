"""Fault modes of scripts/s3proxy.py against a real s3rver (no dsfs needed).

Run: cd tests/mount && python3 -m unittest -v test_proxy
s3rver is found at $DSFS_S3RVER, else <repo>/.deps/node_modules/.bin/s3rver;
when it is missing every test FAILS with a message saying so.
Timing checks are lower bounds only (a sleep the proxy must have made).
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

REPO = os.environ.get("DSFS_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROXY = os.path.join(REPO, "scripts", "s3proxy.py")
S3RVER = os.environ.get("DSFS_S3RVER") or os.path.join(
    REPO, ".deps", "node_modules", ".bin", "s3rver")
BUCKET = "demo"
ACCESS, SECRET, REGION = "S3RVER", "S3RVER", "us-east-1"


def sign(method, host, path, query=""):
    """SigV4 headers (UNSIGNED-PAYLOAD) for a path-style request."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    canon_query = "&".join(sorted(query.split("&"))) if query else ""
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
               "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    creq = "\n".join([method, path, canon_query] +
                     ["%s:%s" % (k, headers[k]) for k in sorted(headers)] +
                     ["", signed, "UNSIGNED-PAYLOAD"])
    scope = "%s/%s/s3/aws4_request" % (day, REGION)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + SECRET).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    out = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date,
           "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                            % (ACCESS, scope, signed, sig)}
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_request(port, method, path, query="", extra="", timeout=10):
    """Open a socket, send one signed request, return the socket."""
    host = "127.0.0.1:%d" % port
    hdrs = sign(method, host, path, query)
    target = path + ("?" + query if query else "")
    req = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, target, host)
    req += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + extra + "\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(req.encode())
    return s


def read_all(sock):
    """Read until EOF. Returns (bytes, error or None)."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except OSError as e:
            return bytes(data), e
        if not chunk:
            return bytes(data), None
        data += chunk


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


class ProxyTest(unittest.TestCase):
    s3rver = None
    proxy = None
    tmp = None

    @classmethod
    def setUpClass(cls):
        cls.missing = None
        if not (os.path.isfile(S3RVER) and os.access(S3RVER, os.X_OK)):
            cls.missing = ("s3rver not found at %s: set DSFS_S3RVER or run scripts/setup.sh"
                           % S3RVER)
            return
        cls.tmp = tempfile.mkdtemp(prefix="dsfs-proxy-test-")
        cls.s3port = free_port()
        env = dict(os.environ)  # s3rver's V2 list tokens use DES: legacy provider
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        cls.s3rver = subprocess.Popen(
            [S3RVER, "-d", os.path.join(cls.tmp, "data"), "-p", str(cls.s3port),
             "-a", "127.0.0.1", "--configure-bucket", BUCKET, "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.s3port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or cls.s3rver.poll() is not None:
                    cls.tearDownClass()
                    raise RuntimeError("s3rver did not start")
                time.sleep(0.1)
        cls.proxy = subprocess.Popen(
            [sys.executable, PROXY, "--upstream", "127.0.0.1:%d" % cls.s3port,
             "--port", "0", "--seed", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        cls.port = cls.ctl = None

        def read_ports():  # blocking readline in a thread: select() on a
            for line in cls.proxy.stdout:  # buffered text pipe can miss lines
                if line.startswith("control on 127.0.0.1:"):
                    cls.ctl = int(line.rsplit(":", 1)[1])
                elif line.startswith("listening on 127.0.0.1:"):
                    cls.port = int(line.split(":", 1)[1].split()[0])
                    return
        reader = threading.Thread(target=read_ports, daemon=True)
        reader.start()
        reader.join(timeout=20)
        if cls.port is None or cls.ctl is None:
            cls.tearDownClass()
            raise RuntimeError("proxy did not print its ports")
        rng = random.Random(42)
        cls.obj = bytes(rng.getrandbits(8) for _ in range(1 << 20))  # 1 MiB
        conn = http.client.HTTPConnection("127.0.0.1", cls.s3port, timeout=10)
        host = "127.0.0.1:%d" % cls.s3port
        for key, body in (("obj", cls.obj), ("dir/small", b"hello")):
            conn.request("PUT", "/%s/%s" % (BUCKET, key), body=body,
                         headers=sign("PUT", host, "/%s/%s" % (BUCKET, key)))
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError("upload %s failed: %d" % (key, resp.status))
        conn.close()

    @classmethod
    def tearDownClass(cls):
        for p in (cls.proxy, cls.s3rver):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p is not None and p.stdout:
                p.stdout.close()
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------

    def setUp(self):
        if self.missing:
            self.fail(self.missing)
        self.configure(latency_ms=0, bw_per_conn=0, error_rate=0, reset_rate=0,
                       short_rate=0, stall_rate=0, blackhole=False, refuse=False,
                       fault_ops=["get"], error_code=503, seed=1)
        self.control("POST", "/__proxy/stats/reset")

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.ctl, timeout=10)
        conn.request(method, path, body=json.dumps(body) if body is not None else None)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        return resp.status, data

    def configure(self, **kw):
        status, data = self.control("POST", "/__proxy/config", kw)
        self.assertEqual(status, 200, data)
        return data

    def stats(self):
        return self.control("GET", "/__proxy/stats")[1]

    def request(self, method, path, query="", conn=None, timeout=10, headers=None):
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = sign(method, "127.0.0.1:%d" % self.port, path, query)
        hdrs.update(headers or {})
        try:
            conn.request(method, path + ("?" + query if query else ""), headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            if own:
                conn.close()
        return resp, body

    # ---- tests --------------------------------------------------------------

    def test_passthrough_get_range_head_list_put(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        resp, body = self.request("GET", "/demo/obj", conn=conn)
        self.assertEqual(resp.status, 200)
        self.assertEqual(body, self.obj)
        resp, body = self.request("GET", "/demo/obj", conn=conn,
                                  headers={"Range": "bytes=1000-1999"})
        self.assertEqual(resp.status, 206)
        self.assertEqual(body, self.obj[1000:2000])
        resp, body = self.request("HEAD", "/demo/obj", conn=conn)
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), len(self.obj))
        resp, body = self.request("GET", "/demo", query="list-type=2&prefix=dir%2F", conn=conn)
        self.assertEqual(resp.status, 200)
        self.assertIn(b"<Key>dir/small</Key>", body)
        resp, body = self.request("GET", "/demo", query="list-type=2&max-keys=1", conn=conn)
        self.assertEqual(resp.status, 200, body)  # a truncated V2 page
        self.assertEqual(ET.fromstring(body).find("{*}IsTruncated").text, "true")
        hdrs = sign("PUT", "127.0.0.1:%d" % self.port, "/demo/put-through-proxy")
        conn.request("PUT", "/demo/put-through-proxy", body=b"x" * 100000, headers=hdrs)
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)
        resp, body = self.request("GET", "/demo/put-through-proxy", conn=conn)
        self.assertEqual(body, b"x" * 100000)
        conn.close()
        st = self.stats()
        self.assertEqual(st["requests"]["get"], 3)
        self.assertEqual(st["requests"]["head"], 1)
        self.assertEqual(st["requests"]["list"], 2)
        self.assertEqual(st["requests"]["put"], 1)
        self.assertEqual(st["connections"]["accepted"], 1, "keep-alive: one connection")
        self.assertEqual(sum(st["injected"].values()), 0)

    def test_error_codes_have_s3_xml_bodies_and_keep_alive(self):
        self.configure(error_rate=1.0)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for code, name in ((503, "SlowDown"), (500, "InternalError"), (429, "SlowDown")):
            self.configure(error_code=code)
            resp, body = self.request("GET", "/demo/obj", conn=conn)
            self.assertEqual(resp.status, code)
            self.assertEqual(resp.getheader("Content-Type"), "application/xml")
            root = ET.fromstring(body)
            self.assertEqual(root.tag, "Error")
            self.assertEqual(root.findtext("Code"), name)
            self.assertTrue(root.findtext("Message"))
            self.assertTrue(root.findtext("RequestId"))
        self.configure(error_rate=0.0)
        resp, body = self.request("GET", "/demo/obj", conn=conn)  # same connection
        self.assertEqual(resp.status, 200)
        self.assertEqual(body, self.obj)
        conn.close()
        st = self.stats()
        self.assertEqual(st["injected"]["error"], 3)
        self.assertEqual(st["connections"]["accepted"], 1)

    def test_faults_only_on_get_unless_ops_include_meta(self):
        self.configure(error_rate=1.0)
        self.assertEqual(self.request("HEAD", "/demo/obj")[0].status, 200)
        self.assertEqual(self.request("GET", "/demo", query="list-type=2")[0].status, 200)
        self.assertEqual(self.request("GET", "/demo/obj")[0].status, 503)
        self.configure(fault_ops=["get", "head", "list"])
        self.assertEqual(self.request("HEAD", "/demo/obj")[0].status, 503)
        resp, body = self.request("GET", "/demo", query="list-type=2")
        self.assertEqual(resp.status, 503)
        self.assertEqual(ET.fromstring(body).findtext("Code"), "SlowDown")
        self.assertEqual(self.stats()["injected"]["error"], 3)

    def test_multipart_steps_are_counted_and_can_fail_alone(self):
        self.configure(error_rate=1.0, fault_ops=["mpu_part"])
        # Only UploadPart is failed (never forwarded); other steps go through.
        resp, _ = self.request("PUT", "/demo/mp", query="partNumber=1&uploadId=x")
        self.assertEqual(resp.status, 503)
        self.assertEqual(self.request("GET", "/demo/obj")[0].status, 200)
        self.request("DELETE", "/demo/mp", query="uploadId=x")
        st = self.stats()
        self.assertEqual(st["multipart"], {"mpu_create": 0, "mpu_part": 1,
                                           "mpu_complete": 0, "mpu_abort": 1})
        self.assertEqual(st["injected"]["error"], 1)

    def test_short_body_is_short_then_clean_close(self):
        self.configure(short_rate=1.0)
        sock = raw_request(self.port, "GET", "/demo/obj")
        data, err = read_all(sock)
        sock.close()
        self.assertIsNone(err, "short body must end with FIN, not an error")
        status, headers, body = split_response(data)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), len(self.obj))
        self.assertGreater(len(body), 0)
        self.assertLess(len(body), len(self.obj))
        self.assertEqual(body, self.obj[:len(body)], "the bytes sent are the real prefix")
        self.assertEqual(self.stats()["injected"]["short"], 1)

    def test_reset_mid_body(self):
        self.configure(reset_rate=1.0)
        sock = raw_request(self.port, "GET", "/demo/obj")
        data, err = read_all(sock)
        sock.close()
        self.assertIsInstance(err, ConnectionResetError)
        self.assertLess(len(data), len(self.obj))
        self.assertEqual(self.stats()["injected"]["reset"], 1)

    def test_stall_delays_first_byte_and_client_timeout_fires(self):
        self.configure(stall_rate=1.0, stall_ms=1500)
        sock = raw_request(self.port, "GET", "/demo/obj", timeout=0.5)
        with self.assertRaises(socket.timeout):
            sock.recv(1)
        sock.close()
        start = time.monotonic()
        resp, body = self.request("GET", "/demo/obj")
        self.assertGreaterEqual(time.monotonic() - start, 1.5 * 0.95)
        self.assertEqual(resp.status, 200)
        self.assertEqual(body, self.obj, "a stalled response is complete after the stall")
        self.assertEqual(self.stats()["injected"]["stall"], 2)

    def test_latency_added_to_every_request(self):
        self.configure(latency_ms=300)
        for method in ("HEAD", "GET"):
            start = time.monotonic()
            resp, _ = self.request(method, "/demo/obj")
            self.assertEqual(resp.status, 200)
            self.assertGreaterEqual(time.monotonic() - start, 0.3 * 0.95)
        self.assertEqual(self.stats()["latency_added"], 2)

    def test_bandwidth_cap_per_connection(self):
        self.configure(bw_per_conn="512K")
        start = time.monotonic()
        resp, body = self.request("GET", "/demo/obj")  # 1 MiB at 512 KiB/s
        self.assertEqual(body, self.obj)
        self.assertGreaterEqual(time.monotonic() - start, 2.0 * 0.9)

    def test_blackhole_times_out_then_recovers(self):
        self.configure(blackhole=True)
        sock = raw_request(self.port, "GET", "/demo/obj", timeout=1.0)
        with self.assertRaises(socket.timeout):
            sock.recv(1)
        sock.close()
        with self.assertRaises(socket.timeout):  # HEAD too: blackhole is global
            self.request("HEAD", "/demo/obj", timeout=1.0)
        self.assertEqual(self.stats()["injected"]["blackhole"], 2)
        held = raw_request(self.port, "GET", "/demo/obj", timeout=10)
        deadline = time.monotonic() + 10
        while self.stats()["injected"]["blackhole"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.configure(blackhole=False)
        data, err = read_all(held)  # switching the blackhole off releases it
        held.close()
        self.assertEqual(data, b"")
        self.assertNotIsInstance(err, socket.timeout)
        resp, body = self.request("GET", "/demo/obj")
        self.assertEqual(body, self.obj)

    def test_refuse_refuses_and_resets_open_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.assertEqual(self.request("HEAD", "/demo/obj", conn=conn)[0].status, 200)
        self.configure(refuse=True)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.request("GET", "/demo/obj", conn=conn)  # old keep-alive connection
        conn.close()
        self.assertTrue(self.stats()["connections"]["reset_by_refuse"] >= 1)
        self.configure(refuse=False)
        resp, body = self.request("GET", "/demo/obj")
        self.assertEqual(body, self.obj)

    def test_upstream_idle_close_is_not_seen_by_client(self):
        # s3rver closes idle keep-alive connections after 5 s; the proxy must
        # notice and reconnect instead of failing the next request.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.assertEqual(self.request("HEAD", "/demo/obj", conn=conn)[0].status, 200)
        time.sleep(6)
        resp, body = self.request("GET", "/demo/obj", conn=conn)
        conn.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(body, self.obj)
        self.assertEqual(self.stats()["upstream_errors"], 0)

    def test_many_concurrent_connections(self):
        n = 32
        part = len(self.obj) // n
        results = [None] * n

        def fetch(i):
            lo = i * part
            resp, body = self.request("GET", "/demo/obj",
                                      headers={"Range": "bytes=%d-%d" % (lo, lo + part - 1)})
            results[i] = (resp.status, body)
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        for i, r in enumerate(results):
            self.assertIsNotNone(r, "request %d did not finish" % i)
            self.assertEqual(r[0], 206)
            self.assertEqual(r[1], self.obj[i * part:(i + 1) * part])
        st = self.stats()
        self.assertEqual(st["connections"]["accepted"], n)
        self.assertEqual(st["upstream_errors"], 0)

    def test_same_seed_same_faults(self):
        def outcomes():
            self.configure(seed=7, error_rate=0.5)
            return [self.request("GET", "/demo/dir/small")[0].status for _ in range(16)]
        first = outcomes()
        self.assertEqual(first, outcomes())
        self.assertIn(200, first)
        self.assertIn(503, first)

    def test_control_rejects_bad_settings(self):
        before = self.control("GET", "/__proxy/config")[1]
        for bad in ({"nope": 1}, {"error_rate": 1.5}, {"blackhole": "yes"},
                    {"fault_ops": ["get", "bogus"]}, {"error_rate": 0.6, "reset_rate": 0.6},
                    {"bw_per_conn": "fast"}):
            status, data = self.control("POST", "/__proxy/config", bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("error", data)
        self.assertEqual(self.control("GET", "/__proxy/config")[1], before)
        self.assertEqual(self.control("GET", "/__proxy/nothing")[0], 404)

    def test_control_on_proxy_port_is_never_forwarded_or_faulted(self):
        self.configure(error_rate=1.0, fault_ops=["get", "head", "list", "put", "other"])
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/__proxy/stats")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        st = json.loads(resp.read())
        conn.close()
        self.assertEqual(sum(st["requests"].values()), 0)
        self.assertEqual(st["injected"]["error"], 0)


if __name__ == "__main__":
    unittest.main()
