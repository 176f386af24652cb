#!/usr/bin/env bash
# The enterprise start-up case, end to end on one machine.
#
# Installs what is missing (Debian 12), builds once, creates a broker home
# in a temporary directory, registers four departments (market supervision,
# tax, public security, a bank), the business-licence type and the three
# grants, starts onced on loopback, and runs once-demo-enterprise, which
# publishes and requests the licences. Then it exports the exchange log,
# verifies it with once-audit as an auditor would and prints one
# enterprise's access report. The last line printed is `copies avoided: N`.
#
# Usage: deploy/demo/enterprise-startup.sh [--count N] [--build-dir DIR]
#        [--keep]   keep the temporary broker home and print its path
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=3000
build="$root/build"
keep=0

while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "enterprise-startup: unknown option $1" >&2; exit 2 ;;
  esac
done

"$root/deploy/install-deps.sh"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" >/dev/null

oncectl="$build/tools/oncectl"
onced="$build/broker/onced"
driver="$build/deploy/demo/once-demo-enterprise"

work=$(mktemp -d "${TMPDIR:-/tmp}/once-demo.XXXXXX")
home="$work/broker"
keys="$work/keys"
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid"; wait "$broker_pid" || true
  fi
  if [ "$keep" = 1 ]; then echo "broker home kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

endpoint="ipc://$work/broker.sock"
"$oncectl" init "$home" --listen "$endpoint" --name demo.once.example >/dev/null
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

"$driver" --endpoint "$endpoint" --broker-key "$home/broker.pub" \
  --keys "$keys" --count "$count" | tee "$work/driver.out"

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
# The driver's summary stays the last line.
tail -n 1 "$work/driver.out"
