#!/usr/bin/env bash
# Size and decode/encode time of a pod with the generated model, optimised (-O, whole module): BerthJSON,
# BerthKube and bench.swift compiled as one module, so nothing else in the package has to build.
#   scripts/kube-model/bench.sh [pod.json]    (default: the RoundTripTests sample pod)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pod=${1:-}
if [ -z "$pod" ]; then
    pod=$out/pod.json
    python3 -c 'import re,sys; s=open("Tests/BerthKubeTests/Samples.swift").read(); print(re.search(r"static let pod = #\"\"\"\n(.*?)\n    \"\"\"#", s, re.S).group(1))' > "$pod"
fi
mkdir "$out/src"
cp scripts/kube-model/bench.swift "$out/src/main.swift"
for f in Sources/BerthJSON/*.swift $(find Sources/BerthKube -name '*.swift'); do
    sed '/^import BerthJSON$/d' "$f" > "$out/src/$(basename "$f")"
done
start=$(date +%s.%N)
swiftc -O -wmo -module-name KubeBench "$out"/src/*.swift -o "$out/bench"
echo "release compile (BerthJSON + BerthKube, -O -wmo): $(echo "$(date +%s.%N) - $start" | bc) s"
"$out/bench" "$pod"
