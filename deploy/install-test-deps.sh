#!/usr/bin/env bash
# Installs the Debian 12 packages only the tests need, if missing: the
# gateway's end-to-end test (adapters/gateway/tests/test_gateway.py) runs
# with /usr/bin/python3 and Debian's requests, jsonschema and yaml modules,
# and makes a TLS certificate with openssl. The demo does not need them.
# Uses sudo when not run as root. Called by .ci/run after install-deps.sh.
set -euo pipefail

packages=(python3 python3-requests python3-jsonschema python3-yaml openssl)

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
