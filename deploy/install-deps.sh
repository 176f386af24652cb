#!/usr/bin/env bash
# Installs the Debian 12 packages once needs to build and test, if missing.
# Uses sudo when not run as root (deploy/apt-install-missing.sh).
set -euo pipefail

packages=(build-essential meson ninja-build pkg-config libzmq3-dev
  libsodium-dev nettle-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev libinih-dev
  libcmocka-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev python3
  python3-requests)

exec "$(dirname "${BASH_SOURCE[0]}")/apt-install-missing.sh" "${packages[@]}"
