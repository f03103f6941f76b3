#!/usr/bin/env bash
# Cluster networking throughput (issue 13): a server and three nodes on this machine, each node a
# network namespace with its own agent and engine (the test suite's ClusterTopology), iperf3 between
# the nodes themselves and between pods on them — over a shared LAN (host-gw routes) and through a
# router namespace (VXLAN) — and through a Service's ClusterIP. Targets: pod ↔ pod across nodes ≥ 90 %
# of node ↔ node, ClusterIP ≥ 90 % of the pod IP. Then the three-node test's node failure: a node's
# agent killed and its link cut, until its pod runs elsewhere and has left the Endpoints (target ≤ 20 s;
# Swarm ≈ 15 s, Nomad ≈ 20 s, Kubernetes' defaults ≈ 5 min). Needs root and iperf3 (scripts/deps/cluster.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests >/dev/null
BERTH_BENCH_CLUSTER=1 .build/x86_64-unknown-linux-gnu/debug/BerthPackageTests.xctest --no-parallel \
  --filter "ClusterNetworkBenchmark|MultiNodeClusterTests" --testing-library swift-testing 2>&1 \
  | grep -E '^\||node failure|✘' || true
# The ceiling of the VXLAN row: the kernel's VXLAN over a bare veth pair, no Berth.
scripts/bench-vxlan-baseline.sh
