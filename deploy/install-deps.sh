#!/usr/bin/env bash
# Installs the Debian 12 packages once needs to build and test, if missing.
# Uses sudo when not run as root.
set -euo pipefail

packages=(build-essential meson ninja-build pkg-config libzmq3-dev
  libsodium-dev nettle-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev libinih-dev
  libcmocka-dev libmicrohttpd-dev libjansson-dev python3)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
