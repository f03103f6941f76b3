#!/usr/bin/env bash
# The kernel's own VXLAN cost on this machine, without Berth: two network namespaces joined by a veth
# pair, iperf3 over the pair and over a VXLAN device on it (the same settings as the pod network's:
# nolearning, a static FDB entry), medians of five 5 s runs as in scripts/bench-cluster.sh. The ratio is
# the ceiling for pod → pod over VXLAN there. Needs root and iperf3.
set -euo pipefail
a=berth-vxbench-a b=berth-vxbench-b
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$a" && ip netns add "$b"
ip link add vxbench-a type veth peer name vxbench-b
ip link set vxbench-a netns "$a" && ip link set vxbench-b netns "$b"
ip -n "$a" addr add 10.251.0.1/24 dev vxbench-a && ip -n "$b" addr add 10.251.0.2/24 dev vxbench-b
for side in "$a:vxbench-a:10.251.0.1:10.251.0.2:10.252.0.1" "$b:vxbench-b:10.251.0.2:10.251.0.1:10.252.0.2"; do
  IFS=: read -r ns link local peer inner <<<"$side"
  ip -n "$ns" link set lo up && ip -n "$ns" link set "$link" up
  ip -n "$ns" link add vx0 type vxlan id 42 local "$local" dev "$link" dstport 8472 nolearning
  ip -n "$ns" addr add "$inner/24" dev vx0 && ip -n "$ns" link set vx0 up
  ip netns exec "$ns" bridge fdb append 00:00:00:00:00:00 dev vx0 dst "$peer"
done
ip netns exec "$b" iperf3 -s -D -p 5298 --pidfile /tmp/berth-vxbench.pid >/dev/null
trap 'kill "$(cat /tmp/berth-vxbench.pid)" 2>/dev/null || true; rm -f /tmp/berth-vxbench.pid; cleanup' EXIT
sleep 0.3
gbits() {
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    out=$(ip netns exec "$a" iperf3 -c "$1" -p 5298 -t 5 -J 2>/dev/null || true)
    if ! grep -q '"error"' <<<"$out" && [ -n "$out" ]; then break; fi
    sleep 0.2
  done
  python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' <<<"$out"
}
plain=() vxlan=()
for _ in 1 2 3 4 5; do plain+=("$(gbits 10.251.0.2)"); vxlan+=("$(gbits 10.252.0.2)"); done
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
p=$(median "${plain[@]}") v=$(median "${vxlan[@]}")
echo "| kernel alone: veth between two namespaces | $p Gbit/s | |"
echo "| kernel alone: VXLAN over that veth | $v Gbit/s | $(python3 -c "print(round($v / $p * 100))") % of the veth |"
