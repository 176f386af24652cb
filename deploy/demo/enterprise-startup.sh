#!/usr/bin/env bash
# The enterprise start-up case, end to end on one machine.
#
# Installs what is missing (Debian 12), builds once, creates a broker home
# in a temporary directory, registers four departments (market supervision,
# tax, public security, a bank), the business-licence type and the three
# grants, and starts onced on loopback. Each department then joins the way
# its own system would:
#
#   - market supervision and public security link libonce
#     (once-demo-enterprise, deploy/demo/enterprise_startup.c);
#   - the tax bureau runs a once-gateway and its registration system calls
#     it over HTTP (adapters/examples/python/tax_registration.py, with
#     Debian's python3-requests);
#   - the bank can only exchange files: it runs a once-spool, drops request
#     files into requests/ and reads the answers from answers/
#     (deploy/demo/bank_spool.py).
#
# Market supervision publishes the licences; the three requesters ask for
# every one at the same time. The bank's spool subscribed at its start to
# the licences the bank holds (`notices = held:business-licence`), the tax
# bureau subscribes through its gateway (PUT /v1/subscriptions/held/...)
# and waits in a long poll (GET /v1/notices); market supervision revokes
# one licence with a reason; the bank is notified by a file in its spool's
# notices/, the tax bureau by its long poll (deploy/demo/tax_notices.py),
# and the bank's next request of the licence is answered revoked, with the
# reason. Licences are named by their serial, never by their code, in
# what is printed of the notices. Then the script reads the broker's KPIs, exports the
# exchange log, verifies it with once-audit as an auditor would and prints
# one enterprise's access report. The last line printed is `copies
# avoided: N`, the broker's own count of granted requests in its log
# (its console's /api/v1/kpis), not the programs' count.
#
# Usage: deploy/demo/enterprise-startup.sh [--count N] [--build-dir DIR]
#        [--keep]      keep the temporary broker home and print its path
#        [--no-build]  neither install packages nor build: DIR is built
#                      (the test suite's demo-e2e runs it so)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=3000
build="$root/build"
keep=0
no_build=0

while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-build) no_build=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "enterprise-startup: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$no_build" = 0 ]; then
  "$root/deploy/install-deps.sh"
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" >/dev/null
  fi
  ninja -C "$build" >/dev/null
fi

oncectl="$build/tools/oncectl"
onced="$build/broker/onced"
driver="$build/deploy/demo/once-demo-enterprise"
gateway="$build/adapters/gateway/once-gateway"
spool="$build/adapters/spool/once-spool"
tax_system="$root/adapters/examples/python/tax_registration.py"
tax_notices="$here/tax_notices.py"
bank_system="$here/bank_spool.py"
# Debian's python3, which sees python3-requests (install-deps.sh).
python=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/once-demo.XXXXXX")
home="$work/broker"
keys="$work/keys"
broker_pid=""
gateway_pid=""
spool_pid=""
# stop PID: SIGTERM and wait, if it still runs.
stop() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1"; wait "$1" || true
  fi
}
cleanup() {
  stop "$gateway_pid"
  stop "$spool_pid"
  stop "$broker_pid"
  # The adapters' logs tell what went wrong when the demo did not finish.
  if [ "${demo_done:-0}" != 1 ]; then
    for log in "$work/tax-gateway.log" "$work/bank-spool.log"; do
      [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
    done >&2
  fi
  if [ "$keep" = 1 ]; then echo "broker home kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

endpoint="ipc://$work/broker.sock"
"$oncectl" init "$home" --listen "$endpoint" --name demo.once.example >/dev/null
# The console (where the KPIs are read) on a free loopback port, so that
# the demo runs beside another broker.
console_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^console_listen = .*/console_listen = 127.0.0.1:$console_port/" \
  "$home/once.conf"
mkdir -m 0700 "$keys"
declare -A names=(
  [market-supervision]="Market Supervision Administration"
  [tax]="Tax Bureau"
  [public-security]="Public Security Bureau (seal engraving)"
  [bank]="Commercial Bank"
)
for dept in market-supervision tax public-security bank; do
  "$oncectl" keygen "$keys/$dept.key" >/dev/null
  "$oncectl" --home "$home" dept add "$dept" --key "$keys/$dept.key.pub" \
    --name "${names[$dept]}" >/dev/null
done
fields=name,legal_representative,registered_capital,address,business_scope,established_on
"$oncectl" --home "$home" type add business-licence --issuer market-supervision \
  --subject enterprise --fields "$fields" >/dev/null
"$oncectl" --home "$home" grant add --requester tax --type business-licence \
  --purpose tax-registration \
  --fields name,legal_representative,registered_capital,address,business_scope >/dev/null
"$oncectl" --home "$home" grant add --requester public-security \
  --type business-licence --purpose seal-engraving \
  --fields name,legal_representative >/dev/null
"$oncectl" --home "$home" grant add --requester bank --type business-licence \
  --purpose account-opening \
  --fields name,legal_representative,registered_capital,address >/dev/null

echo "departments:"; "$oncectl" --home "$home" dept list
echo "grants:"; "$oncectl" --home "$home" grant list

"$onced" --home "$home" --log-level warn &
broker_pid=$!
# Ready when the ipc socket exists; give up if onced exits first.
for _ in $(seq 100); do
  [ -S "$work/broker.sock" ] && break
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    broker_pid=""
    echo "enterprise-startup: onced did not start (see its messages above)" >&2
    exit 1
  fi
  sleep 0.1
done

demo() {
  "$driver" --endpoint "$endpoint" --broker-key "$home/broker.pub" \
    --keys "$keys" --count "$count" --requesters public-security "$@"
}

# wait_for_log FILE PATTERN PID: until FILE has a line matching PATTERN;
# gives up when PID exits first.
wait_for_log() {
  for _ in $(seq 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    if ! kill -0 "$3" 2>/dev/null; then
      echo "enterprise-startup: $(basename "$1" .log) did not start:" >&2
      cat "$1" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "enterprise-startup: $(basename "$1" .log) did not start" >&2
  return 1
}

demo --phase publish --codes "$work/codes" | tee "$work/driver.out"

# The tax bureau's gateway (its key stays with it; its registration system
# holds only a bearer token) and the bank's spool.
tax_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077
 printf '%s tax-registration-system request,catalogue,notices\n' "$tax_token" \
   >"$work/tax-gateway.tokens"
 printf '%s\n' "$tax_token" >"$work/tax.token"
 cat >"$work/tax-gateway.conf" <<EOF
[gateway]
department = tax
key = $keys/tax.key
broker = $endpoint
broker_key = $home/broker.pub
state_directory = $work/tax-gateway.state
listen = 127.0.0.1:0
tokens = $work/tax-gateway.tokens
EOF
 cat >"$work/bank-spool.conf" <<EOF
[spool]
department = bank
key = $keys/bank.key
broker = $endpoint
broker_key = $home/broker.pub
spool_directory = $work/bank-spool
state_directory = $work/bank-spool.state
notices = held:business-licence
EOF
)
"$gateway" --config "$work/tax-gateway.conf" 2>"$work/tax-gateway.log" &
gateway_pid=$!
"$spool" --config "$work/bank-spool.conf" 2>"$work/bank-spool.log" &
spool_pid=$!
wait_for_log "$work/tax-gateway.log" "port [0-9]" "$gateway_pid"
wait_for_log "$work/bank-spool.log" "spooling" "$spool_pid"
tax_url="http://127.0.0.1:$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' \
  "$work/tax-gateway.log" | head -n 1)"
echo "tax bureau: once-gateway on $tax_url; bank: once-spool in $work/bank-spool"

# The three requesters at once: tax over HTTP, the bank through files,
# public security through libonce.
awk '{ printf "%s TAX-2026-%06d\n", $2, $1 }' "$work/codes" >"$work/tax-cases"
echo "tax (through once-gateway) and bank (through once-spool) request" \
  "every licence"
"$python" "$tax_system" --gateway "$tax_url" --token-file "$work/tax.token" \
  --batch "$work/tax-cases" --quiet >"$work/tax.out" 2>&1 &
tax_pid=$!
"$python" "$bank_system" "$work/bank-spool" --codes "$work/codes" \
  >"$work/bank.out" 2>&1 &
bank_pid=$!
demo --phase request | tee -a "$work/driver.out"
tax_rc=0; wait "$tax_pid" || tax_rc=$?
bank_rc=0; wait "$bank_pid" || bank_rc=$?
cat "$work/tax.out" "$work/bank.out"
if [ "$tax_rc" != 0 ] || [ "$bank_rc" != 0 ]; then
  echo "enterprise-startup: the tax bureau (exit $tax_rc) or the bank" \
    "(exit $bank_rc) did not get every licence" >&2
  exit 1
fi

# The tax bureau subscribes to the licences it now holds and waits for
# notices in a long poll (the bank's spool subscribed at its start).
"$python" "$tax_notices" --gateway "$tax_url" --token-file "$work/tax.token" \
  subscribe
"$python" "$tax_notices" --gateway "$tax_url" --token-file "$work/tax.token" \
  --codes "$work/codes" wait >"$work/tax-notices.out" 2>&1 &
tax_pid=$!

# Licence 0 is revoked; the bank and the tax bureau are notified, and the
# bank's next request of it says so.
demo --phase revoke | tee -a "$work/driver.out"
"$python" "$bank_system" "$work/bank-spool" --codes "$work/codes" --notice
tax_rc=0; wait "$tax_pid" || tax_rc=$?
cat "$work/tax-notices.out"
if [ "$tax_rc" != 0 ]; then
  echo "enterprise-startup: the tax bureau was not notified" >&2
  exit 1
fi
"$python" "$bank_system" "$work/bank-spool" --codes "$work/codes" --revoked

# The broker's KPIs, once its console has counted every leaf of the log.
copies=$("$python" - "$console_port" "$home/console.token" <<'EOF'
import json, sys, time, urllib.request
port, token_path = sys.argv[1], sys.argv[2]
with open(token_path) as f:
    token = f.read().strip()
def get(name):
    req = urllib.request.Request(
        "http://127.0.0.1:%s/api/v1/%s" % (port, name),
        headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
for _ in range(600):
    k = get("kpis")
    if k["leaves_counted"] == get("status")["log"]["tree_size"]:
        print(k["copies_avoided"]["total"])
        sys.exit(0)
    time.sleep(0.1)
sys.exit("enterprise-startup: the console did not count every leaf")
EOF
)
stop "$gateway_pid"; gateway_pid=""
stop "$spool_pid"; spool_pid=""

# The day is over: stopping onced signs a checkpoint of every leaf it
# logged (a running broker's export ends at its newest checkpoint, at most
# checkpoint_interval_ms behind).
kill -TERM "$broker_pid"
wait "$broker_pid"
broker_pid=""

# The auditor's side: export the log, verify it with nothing but the
# broker's public key (and the audit key for the subject hashes), and
# answer the example enterprise's question: who read its licence, and why.
audit="$build/tools/once-audit"
echo "exchange log:"
"$oncectl" --home "$home" log export "$work/log-export"
"$audit" verify "$work/log-export" --key "$home/broker.pub" \
  --audit-key "$home/audit.key"
example=$(sed -n 's/^example enterprise (licence 0): //p' "$work/driver.out")
echo "access report for the example enterprise's business licence:"
"$audit" subject "$work/log-export" --audit-key "$home/audit.key" \
  --type business-licence --subject "$example"
demo_done=1
# The broker's count is the last line: every granted request in its log,
# the bank's request answered with the revocation included.
echo "the broker's KPIs: $copies granted requests, each a photocopy no" \
  "applicant carried ($count licences to 3 departments, and the bank told" \
  "of the revocation)"
echo "copies avoided: $copies"
