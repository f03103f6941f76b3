#!/usr/bin/env bash
# Makes an OCI bundle from Debian's busybox-static: rootfs with busybox and its applet links, and
# config.json from `berth-runtime spec` with no terminal and the given command (default: sh).
# Usage: scripts/make-bundle.sh DIR [RUNTIME_BINARY] [-- command args...]
set -euo pipefail
dir=$1; shift
runtime=${1:-.build/debug/berth-runtime}; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$dir"; mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
runtime=$(realpath "$runtime")
(cd "$dir" && "$runtime" spec)
args='["sh"]'
if [ $# -gt 0 ]; then args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .); fi
jq --argjson args "$args" '.process.terminal = false | .process.args = $args' "$dir/config.json" > "$dir/config.json.new"
mv "$dir/config.json.new" "$dir/config.json"
