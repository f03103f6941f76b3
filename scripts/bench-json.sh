#!/usr/bin/env bash
# Parse + serialize of API-sized JSON (a 3.4 KB pod, a 1 MB PodList) with BerthJSON, built -O on its own
# so it takes seconds rather than a release build of the package. Thread CPU time per operation.
# Usage: scripts/bench-json.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mktemp -d /tmp/berth-bench-json.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
swiftc -O -wmo -module-name BerthJSON -o "$OUT/bench-json" scripts/bench-json/main.swift Sources/BerthJSON/*.swift
"$OUT/bench-json"
