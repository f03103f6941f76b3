#!/usr/bin/env bash
# `make bench`: every benchmark, Berth beside its peers, in one run. Prints markdown tables and ratios.
# Runs without ../shared. Root is needed (containers, mounts, cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
swift build -c release --static-swift-stdlib --product berth-runtime
swift build -c release --static-swift-stdlib --product berth
swift build -c release --static-swift-stdlib --product berth-monitor
BERTH_RUNTIME=.build/release/berth-runtime python3 scripts/bench-runtime.py
if [ -x .build/release/berth ]; then BERTH=.build/release/berth scripts/bench-image.sh; else scripts/bench-image.sh; fi
BERTH=.build/release/berth python3 scripts/bench-engine.py
BERTH=.build/release/berth python3 scripts/bench-docker-api.py
if [ -x .build/release/berth ]; then scripts/bench-api.sh .build/release/berth; else scripts/bench-api.sh; fi
if [ -x .build/release/berth ]; then scripts/bench-control.sh .build/release/berth; else scripts/bench-control.sh; fi
BERTH=.build/release/berth python3 scripts/bench-cri.py
BERTH=.build/release/berth python3 scripts/bench-pods.py
BERTH=.build/release/berth scripts/bench-network.sh
echo; echo '### Cluster network throughput (scripts/bench-cluster.sh)'; scripts/bench-cluster.sh
