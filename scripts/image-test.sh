#!/usr/bin/env bash
# Runs only the image layer's tests (BerthImageTests), even while other targets' tests do not build:
# builds the target with SwiftPM, then links it with its dependencies and Swift Testing's entry point.
# `swift test --filter BerthImageTests` is the normal way; this is the fallback for a shared tree.
#   scripts/image-test.sh [--filter REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scratch=${SCRATCH:-.build-image}
swift build --scratch-path "$scratch" --target BerthImageTests 2>&1 | { grep -E "error:" -A3 || true; }
debug="$PWD/$scratch/x86_64-unknown-linux-gnu/debug"
out=$(mktemp -d /tmp/berth-image-runner.XXXXXX)
trap 'rm -rf "$out"' EXIT
cat > "$out/runner.swift" <<'SWIFT'
import Testing
#if canImport(Glibc)
import Glibc
#endif
@main struct Runner {
    static func main() async {
        let code: CInt = await Testing.__swiftPMEntryPoint(passing: nil)
        exit(code)
    }
}
SWIFT
swiftc -parse-as-library -c "$out/runner.swift" -o "$out/runner.o" -I "$debug/Modules" -module-name ImageTestRunner
find "$debug" -path '*.build/*.o' \
  | grep -vE '/(BerthAPI|BerthAPITests|BerthRuntime|BerthRuntimeTests|BerthStore|BerthStoreTests|BerthOSTests|BerthPackageTests|BerthPackageDiscoveredTests|berth|berth-runtime|berth_runtime|GRDB|[A-Za-z]*-tool|[A-Za-z]*Testing[A-Za-z]*|Hummingbird[A-Za-z0-9]*|X509|Yams|CYaml|_CertificateInternals|ServiceLifecycle|UnixSignals|ArgumentParser[A-Za-z]*|CSeccomp)\.build/' \
  | sed 's/.*/"&"/' > "$out/objects"
swiftc -lstdc++ -L "$debug" -o "$out/image-tests" -emit-executable -Xlinker -rpath="$debug" @"$out/objects" "$out/runner.o" -lm -lz -lzstd -g 2>&1 | { grep -v warning || true; } | head -30
"$out/image-tests" "$@"
