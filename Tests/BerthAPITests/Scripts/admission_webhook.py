"""An admission webhook of the tests' own (HTTPS, AdmissionReview v1), as an operator would write one.

Usage: admission_webhook.py PORT CERT KEY RECORD_FILE

Paths:
  /mutate     adds the label webhook=mutated (and a warning); on pods only.
  /validate   refuses objects labelled deny (403, "the label deny is set") and the deletion of objects
              labelled protected.
  /slow       answers after 3 s (tests give it a 1 s timeout).
  /garbage    answers with something that is not an AdmissionReview.
  /seen-b     (reinvocation) annotates whether the label b is there yet.
  /add-b      adds the label b=added.
Every review received is appended to RECORD_FILE as one JSON line.
"""
import base64
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, cert, key, record = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def patch_of(ops):
    return base64.b64encode(json.dumps(ops).encode()).decode()


def label_ops(obj, key, value):
    labels = (obj.get("metadata") or {}).get("labels")
    escaped = key.replace("~", "~0").replace("/", "~1")
    if labels is None:
        return [{"op": "add", "path": "/metadata/labels", "value": {key: value}}]
    return [{"op": "add", "path": "/metadata/labels/" + escaped, "value": value}]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        review = json.loads(body)
        request = review["request"]
        with open(record, "a") as f:
            f.write(json.dumps({"path": self.path.split("?")[0], "query": self.path.partition("?")[2], "review": review}) + "\n")
        path = self.path.split("?")[0]
        obj = request.get("object") or {}
        old = request.get("oldObject") or {}
        response = {"uid": request["uid"], "allowed": True}
        if path == "/mutate":
            response["patchType"] = "JSONPatch"
            response["patch"] = patch_of(label_ops(obj, "webhook", "mutated"))
            response["warnings"] = ["mutated by the test webhook"]
        elif path == "/validate":
            labels = (obj.get("metadata") or {}).get("labels") or {}
            old_labels = (old.get("metadata") or {}).get("labels") or {}
            if "deny" in labels:
                response = {"uid": request["uid"], "allowed": False,
                            "status": {"code": 403, "reason": "Forbidden", "message": "the label deny is set"}}
            elif request["operation"] == "DELETE" and "protected" in old_labels:
                response = {"uid": request["uid"], "allowed": False, "status": {"message": "it is protected"}}
        elif path == "/slow":
            time.sleep(3)
        elif path == "/garbage":
            self.reply(b"not a review")
            return
        elif path == "/seen-b":
            seen = "b" in ((obj.get("metadata") or {}).get("labels") or {})
            annotations = (obj.get("metadata") or {}).get("annotations")
            value = "yes" if seen else "no"
            if annotations is None:
                ops = [{"op": "add", "path": "/metadata/annotations", "value": {"seen-b": value}}]
            else:
                ops = [{"op": "add", "path": "/metadata/annotations/seen-b", "value": value}]
            response["patchType"] = "JSONPatch"
            response["patch"] = patch_of(ops)
        elif path == "/add-b":
            response["patchType"] = "JSONPatch"
            response["patch"] = patch_of(label_ops(obj, "b", "added"))
        answer = {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response}
        self.reply(json.dumps(answer).encode())

    def reply(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
