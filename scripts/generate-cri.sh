#!/usr/bin/env bash
# Generates the CRI's Swift code (messages and gRPC service stubs) from scripts/cri/runtime-v1.proto, and the
# gRPC health protocol's (scripts/cri/health-v1.proto, what grpc probes call) into
# Sources/BerthCRIProtocol/Generated: protoc from Debian's protobuf-compiler, with swift-protobuf's and
# grpc-swift-protobuf's plugins built from the package's own dependencies (same versions as the library
# code the generated files call, so the two never drift).
#
#   scripts/generate-cri.sh           regenerate in place
#   scripts/generate-cri.sh --check   fail if the committed files differ from what the generator makes (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH

check=false
[[ "${1:-}" == "--check" ]] && check=true

command -v protoc >/dev/null || { echo "generate-cri: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
for plugin in protoc-gen-swift protoc-gen-grpc-swift-2; do
    if ! log=$(swift build --product "$plugin" 2>&1); then echo "$log" >&2; exit 1; fi
done
bin=$(swift build --show-bin-path)

output=Sources/BerthCRIProtocol/Generated
target=$output
if $check; then
    target=$(mktemp -d)
    trap 'rm -rf "$target"' EXIT
fi

protoc --proto_path=scripts/cri \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
    --swift_out="$target" --swift_opt=Visibility=Public \
    --grpc-swift_out="$target" --grpc-swift_opt=Visibility=Public,Client=true,Server=true \
    runtime-v1.proto health-v1.proto

# Generated files own their layout: swift-format leaves them alone.
for file in "$target"/*.swift; do
    if ! head -1 "$file" | grep -q swift-format-ignore-file; then
        { echo "// swift-format-ignore-file"; cat "$file"; } > "$file.tmp" && mv "$file.tmp" "$file"
    fi
done

if $check; then
    if ! diff -r "$target" "$output" >/dev/null; then
        echo "generate-cri: $output is not what scripts/cri/*.proto generate; run scripts/generate-cri.sh" >&2
        diff -r "$target" "$output" | head -20 >&2
        exit 1
    fi
    echo "generate-cri: $output is current"
fi
