#!/usr/bin/env bash
# Builds the image layers Berth's image tests and benchmark use, from Debian packages on this machine
# (busybox-static; binaries plus the libraries `ldd` names). Writes gzip layer tars:
#   OUT/busybox/layer1.tar.gz                 one layer: static busybox and its applet links
#   OUT/big/layer{1..4}.tar.gz                ~100 MB uncompressed: libraries, binaries, python stdlib,
#                                              then a layer of whiteouts (.wh. files and an opaque dir)
# Deterministic (sorted, fixed mtimes, numeric owners) so digests repeat. Idempotent: skips if present.
set -euo pipefail
out=${1:?usage: image-build-test-images.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tarit() {  # DIR FILE.tar.gz
  tar --sort=name --mtime=@1700000000 --numeric-owner --owner=0 --group=0 --xattrs -C "$1" -cf - . | gzip -1 -n > "$2.tmp"
  mv "$2.tmp" "$2"
}
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -f "$out/busybox/layer1.tar.gz" ]; then
  mkdir -p "$out/busybox" "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp" "$work/bb/dev"
  cp /bin/busybox "$work/bb/bin/busybox"
  for a in sh ls cat echo true false sleep id mkdir rm; do ln -s busybox "$work/bb/bin/$a"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$work/bb/etc/passwd"
  chmod 1777 "$work/bb/tmp"
  tarit "$work/bb" "$out/busybox/layer1.tar.gz"
fi

if [ ! -f "$out/big/layer4.tar.gz" ]; then
  mkdir -p "$out/big"
  bins="/usr/bin/bash /usr/bin/git /usr/bin/perl /usr/bin/python3.11 /usr/bin/skopeo /usr/bin/umoci /usr/bin/docker-registry /usr/bin/tar /usr/bin/gzip /usr/bin/ls /usr/bin/cat"
  # Layer 1: the shared libraries ldd names (copied with their directory layout).
  l1="$work/l1"; mkdir -p "$l1"
  for b in $bins; do
    ldd "$b" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' 
  done | sort -u | while read -r lib; do
    real=$(readlink -f "$lib"); mkdir -p "$l1$(dirname "$lib")"; cp "$real" "$l1$lib"
  done
  mkdir -p "$l1/etc" "$l1/tmp"; echo "root:x:0:0:root:/root:/bin/bash" > "$l1/etc/passwd"; chmod 1777 "$l1/tmp"
  ln -s usr/bin "$l1/bin"
  tarit "$l1" "$out/big/layer1.tar.gz"
  # Layer 2: the binaries, a hard link and a symlink.
  l2="$work/l2"; mkdir -p "$l2/usr/bin"
  for b in $bins; do cp "$b" "$l2/usr/bin/"; done
  ln "$l2/usr/bin/perl" "$l2/usr/bin/perl-hardlink"
  ln -s python3.11 "$l2/usr/bin/python3"
  tarit "$l2" "$out/big/layer2.tar.gz"
  # Layer 3: python's standard library (data, many small files).
  l3="$work/l3"; mkdir -p "$l3/usr/lib"
  cp -a /usr/lib/python3.11 "$l3/usr/lib/"
  find "$l3" -name __pycache__ -prune -exec rm -rf {} +
  dd if=/dev/urandom of="$l3/usr/lib/blob.bin" bs=1M count=16 status=none
  tarit "$l3" "$out/big/layer3.tar.gz"
  # Layer 4: whiteouts: a deleted file, a deleted directory, an opaque directory with one new file.
  l4="$work/l4"; mkdir -p "$l4/usr/lib/python3.11/email" "$l4/usr/bin"
  : > "$l4/usr/lib/python3.11/.wh.test"
  : > "$l4/usr/bin/.wh.cat"
  : > "$l4/usr/lib/python3.11/email/.wh..wh..opq"
  echo "replaced by layer 4" > "$l4/usr/lib/python3.11/email/README"
  echo "hello from layer 4" > "$l4/etc-motd"
  tarit "$l4" "$out/big/layer4.tar.gz"
fi
ls -la "$out"/busybox "$out"/big
