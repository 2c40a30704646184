#!/usr/bin/env bash
# Checks the Debian packages nnlua needs to build and test; installs the
# missing ones when run as root, otherwise prints the apt-get line and fails.
set -u
pkgs=(gcc make pkg-config liblua5.4-dev lua5.4 lua-busted libopenblas-dev
      zlib1g-dev libpng-dev libturbojpeg0-dev dataset-fashion-mnist)
[ -n "${NNLUA_EXTRA_PKGS:-}" ] && pkgs+=($NNLUA_EXTRA_PKGS)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null || {
    echo "apt-get install failed for: ${missing[*]}" >&2; exit 1; }
else
  echo "missing Debian packages; run as root:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
