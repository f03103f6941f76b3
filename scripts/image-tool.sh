#!/usr/bin/env bash
# Builds `berth-image`: the image verbs of the berth CLI with the BerthImage library compiled -O
# (whole-module), linked against the debug build of its dependencies in .build-image. For benchmarks
# when a full release build of the package is too slow or another layer's code does not build.
#   scripts/image-tool.sh OUT   → OUT/berth-image
set -euo pipefail
out=$(mkdir -p "${1:?usage: image-tool.sh OUTDIR}" && cd "$1" && pwd)
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scratch=${SCRATCH:-.build-image}
swift build --scratch-path "$scratch" --target BerthImage 2>&1 | { grep -E "error:" -A3 || true; }
swift build --scratch-path "$scratch" --target ArgumentParser 2>&1 | { grep -E "error:" -A3 || true; }
debug="$PWD/$scratch/x86_64-unknown-linux-gnu/debug"
# The include and module-map flags SwiftPM used for BerthImage.
mapfile -t flags < <(python3 - "$scratch/debug.yaml" <<'PY'
import json, sys
y = open(sys.argv[1]).read()
i = y.find("description: \"Compiling Swift Module 'BerthImage'")
j = y.find("args: ", i)
args = json.loads(y[j + 6:y.find("\n", j)])
k = 0
while k < len(args):
    if args[k] in ("-Xcc", "-I"):
        print(args[k]); print(args[k + 1]); k += 2
    else:
        k += 1
PY
)
mkdir -p "$out/mod"
swiftc -O -wmo -parse-as-library -swift-version 6 -module-name BerthImage -emit-module -emit-module-path "$out/mod/BerthImage.swiftmodule" \
  -c Sources/BerthImage/*.swift -o "$out/BerthImage.o" "${flags[@]}"
cat > "$out/main.swift" <<'SWIFT'
import ArgumentParser
@main struct BerthImageTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "berth-image", abstract: "Berth's image verbs.",
                                                    subcommands: imageVerbs)
}
SWIFT
swiftc -O -wmo -parse-as-library -swift-version 6 -module-name berth_image -c Sources/berth/Image*.swift "$out/main.swift" \
  -o "$out/cli.o" -I "$out/mod" "${flags[@]}"
find "$debug" -path '*.build/*.o' \
  | grep -vE '/(BerthImage|BerthImageTests|BerthAPI|BerthAPITests|BerthRuntime|BerthRuntimeTests|BerthStore|BerthStoreTests|BerthOSTests|BerthPackageTests|BerthPackageDiscoveredTests|berth|berth_runtime|GRDB|[A-Za-z]*-tool|[A-Za-z]*Testing[A-Za-z]*|Hummingbird[A-Za-z0-9]*|X509|Yams|CYaml|_CertificateInternals|ServiceLifecycle|UnixSignals|CSeccomp)\.build/' \
  | sed 's/.*/"&"/' > "$out/objects"
swiftc -o "$out/berth-image" -emit-executable @"$out/objects" "$out/BerthImage.o" "$out/cli.o" -lstdc++ -lm -lz -lzstd 2>&1 | { grep -v warning || true; }
echo "$out/berth-image"
