#!/usr/bin/env bash
# Installs the Debian 12 packages only the tests need, if missing: the
# gateway's end-to-end test (adapters/gateway/tests/test_gateway.py) runs
# with /usr/bin/python3 and Debian's requests, jsonschema and yaml modules,
# and makes a TLS certificate with openssl; the console's tests
# (tests/console/) drive a real Prometheus (and its promtool) and Chromium
# against a real onced; the gateway's benchmark (adapters/gateway/bench/)
# drives it with wrk. The demo does not need them. Uses sudo when not run
# as root (deploy/apt-install-missing.sh). Called by .ci/run after
# install-deps.sh.
set -euo pipefail

packages=(python3 python3-requests python3-jsonschema python3-yaml openssl
  prometheus chromium wrk)

exec "$(dirname "${BASH_SOURCE[0]}")/apt-install-missing.sh" "${packages[@]}"
