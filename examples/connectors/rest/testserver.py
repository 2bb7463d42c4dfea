#!/usr/bin/env python3
"""A small REST API that runs commands and moves files on this machine, for
the tests of the @rest connector plugin (star-deploy-connector-rest). It is
the kind of API the plugin talks to: a stand-in for a cloud provider's or an
agent's "exec" and "files" endpoints. Standard library only.

    python3 testserver.py --key KEY --resource box [--port 0]

prints "listening on http://127.0.0.1:PORT" and serves until killed. Every
request needs "Authorization: Bearer KEY".

    GET    /resources/ID                          the resource (404 when unknown)
    POST   /resources/ID/exec                     {"command": str, "stdin": bool}: runs sh -c
           the response is a stream of JSON lines: {"exec": EXEC_ID}, then
           {"stream": "stdout"|"stderr", "data": BASE64}..., then {"exit_code": N}
    POST   /resources/ID/exec/EXEC_ID/stdin       raw bytes for the command's input; ?eof=1 ends it
    DELETE /resources/ID/exec/EXEC_ID             kill the command and its children
    POST   /resources/ID/uploads                  {"path": str, "mode": int} -> {"upload": UPLOAD_ID}
    PUT    /resources/ID/uploads/UPLOAD_ID        raw bytes appended to the upload
    POST   /resources/ID/uploads/UPLOAD_ID/commit set the mode and rename over the path (atomic)
    DELETE /resources/ID/uploads/UPLOAD_ID        abort: remove what was uploaded
    GET    /resources/ID/files?path=PATH          the file's content
"""

import argparse
import base64
import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = ""
RESOURCES = set()
EXECS = {}
UPLOADS = {}
LOCK = threading.Lock()


def routed(handler):
    """Makes handler(self, rest, query) a do_METHOD: it runs when the request
    has the key and names a resource, with the path after /resources/ID."""

    def do(self):
        r = self.route()
        if r is not None:
            handler(self, *r)

    return do


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, msg):
        self.json(status, {"error": msg})

    def ok(self, obj=None):
        self.json(200, obj or {})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        if self.headers.get("Authorization") != "Bearer " + KEY:
            self.error(401, "bad or missing API key")
            return None
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) < 2 or parts[0] != "resources":
            self.error(404, "no such endpoint")
            return None
        if parts[1] not in RESOURCES:
            self.error(404, "no resource %r" % parts[1])
            return None
        return parts[2:], urllib.parse.parse_qs(url.query)

    @routed
    def do_GET(self, rest, query):
        if rest == []:
            return self.ok({"id": self.path.split("/")[2]})
        if rest == ["files"]:
            path = query.get("path", [""])[0]
            try:
                f = open(path, "rb")
            except FileNotFoundError as e:
                return self.error(404, "open %s: %s" % (path, e.strerror))
            except OSError as e:
                return self.error(403 if e.errno == 13 else 500, "open %s: %s" % (path, e.strerror))
            with f:
                size = os.fstat(f.fileno()).st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                while True:
                    b = f.read(256 << 10)
                    if not b:
                        break
                    self.wfile.write(b)
            return
        self.error(404, "no such endpoint")

    @routed
    def do_POST(self, rest, query):
        if rest == ["exec"]:
            return self.exec(json.loads(self.body()))
        if len(rest) == 3 and rest[0] == "exec" and rest[2] == "stdin":
            with LOCK:
                p = EXECS.get(rest[1])
            data = self.body()
            if p is None or p.stdin is None:
                return self.error(409, "no running command %s takes input" % rest[1])
            try:
                if data:
                    p.stdin.write(data)
                    p.stdin.flush()
                if query.get("eof"):
                    p.stdin.close()
            except (OSError, ValueError) as e:
                return self.error(409, "stdin of command %s: %s" % (rest[1], e))
            return self.ok()
        if rest == ["uploads"]:
            req = json.loads(self.body())
            path, mode = req["path"], int(req["mode"])
            d = os.path.dirname(path) or "."
            uid = secrets.token_hex(8)
            tmp = os.path.join(d, ".star-deploy-upload-" + uid)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError as e:
                return self.error(404, "create a file in %s: %s" % (d, e.strerror))
            except OSError as e:
                return self.error(403 if e.errno == 13 else 500, "create a file in %s: %s" % (d, e.strerror))
            with LOCK:
                UPLOADS[uid] = (os.fdopen(fd, "wb"), tmp, path, mode)
            return self.ok({"upload": uid})
        if len(rest) == 3 and rest[0] == "uploads" and rest[2] == "commit":
            with LOCK:
                u = UPLOADS.pop(rest[1], None)
            if u is None:
                return self.error(404, "no upload %s" % rest[1])
            f, tmp, path, mode = u
            try:
                f.close()
                os.chmod(tmp, mode)
                os.rename(tmp, path)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                return self.error(404 if e.errno == 2 else 500, "install %s: %s" % (path, e.strerror))
            return self.ok()
        self.error(404, "no such endpoint")

    @routed
    def do_PUT(self, rest, _):
        if len(rest) == 2 and rest[0] == "uploads":
            with LOCK:
                u = UPLOADS.get(rest[1])
            data = self.body()
            if u is None:
                return self.error(404, "no upload %s" % rest[1])
            u[0].write(data)
            return self.ok()
        self.error(404, "no such endpoint")

    @routed
    def do_DELETE(self, rest, _):
        if len(rest) == 2 and rest[0] == "exec":
            with LOCK:
                p = EXECS.get(rest[1])
            if p is not None:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGKILL)
            return self.ok()
        if len(rest) == 2 and rest[0] == "uploads":
            with LOCK:
                u = UPLOADS.pop(rest[1], None)
            if u is not None:
                u[0].close()
                with contextlib.suppress(OSError):
                    os.unlink(u[1])
            return self.ok()
        self.error(404, "no such endpoint")

    def exec(self, req):
        p = subprocess.Popen(
            ["sh", "-c", req["command"]],
            stdin=subprocess.PIPE if req.get("stdin") else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        eid = secrets.token_hex(8)
        with LOCK:
            EXECS[eid] = p
        q = queue.Queue(maxsize=16)  # bounded: a slow client slows the command

        def pump(name, f):
            while True:
                b = f.read1(64 << 10)
                if not b:
                    break
                q.put({"stream": name, "data": base64.b64encode(b).decode()})
            q.put(None)

        threads = [threading.Thread(target=pump, args=(n, f), daemon=True) for n, f in (("stdout", p.stdout), ("stderr", p.stderr))]
        for t in threads:
            t.start()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        try:
            self.line({"exec": eid})
            ended = 0
            while ended < 2:
                item = q.get()
                if item is None:
                    ended += 1
                    continue
                self.line(item)
            code = p.wait()
            self.line({"exit_code": 128 - code if code < 0 else code})
        except OSError:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
        finally:
            with LOCK:
                EXECS.pop(eid, None)
            p.wait()

    def line(self, obj):
        self.wfile.write(json.dumps(obj).encode() + b"\n")
        self.wfile.flush()


def main():
    global KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--resource", action="append", default=[])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    KEY = args.key
    RESOURCES.update(args.resource)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
