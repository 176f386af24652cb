#!/usr/bin/env bash
# The test suite's run of the enterprise start-up demo (test demo-e2e):
# enterprise-startup.sh on a small count, in the build the suite made,
# must finish, and its last line must be the broker's count of copies
# avoided: COUNT licences to three requesters (tax through once-gateway,
# the bank through once-spool, public security through libonce) and the
# bank's request of the revoked licence. Before that, the revocation of
# licence 0 must have notified the bank (a file in its spool's notices/)
# and the tax bureau (its gateway's long poll), each printed once, naming
# the licence by its serial and not by its code, and the tax bureau must
# have acknowledged it (POST /v1/notices/ack, its cursor printed).
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
for who in "bank notified (through once-spool, file notices/[0-9]\{20\}\.json)" \
           "tax bureau notified (through once-gateway, GET /v1/notices)"; do
  n=$(grep -c "^$who: licence 0 revoked, version 2 (leaf [0-9][0-9]*)$" \
      <<<"$out" || true)
  if [ "$n" != 1 ]; then
    echo "test-demo: expected one line '$who: licence 0 revoked," \
      "version 2 (leaf N)', found $n" >&2
    exit 1
  fi
done
# The tax bureau acknowledged the notice it printed: the department's
# cursor at the broker is at least its leaf.
ack=$(grep '^tax bureau acknowledged the notices up to leaf' <<<"$out" || true)
if ! [[ "$ack" =~ ^tax\ bureau\ acknowledged\ the\ notices\ up\ to\ leaf\ ([0-9]+)\ \(POST\ /v1/notices/ack\):\ its\ cursor\ at\ the\ broker\ is\ ([0-9]+)$ ]] ||
   [ "${BASH_REMATCH[2]}" -lt "${BASH_REMATCH[1]}" ]; then
  echo "test-demo: expected one line 'tax bureau acknowledged the notices" \
    "up to leaf N (...): its cursor at the broker is M', M >= N; found" \
    "'$ack'" >&2
  exit 1
fi
# Here-strings, not pipes: grep -q stops reading at its first match, and
# under pipefail the writer's SIGPIPE would fail the pipeline.
if grep -q ' notified .*9111' <<<"$out"; then
  echo "test-demo: a notice line prints a licence's code" >&2
  exit 1
fi
if ! grep -q "answered revoked: .*, reason: deregistered" <<<"$out"; then
  echo "test-demo: the bank's answer of the revoked licence has no reason" >&2
  exit 1
fi
