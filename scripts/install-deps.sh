#!/usr/bin/env bash
# Installs the Debian packages every layer's tests need. Each layer lists its own in scripts/deps/*.txt
# (one package per line, # comments), so the layers never edit the same file.
set -euo pipefail
cd "$(dirname "$0")"
packages=$(cat deps/*.txt | sed 's/#.*//' | tr -s ' \n' ' ')
missing=()
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
