#!/usr/bin/env python3
"""s3sink: a small threaded S3-compatible server for the bench's write step.

s3rver (one Node process) ingests 64-93 MB/s on the bench machine, below what
dsfs and s3fs can write, so the write step needs an origin that takes bytes
faster. This one is Python's ThreadingHTTPServer (HTTP/1.1, keep-alive, one
thread per connection) storing object bytes in files under --dir (tmpfs
/dev/shm is best); the body is read in 1 MiB chunks and hashed with
hashlib.md5, which releases the GIL, so connections ingest in parallel.

Path-style requests only (/BUCKET/KEY), no signature checks, no versioning.
Enough for dsfs, s3fs 1.90 and rclone to write, read, list, copy and delete:
  objects   PUT (Content-MD5 checked: 400 BadDigest; ETag = quoted hex MD5;
            aws-chunked and Transfer-Encoding: chunked bodies decoded),
            GET (Range, If-Match / If-None-Match), HEAD, DELETE,
            POST ?delete (DeleteObjects),
            CopyObject (x-amz-copy-source, x-amz-copy-source-if-match,
            x-amz-metadata-directive COPY/REPLACE)
  multipart CreateMultipartUpload, UploadPart, UploadPartCopy
            (x-amz-copy-source-range), CompleteMultipartUpload (ETag =
            md5 of the concatenated part digests, "-N"), AbortMultipartUpload,
            ListMultipartUploads, ListParts
  listing   ListObjectsV2 and v1 (prefix, delimiter, max-keys, continuation
            token / start-after / marker, encoding-type=url), ListBuckets
  buckets   PUT, HEAD, DELETE (empty), GET ?location / ?versioning / ?acl
Content-Type, Content-Encoding, Content-Disposition, Cache-Control and
x-amz-meta-* are kept and returned. A completed multipart object is the list
of its part files (no copy at Complete); a copy hard-links the files, which
are never written once complete.

Usage: s3sink.py --dir DIR [--port 0] [--bucket demo ...]
Prints "listening on 127.0.0.1:PORT" once it accepts connections.
GET /__sink/stats answers JSON counters (requests per operation, bytes in).
"""

import argparse
import base64
import hashlib
import http.server
import itertools
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from xml.etree import ElementTree
from xml.sax.saxutils import escape

CHUNK = 1 << 20
KEPT_HEADERS = ("content-type", "content-encoding", "content-disposition",
                "cache-control", "content-language", "expires")
NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class S3Error(Exception):
    def __init__(self, status, code, message=""):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message or code


class Obj:
    """One object version: its part files (read in order), size, ETag, headers."""
    __slots__ = ("segments", "size", "etag", "mtime", "headers")

    def __init__(self, segments, etag, headers):
        self.segments = segments  # [(path, length)]
        self.size = sum(n for _, n in segments)
        self.etag = etag
        self.mtime = time.time()
        self.headers = headers  # lower-case name -> value


class Store:
    """Buckets, objects and uploads in memory; bytes in files under root."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.lock = threading.Lock()
        self.buckets = {}  # name -> {key: Obj}
        self.uploads = {}  # upload id -> (bucket, key, headers, {part: Obj}, started)
        self.ids = itertools.count(1)
        self.stats = {"requests": {}, "bytes_in": 0}

    def new_path(self):
        return os.path.join(self.root, "f%d" % next(self.ids))

    def bucket(self, name):
        b = self.buckets.get(name)
        if b is None:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist")
        return b

    def get(self, bucket, key):
        with self.lock:
            o = self.bucket(bucket).get(key)
        if o is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        return o

    def put(self, bucket, key, obj):
        with self.lock:
            b = self.bucket(bucket)
            old = b.get(key)
            b[key] = obj
        if old is not None:
            self.release(old)

    def delete(self, bucket, key):
        with self.lock:
            old = self.bucket(bucket).pop(key, None)
        if old is not None:
            self.release(old)

    @staticmethod
    def release(obj):
        for path, _ in obj.segments:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def link(self, obj):
        """Hard links of obj's files: the copy owns its own names."""
        segs = []
        for path, n in obj.segments:
            p = self.new_path()
            os.link(path, p)
            segs.append((p, n))
        return segs

    def count(self, op, nbytes=0):
        with self.lock:
            r = self.stats["requests"]
            r[op] = r.get(op, 0) + 1
            self.stats["bytes_in"] += nbytes


def http_date(t):
    return formatdate(t, usegmt=True)


def iso_date(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def xml_doc(root, body):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%s xmlns="%s">%s</%s>'
            % (root, NS, body, root)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "s3sink"
    store = None  # set by main()

    def log_message(self, fmt, *args):  # quiet: the bench reads stats instead
        pass

    # ---- plumbing ----------------------------------------------------------
    def parse(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.lstrip("/").split("/", 1)
        self.bucket_name = urllib.parse.unquote(parts[0])
        self.key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        self.hdr = {k.lower(): v for k, v in self.headers.items()}

    def reply(self, status, body=b"", headers=(), content_type="application/xml"):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def error(self, e):
        body = xml_doc("Error", "<Code>%s</Code><Message>%s</Message><Resource>%s</Resource>"
                       % (e.code, escape(e.message), escape(self.path)))
        # An unread request body would be taken for the next request.
        if self.hdr.get("content-length") and not getattr(self, "body_read", False):
            self.close_connection = True
        self.reply(e.status, b"" if self.command == "HEAD" else body)

    def dispatch(self):
        self.body_read = False
        try:
            self.parse()
            if self.bucket_name == "__sink":
                self.reply(200, json.dumps(self.store.stats).encode(), content_type="application/json")
                return
            getattr(self, "do_" + self.command.lower() + "_s3")()
        except S3Error as e:
            self.error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = dispatch

    def read_body_to(self, fd=None):
        """Reads the request body (Content-Length, chunked or aws-chunked),
        writes it to fd if given; returns (bytes or None, md5 digest, length)."""
        md5 = hashlib.md5()
        keep = [] if fd is None else None
        total = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)

        def take(n, direct=False):
            nonlocal total
            while n > 0:
                if direct:  # one recv (one GIL release) per MiB, not one per segment
                    got = self.connection.recv_into(view[:min(n, CHUNK)], 0, socket.MSG_WAITALL)
                else:
                    got = self.rfile.readinto(view[:min(n, CHUNK)])
                if not got:
                    raise S3Error(400, "IncompleteBody", "body ended early")
                chunk = view[:got]
                md5.update(chunk)
                if fd is None:
                    keep.append(bytes(chunk))
                else:
                    off = 0
                    while off < got:
                        off += os.write(fd, chunk[off:])
                total += got
                n -= got

        sha = self.hdr.get("x-amz-content-sha256", "")
        if self.hdr.get("transfer-encoding", "").lower() == "chunked" or sha.startswith("STREAMING-"):
            while True:  # "<hex>[;ext]\r\n<data>\r\n" ... "0[;ext]\r\n[trailers]\r\n"
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    break
                take(n)
                self.rfile.readline(8)
        else:
            n = int(self.hdr.get("content-length", "0"))
            if n > 0:  # what rfile holds already, then straight from the socket
                held = min(n, len(self.rfile.peek(1)))
                take(held)
                take(n - held, direct=True)
        self.body_read = True
        with self.store.lock:
            self.store.stats["bytes_in"] += total
        digest = md5.digest()
        want = self.hdr.get("content-md5")
        if want and base64.b64decode(want) != digest:
            raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        return (b"".join(keep) if keep is not None else None), digest, total

    def body_to_file(self):
        """The body in a new file: (path, md5 digest, length)."""
        path = self.store.new_path()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _, digest, n = self.read_body_to(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path, digest, n

    def meta_from_request(self):
        return {k: v for k, v in self.hdr.items()
                if k in KEPT_HEADERS or k.startswith("x-amz-meta-")}

    def obj_headers(self, o):
        h = [("ETag", '"%s"' % o.etag), ("Last-Modified", http_date(o.mtime)),
             ("Accept-Ranges", "bytes")]
        h += [(k, v) for k, v in o.headers.items() if k != "content-type"]
        return h

    def copy_source(self):
        src = urllib.parse.unquote(self.hdr["x-amz-copy-source"].split("?")[0]).lstrip("/")
        sb, _, sk = src.partition("/")
        o = self.store.get(sb, sk)
        want = self.hdr.get("x-amz-copy-source-if-match")
        if want and want.strip('"') != o.etag:
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        return o

    # ---- methods ------------------------------------------------------------
    def do_put_s3(self):
        q, st = self.query, self.store
        if not self.key:
            if self.bucket_name not in st.buckets:
                with st.lock:
                    st.buckets.setdefault(self.bucket_name, {})
            self.read_body_to()
            st.count("bucket")
            return self.reply(200)
        st.bucket(self.bucket_name)
        if "uploadId" in q:
            return self.upload_part(q["uploadId"], int(q.get("partNumber", "0")))
        if "x-amz-copy-source" in self.hdr:
            return self.copy_object()
        if q:  # ?acl, ?tagging ...: accepted and ignored
            self.read_body_to()
            return self.reply(200)
        path, digest, n = self.body_to_file()
        o = Obj([(path, n)], digest.hex(), self.meta_from_request())
        st.put(self.bucket_name, self.key, o)
        st.count("put", n)
        self.reply(200, headers=[("ETag", '"%s"' % o.etag)])

    def copy_object(self):
        src = self.copy_source()
        if self.hdr.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
            meta = self.meta_from_request()
        else:
            meta = dict(src.headers)
        self.read_body_to()
        o = Obj(self.store.link(src), src.etag, meta)
        self.store.put(self.bucket_name, self.key, o)
        self.store.count("copy")
        self.reply(200, xml_doc("CopyObjectResult", "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                                % (iso_date(o.mtime), o.etag)))

    def upload(self, uid):
        u = self.store.uploads.get(uid)
        if u is None or u[0] != self.bucket_name or u[1] != self.key:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.")
        return u

    def upload_part(self, uid, number):
        st = self.store
        with st.lock:
            u = self.upload(uid)
        if "x-amz-copy-source" in self.hdr:  # UploadPartCopy
            src = self.copy_source()
            self.read_body_to()
            first, last = 0, src.size - 1
            rng = self.hdr.get("x-amz-copy-source-range")
            if rng:
                a, b = rng.split("=", 1)[1].split("-")
                first, last = int(a), int(b)
            path = st.new_path()
            md5 = hashlib.md5()
            with open(path, "wb") as out:
                for chunk in self.read_range(src, first, last - first + 1):
                    md5.update(chunk)
                    out.write(chunk)
            part = Obj([(path, last - first + 1)], md5.hexdigest(), {})
            body = xml_doc("CopyPartResult", "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                           % (iso_date(part.mtime), part.etag))
        else:
            path, digest, n = self.body_to_file()
            part = Obj([(path, n)], digest.hex(), {})
            body = b""
        with st.lock:
            old = u[3].get(number)
            u[3][number] = part
        if old is not None:
            st.release(old)
        st.count("mpu_part", part.size)
        self.reply(200, body, headers=[("ETag", '"%s"' % part.etag)])

    def do_post_s3(self):
        q, st = self.query, self.store
        st.bucket(self.bucket_name)
        if "uploads" in q:
            self.read_body_to()
            uid = "u%d-%d" % (next(st.ids), int(time.time() * 1000))
            with st.lock:
                st.uploads[uid] = (self.bucket_name, self.key, self.meta_from_request(), {}, time.time())
            st.count("mpu_create")
            return self.reply(200, xml_doc("InitiateMultipartUploadResult",
                                           "<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                                           % (escape(self.bucket_name), escape(self.key), uid)))
        if "uploadId" in q:
            return self.complete(q["uploadId"])
        if "delete" in q:
            body, _, _ = self.read_body_to()
            out = []
            for el in ElementTree.fromstring(body).iter():
                if el.tag.rsplit("}", 1)[-1] == "Key":
                    st.delete(self.bucket_name, el.text or "")
                    out.append("<Deleted><Key>%s</Key></Deleted>" % escape(el.text or ""))
            st.count("delete_multi")
            return self.reply(200, xml_doc("DeleteResult", "".join(out)))
        raise S3Error(400, "InvalidRequest", "unsupported POST")

    def complete(self, uid):
        st = self.store
        body, _, _ = self.read_body_to()
        with st.lock:
            u = self.upload(uid)
        wanted = []
        for part in ElementTree.fromstring(body):
            fields = {c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in part}
            wanted.append((int(fields.get("PartNumber", "0")), fields.get("ETag", "").strip('"')))
        if not wanted:
            raise S3Error(400, "MalformedXML", "no parts")
        if [n for n, _ in wanted] != sorted(n for n, _ in wanted):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        parts = u[3]
        md5s = b""
        segs = []
        for n, etag in wanted:
            p = parts.get(n)
            if p is None or p.etag != etag:
                raise S3Error(400, "InvalidPart", "One or more of the specified parts could not be found.")
            md5s += bytes.fromhex(p.etag)
            segs += p.segments
        with st.lock:
            st.uploads.pop(uid, None)
        for n, p in parts.items():  # parts uploaded but not listed
            if n not in dict(wanted):
                st.release(p)
        o = Obj(segs, "%s-%d" % (hashlib.md5(md5s).hexdigest(), len(wanted)), u[2])
        st.put(self.bucket_name, self.key, o)
        st.count("mpu_complete")
        self.reply(200, xml_doc("CompleteMultipartUploadResult",
                                "<Bucket>%s</Bucket><Key>%s</Key><ETag>&quot;%s&quot;</ETag>"
                                % (escape(self.bucket_name), escape(self.key), o.etag)))

    def do_delete_s3(self):
        st, q = self.store, self.query
        self.read_body_to()
        if "uploadId" in q:
            with st.lock:
                u = st.uploads.pop(q["uploadId"], None)
            if u is None:
                raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.")
            for p in u[3].values():
                st.release(p)
            st.count("mpu_abort")
            return self.reply(204)
        if not self.key:
            with st.lock:
                if st.bucket(self.bucket_name):
                    raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
                del st.buckets[self.bucket_name]
            return self.reply(204)
        st.bucket(self.bucket_name)
        st.delete(self.bucket_name, self.key)
        st.count("delete")
        self.reply(204)

    def do_head_s3(self):
        self.do_get_s3()

    def do_get_s3(self):
        st, q = self.store, self.query
        if not self.bucket_name:
            return self.list_buckets()
        if not self.key:
            return self.bucket_get()
        if "uploadId" in q:
            return self.list_parts(q["uploadId"])
        if "acl" in q or "tagging" in q:
            st.get(self.bucket_name, self.key)
            return self.reply(200, xml_doc("Tagging" if "tagging" in q else "AccessControlPolicy",
                                           "<TagSet></TagSet>" if "tagging" in q else ""))
        o = st.get(self.bucket_name, self.key)
        st.count(self.command.lower())
        im, inm = self.hdr.get("if-match"), self.hdr.get("if-none-match")
        if im and im.strip('"') != o.etag and im != "*":
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        if inm and inm.strip('"') == o.etag:
            return self.reply(304, headers=[("ETag", '"%s"' % o.etag)])
        first, length, status = 0, o.size, 200
        rng = self.hdr.get("range")
        headers = self.obj_headers(o)
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, b = rng[6:].split("-", 1)
            if a:
                first = int(a)
                last = min(int(b), o.size - 1) if b else o.size - 1
            else:
                first, last = max(0, o.size - int(b)), o.size - 1
            if first >= o.size or last < first:
                raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
            length, status = last - first + 1, 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (first, last, o.size)))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", o.headers.get("content-type", "binary/octet-stream"))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()
        self.send_range(o, first, length)

    def segments_of(self, o, first, length):
        """(path, offset, count) pieces of o's bytes [first, first+length)."""
        pos = 0
        for path, n in o.segments:
            if length <= 0:
                break
            if first < pos + n:
                off = max(0, first - pos)
                cnt = min(n - off, length)
                yield path, off, cnt
                first += cnt
                length -= cnt
            pos += n

    def send_range(self, o, first, length):
        for path, off, cnt in self.segments_of(o, first, length):
            with open(path, "rb") as f:
                sent = self.connection.sendfile(f, off, cnt)
            if sent != cnt:
                self.close_connection = True
                return

    def read_range(self, o, first, length):
        for path, off, cnt in self.segments_of(o, first, length):
            with open(path, "rb") as f:
                f.seek(off)
                while cnt > 0:
                    chunk = f.read(min(cnt, CHUNK))
                    if not chunk:
                        raise S3Error(500, "InternalError", "short object file")
                    cnt -= len(chunk)
                    yield chunk

    def list_buckets(self):
        with self.store.lock:
            names = sorted(self.store.buckets)
        self.reply(200, xml_doc("ListAllMyBucketsResult",
                                "<Owner><ID>sink</ID><DisplayName>sink</DisplayName></Owner><Buckets>%s</Buckets>"
                                % "".join("<Bucket><Name>%s</Name><CreationDate>%s</CreationDate></Bucket>"
                                          % (escape(n), iso_date(0)) for n in names)))

    def bucket_get(self):
        st, q = self.store, self.query
        with st.lock:
            b = st.bucket(self.bucket_name)
        if "location" in q:
            return self.reply(200, xml_doc("LocationConstraint", ""))
        if "versioning" in q:
            return self.reply(200, xml_doc("VersioningConfiguration", ""))
        if "acl" in q:
            return self.reply(200, xml_doc("AccessControlPolicy",
                                           "<Owner><ID>sink</ID></Owner><AccessControlList></AccessControlList>"))
        if "uploads" in q:
            return self.list_uploads()
        if self.command == "HEAD":
            return self.reply(200)
        self.list_objects(b)

    def list_objects(self, b):
        q = self.query
        v2 = q.get("list-type") == "2"
        prefix, delim = q.get("prefix", ""), q.get("delimiter", "")
        maxk = int(q.get("max-keys", "1000"))
        enc = q.get("encoding-type") == "url"
        if v2:
            token = q.get("continuation-token")
            after = base64.urlsafe_b64decode(token).decode() if token else q.get("start-after", "")
        else:
            after = q.get("marker", "")
        with self.store.lock:
            keys = sorted(k for k in b if k.startswith(prefix) and k > after)
            objs = {k: b[k] for k in keys}
        contents, prefixes, last, truncated = [], [], None, False
        for k in keys:
            if delim:
                i = k.find(delim, len(prefix))
                if i >= 0:
                    cp = k[:i + len(delim)]
                    if prefixes and prefixes[-1] == cp:
                        continue
                    if after.startswith(cp):  # this prefix was listed on an earlier page
                        continue
                    if len(contents) + len(prefixes) >= maxk:
                        truncated = True
                        break
                    prefixes.append(cp)
                    last = k[:i] + delim + "\U0010ffff"  # past every key under cp
                    continue
            if len(contents) + len(prefixes) >= maxk:
                truncated = True
                break
            contents.append(k)
            last = k
        e = (lambda s: urllib.parse.quote(s, safe="/")) if enc else escape
        body = ["<Name>%s</Name><Prefix>%s</Prefix><MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>"
                % (escape(self.bucket_name), e(prefix), maxk, "true" if truncated else "false")]
        if delim:
            body.append("<Delimiter>%s</Delimiter>" % e(delim))
        if enc:
            body.append("<EncodingType>url</EncodingType>")
        if v2:
            body.append("<KeyCount>%d</KeyCount>" % (len(contents) + len(prefixes)))
            if q.get("continuation-token"):
                body.append("<ContinuationToken>%s</ContinuationToken>" % escape(q["continuation-token"]))
            if truncated and last is not None:
                body.append("<NextContinuationToken>%s</NextContinuationToken>"
                            % base64.urlsafe_b64encode(last.encode()).decode())
        else:
            body.append("<Marker>%s</Marker>" % e(after))
            if truncated and last is not None:
                body.append("<NextMarker>%s</NextMarker>" % e(last.rstrip("\U0010ffff")))
        for k in contents:
            o = objs[k]
            body.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                        "<Size>%d</Size><StorageClass>STANDARD</StorageClass>"
                        "<Owner><ID>sink</ID><DisplayName>sink</DisplayName></Owner></Contents>"
                        % (e(k), iso_date(o.mtime), o.etag, o.size))
        for cp in prefixes:
            body.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % e(cp))
        self.store.count("list")
        self.reply(200, xml_doc("ListBucketResult", "".join(body)))

    def list_uploads(self):
        with self.store.lock:
            ups = sorted((u[1], uid, u[4]) for uid, u in self.store.uploads.items() if u[0] == self.bucket_name)
        prefix = self.query.get("prefix", "")
        self.reply(200, xml_doc("ListMultipartUploadsResult",
                                "<Bucket>%s</Bucket><IsTruncated>false</IsTruncated>%s"
                                % (escape(self.bucket_name),
                                   "".join("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated>"
                                           "<StorageClass>STANDARD</StorageClass></Upload>"
                                           % (escape(k), uid, iso_date(t))
                                           for k, uid, t in ups if k.startswith(prefix)))))

    def list_parts(self, uid):
        with self.store.lock:
            u = self.upload(uid)
            parts = sorted(u[3].items())
        self.reply(200, xml_doc("ListPartsResult",
                                "<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId><IsTruncated>false</IsTruncated>%s"
                                % (escape(self.bucket_name), escape(self.key), uid,
                                   "".join("<Part><PartNumber>%d</PartNumber><LastModified>%s</LastModified>"
                                           "<ETag>&quot;%s&quot;</ETag><Size>%d</Size></Part>"
                                           % (n, iso_date(p.mtime), p.etag, p.size) for n, p in parts))))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="where object bytes are stored")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bucket", action="append", default=[], help="bucket to create at start (repeatable)")
    args = ap.parse_args()
    Handler.store = Store(args.dir)
    for b in args.bucket:
        Handler.store.buckets[b] = {}
    srv = Server(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
