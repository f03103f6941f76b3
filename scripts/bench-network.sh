#!/usr/bin/env bash
# Cluster networking (issue 13): the service proxy's nftables sync at 1,000 Services × 10 endpoints
# (applied for real in a network namespace of its own), and the cluster DNS's queries per second on its
# one event-loop thread — loaded by dnsperf from another process, and by the bench's own bounded load
# for latency percentiles (dnsperf 2.10 prints only the mean). kube-proxy and CoreDNS are not Debian
# packages, so no peer runs beside them here: the targets are the issue's (sync of one change well under
# a second; ≥ 50,000 qps with p99 ≤ 2 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${BERTH:-.build/release/berth}
echo "### Service proxy sync (berth bench proxy)"
"$BERTH" bench proxy --services 1000 --endpoints 10
echo
echo "### Cluster DNS (berth bench dns)"
for window in 8 32; do "$BERTH" bench dns --seconds 5 --window "$window"; done
if command -v dnsperf >/dev/null; then
  queries=$(mktemp)
  for i in $(seq 0 999); do echo "svc-$i.default.svc.cluster.local A"; done > "$queries"
  for i in $(seq 0 99); do echo "missing-$i.default.svc.cluster.local A"; done >> "$queries"
  out=$(mktemp)
  "$BERTH" bench dns --serve-seconds 12 > "$out" &
  server=$!
  for _ in $(seq 100); do grep -q ready "$out" && break; sleep 0.1; done
  port=$(awk '/ready/ {print $2}' "$out")
  echo "dnsperf (another process, 10 s, up to 100 queries in flight):"
  dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l 10 -q 100 | grep -E "Queries per second|Average Latency|Queries lost|Response codes"
  wait "$server" || true
  rm -f "$queries" "$out"
fi
