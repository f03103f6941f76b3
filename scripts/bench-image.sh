#!/usr/bin/env bash
# Image benchmark: pull + unpack of the ~120 MB four-layer test image from a local docker-registry,
# side by side with skopeo copy (to an OCI layout) + umoci unpack, and podman pull when it runs here;
# then unpack of one large gzip layer against `tar xzf` of the same file.
#
# Every engine's store is on the same tmpfs this script mounts (the root ext4 has no journal and makes
# re-unpacking after rm -rf slow), so the comparison is about the engines, not the disks.
# Needs root (mount, umoci unpack, overlay whiteouts). Runs without ../shared.
#   BERTH=path/to/berth (release build) RUNS=3 scripts/bench-image.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BERTH=${BERTH:-}
if [ -z "$BERTH" ]; then
  for c in "$repo/.build/release/berth" "$repo/.build-image/release/berth"; do [ -x "$c" ] && BERTH=$c && break; done
fi
if [ ! -x "${BERTH:-}" ]; then  # no release build: the image verbs alone, BerthImage compiled -O
  BERTH=$("$here/image-tool.sh" /tmp/berth-image-tool | tail -1)
fi
echo "berth binary: $BERTH"
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/berth-bench-image.XXXXXX)
mnt="$work/tmpfs"
mkdir -p "$mnt"
mount -t tmpfs -o size=6g berth-bench "$mnt"
cleanup() {
  "$here/image-registry.sh" stop "$work/registry" || true
  umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

images="$work/images"
"$here/image-build-test-images.sh" "$images" >/dev/null
port=$("$here/image-registry.sh" start "$work/registry")
ref="127.0.0.1:$port/bench/big:1"
BERTH_ROOT="$work/stage" "$BERTH" image import "$images"/big/layer{1,2,3,4}.tar.gz -t "$ref" >/dev/null
BERTH_ROOT="$work/stage" "$BERTH" push "$ref" >/dev/null
compressed=$(cat "$images"/big/layer*.tar.gz | wc -c)
uncompressed=$(for f in "$images"/big/layer*.tar.gz; do gzip -dc "$f"; done | wc -c)
echo "image: $ref  4 layers, $((compressed / 1000000)) MB compressed, $((uncompressed / 1000000)) MB uncompressed"
echo "store: tmpfs at $mnt; $RUNS runs each, best and median shown; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
declare -A best median
measure() {  # NAME SETUP-CMD RUN-CMD
  local name=$1 setup=$2 cmd=$3 times=()
  for _ in $(seq "$RUNS"); do
    sync; eval "$setup"
    local t0 t1; t0=$(now); eval "$cmd" >/dev/null 2>"$work/err" || { echo "$name failed: $(tail -3 "$work/err")"; return 1; }; t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  local sorted; sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  best[$name]=$(echo "$sorted" | head -1)
  median[$name]=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
}
report() {  # NAME BYTES
  printf '  %-34s best %6.2fs  median %6.2fs  %7.1f MB/s\n' "$1" "${best[$1]}" "${median[$1]}" \
    "$(echo "$2 / ${best[$1]} / 1000000" | bc -l)"
}

echo
echo "== pull + unpack (registry on 127.0.0.1 → ready root filesystem) =="
measure berth "rm -rf $mnt/berth" "BERTH_ROOT=$mnt/berth $BERTH pull -q $ref"
measure skopeo+umoci "rm -rf $mnt/oci $mnt/bundle" \
  "skopeo copy -q --src-tls-verify=false docker://$ref oci:$mnt/oci:big && umoci unpack --image $mnt/oci:big $mnt/bundle"
measure "skopeo copy (download only)" "rm -rf $mnt/oci2" "skopeo copy -q --src-tls-verify=false docker://$ref oci:$mnt/oci2:big"
have_podman=0
if command -v podman >/dev/null && podman --version >/dev/null 2>&1; then
  if measure podman "rm -rf $mnt/podman" "podman --root $mnt/podman --runroot $mnt/podman-run pull -q --tls-verify=false $ref"; then have_podman=1; fi
fi
report berth "$uncompressed"
report skopeo+umoci "$uncompressed"
report "skopeo copy (download only)" "$uncompressed"
[ $have_podman = 1 ] && report podman "$uncompressed"
printf '  ratio skopeo+umoci / berth: %.2fx (target >= 1.5x)\n' "$(echo "${best[skopeo+umoci]} / ${best[berth]}" | bc -l)"
[ $have_podman = 1 ] && printf '  ratio podman / berth: %.2fx\n' "$(echo "${best[podman]} / ${best[berth]}" | bc -l)"
echo "  (podman: $(command -v podman >/dev/null && echo "did not run here" || echo "not installed"))" | grep -v "did not run" || true

echo
echo "== unpack of one large gzip layer =="
big="$work/large-layer.tar.gz"
tar --sort=name -C / -cf - usr/lib/x86_64-linux-gnu usr/lib/python3.11 usr/share/perl 2>/dev/null | gzip -1 > "$big" || true
layer_bytes=$(gzip -dc "$big" | wc -c)
cp "$big" "$mnt/layer.tar.gz"
echo "layer: $(( $(stat -c %s "$big") / 1000000 )) MB gzip, $((layer_bytes / 1000000)) MB tar"
measure "tar xzf" "rm -rf $mnt/tar && mkdir $mnt/tar" "tar -xzf $mnt/layer.tar.gz -C $mnt/tar"
measure "berth image unpack" "rm -rf $mnt/bu" "$BERTH image unpack $mnt/layer.tar.gz $mnt/bu"
report "tar xzf" "$layer_bytes"
report "berth image unpack" "$layer_bytes"
printf '  ratio berth / tar xzf: %.2fx (target <= 1.3x)\n' "$(echo "${best[berth image unpack]} / ${best[tar xzf]}" | bc -l)"
