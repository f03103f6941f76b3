#!/usr/bin/env python3
"""A small OCI registry for Berth's image tests: serves one OCI image layout read-only, with faults on demand.

    image-fake-registry.py --port P --layout DIR [--mode MODE] [--bearer USER:PASS]

Modes: ok, fail500 (every blob 500), flaky (first two tries of each URL answer 500 then 429),
hang (blob requests never answer), corrupt (one byte of each layer flipped), truncate (blobs cut
in half, connection closed), truncate-resume (first try cut in half; Range requests honoured),
badtype (manifest with an unknown media type), index (tag is an index: arm64, amd64, arm/v7), foreign-index (tag resolves to an index for other
platforms only). --bearer: Bearer-token auth with a token endpoint at /token that wants Basic USER:PASS.
Listens on 127.0.0.1 only.
"""
import argparse, base64, hashlib, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
tries = {}
lock = threading.Lock()
TOKEN = "berth-test-token"


def blob_path(digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(args.layout, "blobs", algo, hexd)


def tagged(tag):
    index = json.load(open(os.path.join(args.layout, "index.json")))
    for m in index["manifests"]:
        ann = m.get("annotations") or {}
        if ann.get("org.opencontainers.image.ref.name") == tag or tag == "latest":
            return m
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def attempt(self):
        with lock:
            n = tries.get(self.path, 0) + 1
            tries[self.path] = n
            return n

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if self.path.startswith("/token"):
            want = "Basic " + base64.b64encode(args.bearer.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return self.send(200, json.dumps({"token": TOKEN}).encode(), {"Content-Type": "application/json"})
        if args.bearer and self.headers.get("Authorization") != "Bearer " + TOKEN:
            host = self.headers.get("Host")
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {
                "WWW-Authenticate": 'Bearer realm="http://%s/token",service="fake-registry",scope="repository:test/image:pull"' % host})
        if self.path == "/v2/":
            return self.send(200, b"{}")
        parts = self.path.split("/")
        # /v2/<name...>/manifests/<ref> or /v2/<name...>/blobs/<digest>
        if len(parts) < 5:
            return self.send(404)
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            return self.manifest(ref)
        if kind == "blobs":
            return self.blob(ref)
        self.send(404)

    def manifest(self, ref):
        if args.mode == "foreign-index" and not ref.startswith("sha256:"):
            m = tagged("latest")
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
                dict(m, platform={"os": "linux", "architecture": "s390x"}),
                dict(m, platform={"os": "windows", "architecture": "amd64"})]}
            return self.send(200, json.dumps(index).encode(), {"Content-Type": index["mediaType"]})
        if args.mode == "index" and not ref.startswith("sha256:"):
            m = tagged("latest")
            missing = "sha256:" + hashlib.sha256(b"no such manifest").hexdigest()
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
                dict(m, digest=missing, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
                dict(m, platform={"os": "linux", "architecture": "amd64"}),
                dict(m, digest=missing, platform={"os": "linux", "architecture": "arm", "variant": "v7"})]}
            return self.send(200, json.dumps(index).encode(), {"Content-Type": index["mediaType"]})
        if ref.startswith("sha256:"):
            desc = {"digest": ref, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
        else:
            desc = tagged(ref)
            if desc is None:
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
        try:
            body = open(blob_path(desc["digest"]), "rb").read()
        except FileNotFoundError:
            return self.send(404)
        mt = desc.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        if args.mode == "badtype":
            doc = json.loads(body)
            doc["mediaType"] = "application/vnd.example.unknown+json"
            body = json.dumps(doc).encode()
            mt = doc["mediaType"]
        self.send(200, body, {"Content-Type": mt, "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})

    def blob(self, digest):
        try:
            data = open(blob_path(digest), "rb").read()
        except FileNotFoundError:
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        is_layer = len(data) > 2 and data[:2] == b"\x1f\x8b"
        n = self.attempt()
        if args.mode == "fail500" and is_layer:
            return self.send(500, b'{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}')
        if args.mode == "flaky" and n <= 2:
            return self.send(500 if n == 1 else 429, b"try again", {"Retry-After": "0"})
        if args.mode == "hang" and is_layer:
            time.sleep(3600)
            return
        if args.mode == "corrupt" and is_layer:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        start = 0
        rng = self.headers.get("Range")
        if rng and args.mode == "truncate-resume":
            start = int(rng.split("=")[1].split("-")[0])
        cut = args.mode == "truncate" or (args.mode == "truncate-resume" and n == 1)
        if cut and is_layer:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if start:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])
            return
        self.send(200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest})


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--bearer")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
