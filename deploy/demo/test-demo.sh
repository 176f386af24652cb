#!/usr/bin/env bash
# The test suite's run of the enterprise start-up demo (test demo-e2e):
# enterprise-startup.sh on a small count, in the build the suite made,
# must finish, and its last line must be the broker's count of copies
# avoided: COUNT licences to three requesters (tax through once-gateway,
# the bank through once-spool, public security through libonce) and the
# bank's request of the revoked licence.
#
#   test-demo.sh BUILD_DIR [COUNT]
#
# Skipped (77) without Debian's python3-requests, which the tax bureau's
# system needs (deploy/install-deps.sh installs it).
set -euo pipefail

build=$1
count=${2:-20}
if ! /usr/bin/python3 -c 'import requests' 2>/dev/null; then
  echo "skipped: no python3-requests; run deploy/install-deps.sh"
  exit 77
fi
out=$(bash "$(dirname "$0")/enterprise-startup.sh" --count "$count" \
  --build-dir "$build" --no-build 2>&1) || {
  printf '%s\n' "$out"
  echo "test-demo: the demo failed" >&2
  exit 1
}
printf '%s\n' "$out"
last=$(printf '%s\n' "$out" | tail -n 1)
if [ "$last" != "copies avoided: $((3 * count + 1))" ]; then
  echo "test-demo: the last line is '$last', not 'copies avoided:" \
    "$((3 * count + 1))'" >&2
  exit 1
fi
