#!/usr/bin/env bash
# Gateway requests/s against libonce's direct requests/s, in one run on one
# machine (issue 9's measure).
#
#   bash adapters/gateway/bench/bench.sh [BUILD_DIR] [CONNECTIONS] [SECONDS]
#
# Makes a broker home in a temp directory (oncectl), starts onced, a
# market-supervision gateway to publish one business licence and a tax
# gateway to request it; then, for SECONDS each, CONNECTIONS threads
# request and verify it directly with libonce (gateway-bench-direct), one
# connection does the same keeping CONNECTIONS requests in flight, and
# wrk keeps CONNECTIONS HTTP connections requesting it through the tax
# gateway (pool_size = CONNECTIONS, requests pipelined on one lane), then
# through a second tax gateway whose requests take the pool's connections
# one at a time (request_lanes = 0). Every request is a logged exchange at
# the broker in both runs. Prints both rates, the ratio, and wrk's latency
# percentiles; then gateway-bench-rate sends the same GET on a fixed
# schedule at half the rate wrk reached and prints p50/p99 counted from
# each call's due time (open loop: a latency under load, not at
# saturation). Needs wrk (Debian package wrk). Broker, gateway and drivers
# share the machine's cores: on a small machine read the ratio, not the
# rates.
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
conns=${2:-8}
seconds=${3:-10}
dir=$(mktemp -d /tmp/gw-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

ctl() { "$build/tools/oncectl" --home home "$@" >/dev/null; }
"$build/tools/oncectl" init home --listen "ipc://$dir/b.sock" >/dev/null
for d in market-supervision tax; do
  "$build/tools/oncectl" keygen "$d.key" >/dev/null
  ctl dept add "$d" --key "$d.key.pub"
done
ctl type add business-licence --issuer market-supervision --subject enterprise \
  --fields name,legal_representative,address
ctl grant add --requester tax --type business-licence --purpose bench \
  --fields name,address
"$build/broker/onced" --home home 2>onced.log &
pids+=($!)
while [ ! -S b.sock ]; do sleep 0.05; done

start_gateway() { # NAME DEPARTMENT TOKEN [REQUEST_LANES] -> sets port
  printf '%s bench *\n' "$3" >"$1.tokens"
  chmod 600 "$1.tokens"
  cat >"$1.conf" <<CONF
[gateway]
department = $2
key = $2.key
broker = ipc://$dir/b.sock
broker_key = home/broker.pub
listen = 127.0.0.1:0
tokens = $1.tokens
state_directory = $1.state
pool_size = $conns
request_lanes = ${4:-1}
CONF
  "$build/adapters/gateway/once-gateway" --config "$1.conf" 2>"$1.log" &
  pids+=($!)
  until grep -q 'port [0-9]' "$1.log"; do sleep 0.05; done
  port=$(grep -o 'port [0-9]*' "$1.log" | head -1 | cut -d' ' -f2)
}

subject=91110108MA0000001D
start_gateway market market-supervision market-bench-token-0001
curl -sf -X PUT -H 'Authorization: Bearer market-bench-token-0001' \
  -H 'Content-Type: application/json' \
  -d '{"fields":{"name":"Acme","legal_representative":"Zhang San","address":"1 Road"}}' \
  "http://127.0.0.1:$port/v1/records/business-licence/$subject" >/dev/null
start_gateway taxpool tax tax-bench-token-00001 0
pool_port=$port
start_gateway tax tax tax-bench-token-00001

direct=$("$build/adapters/gateway/gateway-bench-direct" "ipc://$dir/b.sock" tax \
  tax.key home/broker.pub market-supervision.key.pub business-licence \
  "$subject" bench "$conns" "$seconds")
echo "$direct"
# The same requests on one connection keeping min(CONNECTIONS, 32) in
# flight (libonce's pipelined requests) against CONNECTIONS synchronous
# connections: what one pipelined broker connection carries.
depth=$(( conns < 32 ? conns : 32 ))
piped=$("$build/adapters/gateway/gateway-bench-direct" "ipc://$dir/b.sock" tax \
  tax.key home/broker.pub market-supervision.key.pub business-licence \
  "$subject" bench 1 "$seconds" "$depth")
echo "one connection, $depth in flight: ${piped#direct: }"
awk -v p="$(awk '{print $2}' <<<"$piped")" -v d="$(awk '{print $2}' <<<"$direct")" \
  'BEGIN { printf "ratio pipelined/direct: %.2f\n", p / d }'
wrk_out=$(wrk -t 2 -c "$conns" -d "${seconds}s" --latency \
  -H 'Authorization: Bearer tax-bench-token-00001' \
  "http://127.0.0.1:$port/v1/records/business-licence/$subject?purpose=bench&case_id=BENCH-1")
rate=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$wrk_out")
p50=$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")
p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")
echo "gateway: ${rate%.*} requests/s, p50 $p50, p99 $p99, ${non2xx:-0} non-2xx"
d=$(awk '{print $2}' <<<"$direct")
awk -v g="$rate" -v d="$d" 'BEGIN { printf "ratio gateway/direct: %.2f\n", g / d }'
# The same gateway sending each request on a pool connection of its own
# (request_lanes = 0), as before the lanes.
pool_out=$(wrk -t 2 -c "$conns" -d "${seconds}s" --latency \
  -H 'Authorization: Bearer tax-bench-token-00001' \
  "http://127.0.0.1:$pool_port/v1/records/business-licence/$subject?purpose=bench&case_id=BENCH-1")
pool_rate=$(awk '/Requests\/sec/ {print $2}' <<<"$pool_out")
echo "gateway, request_lanes = 0: ${pool_rate%.*} requests/s, p50 $(awk '$1 == "50%" {print $2}' <<<"$pool_out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$pool_out")"
awk -v g="$pool_rate" -v d="$d" 'BEGIN { printf "ratio gateway (request_lanes = 0)/direct: %.2f\n", g / d }'
half=$(awk -v g="$rate" 'BEGIN { printf "%d", g / 2 }')
echo "gateway at half its maximum rate ($half requests/s, open loop):"
"$build/adapters/gateway/gateway-bench-rate" \
  "http://127.0.0.1:$port/v1/records/business-licence/$subject?purpose=bench&case_id=BENCH-2" \
  tax-bench-token-00001 "$half" "$seconds" "$conns"
