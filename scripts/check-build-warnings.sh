#!/usr/bin/env bash
# Fails when a build log shows a compiler warning in the project's own code (Sources/, Tests/,
# Package.swift) or SwiftPM's warning about files it does not know what to do with. Dependencies'
# warnings are theirs. CI builds from a fresh clone, so its log holds every warning there is.
#   scripts/check-build-warnings.sh BUILD_LOG
set -euo pipefail
log=${1:?usage: $0 BUILD_LOG}
root=$(cd "$(dirname "$0")/.." && pwd)
found=$(grep -E "^($root/)?(Sources|Tests)/[^:]+:[0-9]+:[0-9]+: warning:|^($root/)?Package\.swift:[0-9]+:[0-9]+: warning:|warning: '$(basename "$root")': " "$log" | sort -u || true)
if [ -n "$found" ]; then
  echo "warnings in the project's own code (fix them; CI keeps the build warning-free):"
  echo "$found"
  exit 1
fi
echo "no warnings in the project's own code"
