#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet, and does
# nothing when all are. Uses sudo when not run as root.
#
# Usage: apt-install-missing.sh PACKAGE...
#
# The one way install-deps.sh (what once needs to build and test) and
# install-test-deps.sh (what only the tests need) install their package
# lists, so that both ask dpkg and apt the same way. It stands alone: a
# fresh Debian needs nothing but bash, dpkg and apt to run it.
set -euo pipefail

missing=()
for p in "$@"; do
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
