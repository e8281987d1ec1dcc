"""A tiny scripted S3-compatible server for tests: serves ListObjectsV2 (and
V1), HEAD and GET (with Range) of one bucket from an in-memory dict, with
listings exactly as S3 makes them, whatever the keys are. No signature check.

s3rver cannot serve hostile keys (it maps keys to its own file paths), and it
omits a common prefix whose keys are all two or more levels below it; this
server does neither.

Use from a test:
    srv = ScriptedS3("bucket", {"ok.txt": b"hi", "../escape": b"x"})
    srv.start(); ... srv.url ...; srv.stop()
or standalone: python3 hostile_server.py [--port N] (hostile data set).

Misbehaviour on request (test_bounds):
    srv.faults[key] = "endless_500" | "error_500:<message>" | "redirect" |
                      "hang" | "huge_head"
    srv.list_faults[prefix] = "same_token" | "empty_pages" | "slow_forever"
    srv.synthetic[prefix] = N   # N keys prefix + "f0000000".., made per page
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.server
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

LONG_NAME = "L" * 300

# The hostile listing used by test_hostile and the standalone mode.
HOSTILE_OBJECTS = {
    "../escape": b"must never be visible\n",
    "a/../../etc": b"must never be visible\n",
    "./x": b"must never be visible\n",
    "a//b": b"must never be visible\n",
    "": b"must never be visible\n",
    LONG_NAME: b"must never be visible\n",
    "c/.": b"must never be visible\n",
    "c/..": b"must never be visible\n",
    "ok.txt": b"ok\n",
    "a/good.txt": b"good\n",
    "c/fine.txt": b"fine\n",
    "deep/x/y/z.txt": b"deep\n",
}


class Obj:
    def __init__(self, data, meta=None):
        self.data = bytes(data)
        self.meta = dict(meta or {})
        self.etag = '"' + hashlib.md5(self.data).hexdigest() + '"'
        self.mtime = time.time()


class ScriptedS3:
    def __init__(self, bucket, objects, page_size=1000, host="127.0.0.1",
                 credentials=None):
        """credentials=(access_key, secret_key): verify SigV4 (header form)
        on every request, 403 on a mismatch; None: accept anything."""
        self.credentials = credentials
        self.auth_failures = 0
        self.bucket = bucket
        self.objects = {}
        for k, v in objects.items():
            if isinstance(v, tuple):
                self.objects[k] = Obj(v[0], v[1])
            else:
                self.objects[k] = Obj(v)
        self.page_size = page_size
        self.host = host
        self.requests = []  # (method, path, query dict)
        self.lock = threading.Lock()
        self.faults = {}       # key -> fault name (see the module doc)
        self.list_faults = {}  # prefix -> listing fault
        self.synthetic = {}    # prefix -> number of generated keys
        self.released = threading.Event()  # ends "hang" handlers on stop()
        self.list_count = 0
        self.httpd = None
        self.thread = None

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self, port=0):
        server = self

        class Handler(_Handler):
            s3 = server

        self.httpd = http.server.ThreadingHTTPServer((self.host, port),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.released.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # -- listing, as S3 does it
    def list_page(self, prefix, delimiter, after, max_keys):
        """Returns (contents keys, common prefixes, truncated, last item)."""
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        contents, prefixes, seen = [], [], set()
        last = None
        truncated = False
        for k in keys:
            item = k
            if delimiter:
                i = k.find(delimiter, len(prefix))
                if i >= 0:
                    item = k[:i + len(delimiter)]
            if after is not None and item <= after:
                continue
            if item in seen:
                continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            seen.add(item)
            if item != k:
                prefixes.append(item)
            else:
                contents.append(k)
            last = item
        return contents, prefixes, truncated, last


class _Handler(http.server.BaseHTTPRequestHandler):
    s3 = None  # set by ScriptedS3.start
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _check_sigv4(self):
        """Returns None when the request is correctly signed, else an
        (S3 code, message) pair."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return ("AccessDenied", "no SigV4 Authorization header")
        fields = {}
        for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            ak, day, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            got = fields["Signature"]
        except (KeyError, ValueError):
            return ("AccessDenied", "malformed Authorization header")
        want_ak, sk = self.s3.credentials
        if ak != want_ak:
            return ("InvalidAccessKeyId", "The AWS Access Key Id you "
                    "provided does not exist in our records.")
        u = urllib.parse.urlsplit(self.path)
        canon_uri = urllib.parse.quote(urllib.parse.unquote(u.path),
                                       safe="/-_.~")
        pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
        canon_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}="
            f"{urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(pairs))
        canon_headers = ""
        for h in signed:
            v = self.headers.get(h)
            if v is None:
                return ("AccessDenied", f"signed header {h} missing")
            canon_headers += f"{h}:{' '.join(v.split())}\n"
        payload = self.headers.get("x-amz-content-sha256", "")
        creq = "\n".join([self.command, canon_uri, canon_query, canon_headers,
                          ";".join(signed), payload])
        scope = f"{day}/{region}/{service}/{term}"
        sts = "\n".join(["AWS4-HMAC-SHA256",
                         self.headers.get("x-amz-date", ""), scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        key = ("AWS4" + sk).encode()
        for p in (day, region, service, term):
            key = hmac.new(key, p.encode(), hashlib.sha256).digest()
        want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, got):
            return ("SignatureDoesNotMatch", "The request signature we "
                    "calculated does not match the signature you provided.")
        return None

    def _parse(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        path = u.path
        with self.s3.lock:
            self.s3.requests.append((self.command, path, q))
        parts = path.split("/", 2)  # ['', bucket, key...]
        bucket = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        key = urllib.parse.unquote(parts[2]) if len(parts) > 2 else None
        return bucket, key, q

    def _send(self, code, body=b"", headers=None, head_only=False):
        self.send_response(code)
        hdrs = {"Content-Length": str(len(body)),
                "x-amz-request-id": "scripted"}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head_only:
            self.wfile.write(body)

    def _error(self, code, s3code, msg, head_only=False):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f"{s3code}</Code><Message>{escape(msg)}</Message></Error>"
                ).encode()
        self._send(code, body, {"Content-Type": "application/xml"},
                   head_only)

    def do_HEAD(self):
        self._handle(head_only=True)

    def do_GET(self):
        self._handle(head_only=False)

    def do_PUT(self):
        self._parse()
        self._error(403, "AccessDenied", "scripted server is read-only")

    do_POST = do_PUT
    do_DELETE = do_PUT

    def _handle(self, head_only):
        bucket, key, q = self._parse()
        if self.s3.credentials is not None:
            bad = self._check_sigv4()
            if bad is not None:
                with self.s3.lock:
                    self.s3.auth_failures += 1
                return self._error(403, bad[0], bad[1], head_only)
        if bucket != self.s3.bucket:
            return self._error(404, "NoSuchBucket",
                               "The specified bucket does not exist",
                               head_only)
        if key is None or (key == "" and not head_only and
                           ("list-type" in q or "location" in q or
                            "prefix" in q or "delimiter" in q or not q)):
            if head_only:
                return self._send(200)
            if "location" in q:
                body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                        b'<LocationConstraint xmlns="http://s3.amazonaws.com/'
                        b'doc/2006-03-01/"></LocationConstraint>')
                return self._send(200, body,
                                  {"Content-Type": "application/xml"})
            return self._list(q)
        fault = self.s3.faults.get(key)
        if fault is not None:
            return self._fault(fault, head_only)
        obj = self.s3.objects.get(key)
        if obj is None:
            return self._error(404, "NoSuchKey",
                               "The specified key does not exist.", head_only)
        headers = {
            "ETag": obj.etag,
            "Last-Modified": email.utils.formatdate(obj.mtime, usegmt=True),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        for k, v in obj.meta.items():
            headers[f"x-amz-meta-{k}"] = v
        data = obj.data
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head_only:
            first, _, last = rng[6:].partition("-")
            size = len(data)
            if first == "":
                start = max(0, size - int(last))
                end = size - 1
            else:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            if start >= size:
                return self._error(416, "InvalidRange",
                                   "The requested range is not satisfiable")
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return self._send(206, data[start:end + 1], headers)
        headers["Content-Length"] = str(len(data))
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _fault(self, fault, head_only):
        if fault == "huge_head":
            return self._send(200, b"", {"Content-Length": str(1 << 62),
                                         "ETag": '"huge"'}, head_only=True)
        if head_only:  # every other fault is about the GET
            return self._send(200, b"", {"Content-Length": "10",
                                         "ETag": '"f"'}, head_only=True)
        if fault == "endless_500":
            # A 500 whose body never ends (until the client leaves).
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            chunk = b"<Error><Code>InternalError</Code>" + b"x" * 65536
            try:
                while not self.s3.released.is_set():
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
            return None
        if fault.startswith("error_500:"):
            return self._error(500, "InternalError", fault[len("error_500:"):])
        if fault == "redirect":
            body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                    b"PermanentRedirect</Code><Message>The bucket you are "
                    b"attempting to access must be addressed using the "
                    b"specified endpoint.</Message></Error>")
            return self._send(301, body, {
                "Content-Type": "application/xml",
                "Location": "http://elsewhere.example/"})
        if fault == "hang":
            self.s3.released.wait()
            self.close_connection = True
            return None
        raise ValueError(f"unknown fault {fault}")

    def _list_fault(self, fault, prefix):
        with self.s3.lock:
            self.s3.list_count += 1
            n = self.s3.list_count
        keys = []
        if fault == "same_token":
            keys, token = [prefix + "a"], "the-same-token"
        elif fault == "empty_pages":
            token = f"empty-{n}"
        elif fault == "slow_forever":
            time.sleep(0.2)
            keys, token = [prefix + f"k{n:09d}"], f"slow-{n}"
        else:
            raise ValueError(f"unknown list fault {fault}")
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
               f"<Name>{escape(self.s3.bucket)}</Name>",
               f"<Prefix>{escape(prefix)}</Prefix>",
               "<IsTruncated>true</IsTruncated>",
               f"<KeyCount>{len(keys)}</KeyCount>",
               f"<NextContinuationToken>{token}</NextContinuationToken>"]
        for k in keys:
            out.append(f"<Contents><Key>{escape(k)}</Key><LastModified>"
                       "2024-01-01T00:00:00.000Z</LastModified><ETag>"
                       "&quot;e&quot;</ETag><Size>1</Size></Contents>")
        out.append("</ListBucketResult>")
        return self._send(200, "".join(out).encode(),
                          {"Content-Type": "application/xml"})

    def _synthetic_list(self, prefix, count, q):
        token = q.get("continuation-token")
        start = 0
        if token:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) + 1
        max_keys = min(int(q.get("max-keys", "1000")), self.s3.page_size)
        end = min(count, start + max_keys)
        etag = '"0123456789abcdef0123456789abcdef"'
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
               f"<Name>{escape(self.s3.bucket)}</Name>",
               f"<Prefix>{escape(prefix)}</Prefix>",
               f"<IsTruncated>{'true' if end < count else 'false'}"
               "</IsTruncated>", f"<KeyCount>{end - start}</KeyCount>"]
        if end < count:
            tok = base64.urlsafe_b64encode(str(end - 1).encode()).decode()
            out.append(f"<NextContinuationToken>{tok}</NextContinuationToken>")
        for i in range(start, end):
            out.append(f"<Contents><Key>{prefix}f{i:07d}</Key><LastModified>"
                       "2024-01-01T00:00:00.000Z</LastModified><ETag>"
                       f"{escape(etag)}</ETag><Size>1</Size></Contents>")
        out.append("</ListBucketResult>")
        return self._send(200, "".join(out).encode(),
                          {"Content-Type": "application/xml"})

    def _list(self, q):
        v2 = q.get("list-type") == "2"
        prefix = q.get("prefix", "")
        if prefix in self.s3.list_faults:
            return self._list_fault(self.s3.list_faults[prefix], prefix)
        if prefix in self.s3.synthetic:
            return self._synthetic_list(prefix, self.s3.synthetic[prefix], q)
        delimiter = q.get("delimiter", "")
        max_keys = min(int(q.get("max-keys", "1000")), self.s3.page_size)
        url_enc = q.get("encoding-type") == "url"
        if v2:
            token = q.get("continuation-token")
            after = (base64.urlsafe_b64decode(token.encode()).decode()[2:]
                     if token else q.get("start-after"))
        else:
            after = q.get("marker") or None
        contents, prefixes, truncated, last = self.s3.list_page(
            prefix, delimiter, after, max_keys)

        def enc(s):
            s = urllib.parse.quote(s, safe="/~-_.") if url_enc else s
            return escape(s)

        out = ['<?xml version="1.0" encoding="UTF-8"?>\n'
               '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
               '2006-03-01/">',
               f"<Name>{escape(self.s3.bucket)}</Name>",
               f"<Prefix>{enc(prefix)}</Prefix>",
               f"<MaxKeys>{max_keys}</MaxKeys>"]
        if delimiter:
            out.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if url_enc:
            out.append("<EncodingType>url</EncodingType>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}"
                   "</IsTruncated>")
        if v2:
            out.append(f"<KeyCount>{len(contents) + len(prefixes)}"
                       "</KeyCount>")
            if q.get("continuation-token"):
                out.append("<ContinuationToken>"
                           f"{escape(q['continuation-token'])}"
                           "</ContinuationToken>")
            if truncated:
                tok = base64.urlsafe_b64encode(
                    ("k:" + last).encode()).decode()  # never empty
                out.append(f"<NextContinuationToken>{tok}"
                           "</NextContinuationToken>")
        else:
            out.append(f"<Marker>{enc(after or '')}</Marker>")
            if truncated:
                out.append(f"<NextMarker>{enc(last)}</NextMarker>")
        for k in contents:
            o = self.s3.objects[k]
            lm = time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                               time.gmtime(o.mtime))
            out.append(f"<Contents><Key>{enc(k)}</Key><LastModified>{lm}"
                       f"</LastModified><ETag>{escape(o.etag)}</ETag>"
                       f"<Size>{len(o.data)}</Size><StorageClass>STANDARD"
                       "</StorageClass></Contents>")
        for p in prefixes:
            out.append(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix>"
                       "</CommonPrefixes>")
        out.append("</ListBucketResult>")
        self._send(200, "".join(out).encode(),
                   {"Content-Type": "application/xml"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bucket", default="hostile")
    ap.add_argument("--page-size", type=int, default=1000)
    args = ap.parse_args()
    srv = ScriptedS3(args.bucket, HOSTILE_OBJECTS, args.page_size)
    srv.start(args.port)
    print(f"serving bucket {args.bucket} on {srv.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
