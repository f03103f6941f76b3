#!/usr/bin/env bash
# Copies release executables into a distribution folder stripped, keeping each one's symbols in
# NAME.debug beside it, linked by a .gnu_debuglink section (gdb and eu-stack find them there or under
# /usr/lib/debug/<path>). Prints each binary's size and whether it is static.
# Usage: scripts/strip-release.sh BUILD_DIR DIST_DIR NAME...
set -euo pipefail
build=$1 dist=$2; shift 2
mkdir -p "$dist"
for name in "$@"; do
  src=$build/$name
  [ -x "$src" ] || { echo "missing $src (build it first)" >&2; exit 1; }
  objcopy --only-keep-debug "$src" "$dist/$name.debug"
  objcopy --strip-all --add-gnu-debuglink="$dist/$name.debug" "$src" "$dist/$name.tmp"
  mv "$dist/$name.tmp" "$dist/$name"
  kind=$(file -b "$dist/$name" | grep -o 'statically linked\|dynamically linked' || true)
  printf '%-14s %6.1f MB stripped (%s); symbols %6.1f MB in %s\n' "$name" \
    "$(echo "$(stat -c %s "$dist/$name") / 1048576" | bc -l)" "${kind:-?}" \
    "$(echo "$(stat -c %s "$dist/$name.debug") / 1048576" | bc -l)" "$dist/$name.debug"
done
