#!/usr/bin/env bash
# Benchmarks the scheduler, controllers and hollow nodes (not timed tests). Hollow nodes are the node
# agent over a fake CRI runtime in the server's process: parts 2 and 3 drive the agent's pod sync.
#   1. scheduling throughput: 5,000 hollow nodes, 50,000 pending pods, end to end through the store
#      (`berth bench scheduler`, decisions checked); compared with kube-scheduler's scheduler_perf floor
#      for the same case (810 pods/s, the figure upstream's CI gates on).
#   2. a 1,000-replica Deployment from `kubectl apply` to all pods Running on 1,000 hollow nodes.
#   3. one server holding 10,000 hollow nodes and 150,000 then 300,000 pods (one Deployment, scaled):
#      RSS, KB per pod above the idle server, and API latency (GET one pod, a 500-item list page, GET
#      a node), measured with curl.
# Usage: scripts/bench-control.sh [path/to/berth]  (default .build/release/berth, else .build/debug/berth)
# Parts: BENCH_PARTS (default 123). Sizes: BENCH_SCHED_NODES, BENCH_SCHED_PODS, BENCH_DEPLOY_REPLICAS, BENCH_BIG_NODES, BENCH_BIG_PODS.
# Everything listens on 127.0.0.1; child processes are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${1:-}
if [ -z "$BERTH" ]; then if [ -x .build/release/berth ]; then BERTH=.build/release/berth; else BERTH=.build/debug/berth; fi; fi
SN=${BENCH_SCHED_NODES:-5000}; SP=${BENCH_SCHED_PODS:-50000}
DR=${BENCH_DEPLOY_REPLICAS:-1000}
BN=${BENCH_BIG_NODES:-10000}; BP=${BENCH_BIG_PODS:-300000}
WORK=$(mktemp -d /tmp/berth-bench-cp.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now() { date +%s.%N; }
start_server() { # $1 name, rest: extra args; sets SERVER_PID PORT DIR
  DIR=$WORK/$1; PORT=$(free_port); mkdir -p "$DIR"
  "$BERTH" server --data-dir "$DIR" --listen 127.0.0.1:$PORT --log-level error --disable-agent "${@:2}" > "$DIR/out" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  for _ in $(seq 600); do grep -q '^ready' "$DIR/out" 2>/dev/null && return 0; sleep 0.1; done
  echo "server did not start"; cat "$DIR/out"; exit 1
}
k() { kubectl --kubeconfig "$DIR/admin.kubeconfig" "$@"; }
wait_nodes() { # $1 count
  for _ in $(seq 3000); do
    n=$(k get nodes --no-headers 2>/dev/null | grep -c ' Ready ' || true)
    [ "$n" -ge "$1" ] && return 0; sleep 0.2
  done; echo "only $n nodes ready"; exit 1
}
deployment() { # $1 name $2 replicas [$3 a line of extra pod spec, indented six spaces]
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers: [{name: c, image: registry.local/pause:1, resources: {requests: {cpu: 10m, memory: 16Mi}}}]
${3:-}
YAML
}
PARTS=${BENCH_PARTS:-123}
echo "berth: $BERTH"

if [[ $PARTS == *1* ]]; then
echo "## 1. scheduling throughput ($SN hollow nodes, $SP pods)"
OUT=$("$BERTH" bench scheduler --nodes "$SN" --pods "$SP" --data-dir "$WORK/sched")
echo "$OUT"
TP=$(echo "$OUT" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p')
echo "| scheduler | pods/s | vs kube-scheduler floor (810/s) |"
echo "|---|---|---|"
echo "| berth | $TP | $(python3 -c "print(f'{$TP/810:.1f}x')") |"
fi

if [[ $PARTS == *2* ]]; then
echo "## 2. $DR-replica Deployment on $DR hollow nodes, kubectl apply → all Running"
start_server deploy --hollow-nodes "$DR" --hollow-heartbeat-seconds 10 --node-monitor-grace-seconds 60
wait_nodes "$DR"
T0=$(now)
deployment big "$DR" | k apply -f - > /dev/null
k rollout status deploy/big --timeout=600s > /dev/null
T1=$(now)
RUNNING=$(k get pods --no-headers | grep -c ' Running ' || true)
echo "| replicas | running | seconds | RSS MB |"
echo "|---|---|---|---|"
echo "| $DR | $RUNNING | $(python3 -c "print(f'{$T1-$T0:.2f}')") | $(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$SERVER_PID/status) |"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
fi

[[ $PARTS == *3* ]] || exit 0
HALF=$((BP / 2))
echo "## 3. $BN hollow nodes, then $HALF and $BP pods in one server"
start_server big --hollow-nodes "$BN" --hollow-heartbeat-seconds 30 --node-monitor-grace-seconds 180
wait_nodes "$BN"
IDLE=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$SERVER_PID/status)
TOKEN=$(cut -d, -f1 "$DIR/tokens.csv" | head -1)
settle() { # waits (up to 3 min) until the server uses under a third of a core over 2 s: latency is
  # measured on a settled server, not while controllers and hollow nodes still work off the rollout
  local a b
  for _ in $(seq 90); do
    a=$(awk '{print $14+$15}' /proc/$SERVER_PID/stat); sleep 2; b=$(awk '{print $14+$15}' /proc/$SERVER_PID/stat)
    [ $((b - a)) -lt 66 ] && return 0
  done
}
lat() { # $1 path → p50/p99 ms of 50 requests
  for _ in $(seq 50); do
    curl -s -o /dev/null -w '%{time_total}\n' --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT$1"
  done | sort -n | awk '{a[NR]=$1} END {m=int(NR*0.5); if (m<1) m=1; q=int(NR*0.99); if (q<1) q=NR; printf "%.1f / %.1f", a[m]*1000, a[q]*1000}'
}
echo "| nodes | pods | create→running s | RSS idle MB | RSS MB | KB per pod | GET pod p50/p99 ms | LIST 500 pods p50/p99 ms | GET node p50/p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
# The same Deployment twice: first half the pods, then scaled to all, each measured once Running.
# Its pods spread by hostname only (soft): without constraints kube-scheduler's system defaults add a
# zone term, whose counts walk every node holding the Deployment's pods for each decision (10,000 here),
# which makes this a scheduler benchmark (~20 pods/s) instead of a memory one; see README.
SPREAD="      topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: fleet}}}]"
T0=$(now)
for N in $HALF $BP; do
  deployment fleet "$N" "$SPREAD" | k apply -f - > /dev/null
  k rollout status deploy/fleet --timeout=1800s > /dev/null
  T1=$(now)
  settle
  RSS=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$SERVER_PID/status)
  POD=$(k get pods --chunk-size=1 -o name 2>/dev/null | head -1 | cut -d/ -f2 || true)
  PER=$(python3 -c "print(f'{($RSS-$IDLE)*1024/$N:.1f}')")
  echo "| $BN | $N | $(python3 -c "print(f'{$T1-$T0:.1f}')") | $IDLE | $RSS | $PER | $(lat /api/v1/namespaces/default/pods/$POD) | $(lat '/api/v1/namespaces/default/pods?limit=500') | $(lat /api/v1/nodes/hollow-00042) |"
  T0=$(now)
done
