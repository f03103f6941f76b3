#!/usr/bin/env bash
# Benchmarks the Berth API server (not a timed test):
#   1. single-object write latency p50/p99 at a fixed 500 writes/s (open loop), on SQLite and on etcd
#   2. watch fan-out: 100 watchers, event delivery latency p50/p99
#   0. the store alone: concurrent creates straight into SQLite / etcd (`berth bench store`)
#   3. server RSS idle, and with N pod objects stored (BENCH_PODS, default 20000); listing them in JSON
#      and in protobuf
# Usage: scripts/bench-api.sh [path/to/berth]   (default .build/debug/berth; release is faster:
#        swift build -c release --static-swift-stdlib --product berth && scripts/bench-api.sh .build/release/berth)
# Everything listens on 127.0.0.1; child processes are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${1:-.build/debug/berth}
PODS=${BENCH_PODS:-20000}
RATE=${BENCH_RATE:-500}
SECS=${BENCH_SECONDS:-10}
WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

start_server() { # $1 name, rest: extra args; sets SERVER_PID PORT DIR
  DIR=$WORK/$1; PORT=$(free_port); mkdir -p "$DIR"
  "$BERTH" server --data-dir "$DIR" --listen 127.0.0.1:$PORT --log-level error --disable-agent "${@:2}" > "$DIR/out" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  for _ in $(seq 200); do grep -q '^ready' "$DIR/out" 2>/dev/null && return 0; sleep 0.05; done
  echo "server did not start"; cat "$DIR/out"; exit 1
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$1/status; }

cat > "$WORK/bench.py" <<'PY'
import http.client, json, os, ssl, sys, threading, time, statistics
mode, url, token, ca = sys.argv[1:5]
host, port = url.replace("https://", "").split(":")
ctx = ssl.create_default_context(cafile=ca)
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def conn(): return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000

if mode == "writes":
    # Optional: a collection path and apiVersion/kind to write (a custom resource) instead of ConfigMaps.
    rate, secs = float(sys.argv[5]), float(sys.argv[6])
    path = sys.argv[7] if len(sys.argv) > 7 else "/api/v1/namespaces/default/configmaps"
    typemeta = {"apiVersion": sys.argv[8], "kind": sys.argv[9]} if len(sys.argv) > 9 else {}
    prefix = os.environ.get("BENCH_NAME_PREFIX", "w")
    threads, lat, lock = 16, [], threading.Lock()
    start = time.monotonic() + 0.5
    total = int(rate * secs)
    def worker(t):
        c = conn()
        for i in range(t, total, threads):
            due = start + i / rate
            d = due - time.monotonic()
            if d > 0: time.sleep(d)
            body = json.dumps({**typemeta, "metadata": {"name": f"{prefix}-{i}"}, "data": {"k": "v" * 100}})
            t0 = time.monotonic()
            c.request("POST", path, body, H)
            r = c.getresponse(); r.read()
            # latency measured from the scheduled send time (includes any queueing: open loop)
            with lock: lat.append(time.monotonic() - min(t0, max(due, t0 - 1)))
            if r.status != 201: print("status", r.status, file=sys.stderr)
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    elapsed = time.monotonic() - start
    print(f"writes={len(lat)} achieved={len(lat)/elapsed:.0f}/s p50={pct(lat,.5):.2f}ms p99={pct(lat,.99):.2f}ms max={max(lat)*1000:.1f}ms")

elif mode == "fanout":
    watchers, events = 100, 200
    lat, lock, ready = [], threading.Lock(), threading.Barrier(101)
    c = conn(); c.request("GET", "/api/v1/namespaces/default/configmaps?limit=1", headers=H); rv = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]
    def watcher():
        c = conn()
        c.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=60", headers=H)
        r = c.getresponse(); ready.wait(); n = 0; buf = b""
        while n < events:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk: break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                ev = json.loads(line); now = time.time()
                if ev["object"].get("metadata", {}).get("name", "").startswith("fan-"):
                    with lock: lat.append(now - float(ev["object"]["data"]["t"])); n += 1
    ts = [threading.Thread(target=watcher) for _ in range(watchers)]
    [t.start() for t in ts]; ready.wait()
    w = conn()
    for i in range(events):
        w.request("POST", "/api/v1/namespaces/default/configmaps", json.dumps({"metadata": {"name": f"fan-{i}"}, "data": {"t": repr(time.time())}}), H)
        w.getresponse().read(); time.sleep(0.01)
    [t.join(timeout=60) for t in ts]
    print(f"watchers={watchers} deliveries={len(lat)} p50={pct(lat,.5):.2f}ms p99={pct(lat,.99):.2f}ms")

elif mode == "pods":
    n = int(sys.argv[5]); threads = 16
    def worker(t):
        c = conn()
        for i in range(t, n, threads):
            pod = {"metadata": {"name": f"p-{i}", "labels": {"app": "bench", "shard": str(i % 10)}},
                   "spec": {"nodeName": f"node-{i % 100}", "containers": [{"name": "c", "image": "registry.local/app:1.0", "ports": [{"containerPort": 8080}]}]}}
            c.request("POST", "/api/v1/namespaces/default/pods", json.dumps(pod), H); r = c.getresponse(); r.read()
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(f"created={n} pods in {time.monotonic()-t0:.1f}s ({n/(time.monotonic()-t0):.0f}/s)")
PY

bench_store() { # $1 = name, rest = server args
  # Two static tokens: the admin's (system:masters, never asks RBAC) and a user's whose writes RBAC
  # authorizes through a RoleBinding, the path every non-admin request takes.
  mkdir -p "$WORK/$1"; local user_token; user_token=$(python3 -c 'import secrets;print(secrets.token_hex(32))')
  printf '%s,admin,admin,"system:masters"\n%s,bench-writer,bench-writer,"bench"\n' \
    "$(python3 -c 'import secrets;print(secrets.token_hex(32))')" "$user_token" > "$WORK/$1/tokens.csv"
  chmod 600 "$WORK/$1/tokens.csv"
  start_server "$@"
  local token; token=$(head -1 "$DIR/tokens.csv" | cut -d, -f1)
  echo "== $1: idle RSS $(rss_mb $SERVER_PID) MB"
  echo -n "== $1: write latency at ${RATE}/s for ${SECS}s (admin): "
  BENCH_NAME_PREFIX=admin python3 "$WORK/bench.py" writes https://127.0.0.1:$PORT "$token" "$DIR/pki/ca.crt" "$RATE" "$SECS"
  local api="https://127.0.0.1:$PORT/apis/rbac.authorization.k8s.io/v1/namespaces/default"
  curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -o /dev/null "$api/roles" \
    -d '{"metadata":{"name":"configmap-writer"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["create","get","list"]}]}'
  curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -o /dev/null "$api/rolebindings" \
    -d '{"metadata":{"name":"bench-writes"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"configmap-writer"},"subjects":[{"kind":"Group","name":"bench"}]}'
  echo -n "== $1: write latency at ${RATE}/s for ${SECS}s (a user RBAC authorizes): "
  BENCH_NAME_PREFIX=user python3 "$WORK/bench.py" writes https://127.0.0.1:$PORT "$user_token" "$DIR/pki/ca.crt" "$RATE" "$SECS"
  if [ "$1" = sqlite ]; then
    # Custom resources at the same rate: a definition whose schema checks every write (issue 16).
    curl -s --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -o /dev/null \
      -X POST "https://127.0.0.1:$PORT/apis/apiextensions.k8s.io/v1/customresourcedefinitions" --data-binary \
      '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.bench.example.com"},"spec":{"group":"bench.example.com","scope":"Namespaced","names":{"plural":"widgets","kind":"Widget"},"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"data":{"type":"object","additionalProperties":{"type":"string","maxLength":1000}}}}}}]}}'
    for _ in $(seq 100); do
      curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -o /dev/null \
        "https://127.0.0.1:$PORT/apis/bench.example.com/v1/widgets" && break; sleep 0.05
    done
    echo -n "== $1: custom resource write latency at ${RATE}/s for ${SECS}s: "
    python3 "$WORK/bench.py" writes https://127.0.0.1:$PORT "$token" "$DIR/pki/ca.crt" "$RATE" "$SECS" \
      /apis/bench.example.com/v1/namespaces/default/widgets bench.example.com/v1 Widget
    # Admission: a ValidatingAdmissionPolicy (CEL, in the server) bound to every ConfigMap write.
    local admission="https://127.0.0.1:$PORT/apis/admissionregistration.k8s.io/v1"
    curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -o /dev/null \
      -X POST "$admission/validatingadmissionpolicies" --data-binary \
      '{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingAdmissionPolicy","metadata":{"name":"bench.example.com"},"spec":{"matchConstraints":{"resourceRules":[{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE","UPDATE"],"resources":["configmaps"]}]},"validations":[{"expression":"object.metadata.name.size() < 64 && !has(object.binaryData)"}]}}'
    curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -o /dev/null \
      -X POST "$admission/validatingadmissionpolicybindings" --data-binary \
      '{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingAdmissionPolicyBinding","metadata":{"name":"bench"},"spec":{"policyName":"bench.example.com","validationActions":["Deny"]}}'
    echo -n "== $1: write latency at ${RATE}/s for ${SECS}s (a user, with an admission policy): "
    BENCH_NAME_PREFIX=policy python3 "$WORK/bench.py" writes https://127.0.0.1:$PORT "$user_token" "$DIR/pki/ca.crt" "$RATE" "$SECS"
  fi
  echo -n "== $1: watch fan-out: "
  python3 "$WORK/bench.py" fanout https://127.0.0.1:$PORT "$token" "$DIR/pki/ca.crt"
  echo "== $1: RSS after writes + fan-out $(rss_mb $SERVER_PID) MB"
  kill -9 $SERVER_PID
}

echo "== store alone (no API server): $("$BERTH" bench store --datastore sqlite --data-dir "$WORK/store-bench")"
bench_store sqlite
if command -v etcd >/dev/null; then
  EDIR=$WORK/etcd; CPORT=$(free_port); PPORT=$(free_port)
  etcd --name b --data-dir "$EDIR" --listen-client-urls http://127.0.0.1:$CPORT --advertise-client-urls http://127.0.0.1:$CPORT \
       --listen-peer-urls http://127.0.0.1:$PPORT --initial-advertise-peer-urls http://127.0.0.1:$PPORT \
       --initial-cluster b=http://127.0.0.1:$PPORT --log-level error --logger zap > /dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -s http://127.0.0.1:$CPORT/health | grep -q true && break; sleep 0.1; done
  echo "== store alone (no API server): $("$BERTH" bench store --datastore etcd --etcd-endpoints http://127.0.0.1:$CPORT)"
  bench_store etcd --datastore etcd --etcd-endpoints http://127.0.0.1:$CPORT
fi

start_server pods
token=$(cut -d, -f1 "$DIR/tokens.csv")
echo "== pods: idle RSS $(rss_mb $SERVER_PID) MB"
echo -n "== pods: "; python3 "$WORK/bench.py" pods https://127.0.0.1:$PORT "$token" "$DIR/pki/ca.crt" "$PODS"
echo "== pods: RSS with $PODS pods stored $(rss_mb $SERVER_PID) MB; database $(du -sh "$DIR/state.db" | cut -f1)"
t0=$(date +%s.%N)
curl -s --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -o /dev/null "https://127.0.0.1:$PORT/api/v1/pods"
echo "== pods: list all $PODS pods took $(echo "$(date +%s.%N) - $t0" | bc) s; RSS after $(rss_mb $SERVER_PID) MB"
# The same list as client-go's typed clients ask for it (kube components, kubectl describe): protobuf.
for accept in application/json application/vnd.kubernetes.protobuf; do
  t0=$(date +%s.%N)
  size=$(curl -s --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" -H "Accept: $accept" \
    -o /dev/null -w '%{size_download}' "https://127.0.0.1:$PORT/api/v1/pods")
  echo "== pods: list all $PODS pods as $accept: $(echo "$(date +%s.%N) - $t0" | bc) s, $((size / 1024)) KiB"
done
