#!/usr/bin/env bash
# once-spool import's rows/s against once-bench's publish rate, in one run
# on one machine (issue 9's measure).
#
#   bash adapters/spool/bench/import-bench.sh [BUILD_DIR] [ROWS] [CONNECTIONS]
#
# Makes a broker home in a temp directory (oncectl: market supervision
# issues business licences), starts onced, writes a CSV of ROWS licences
# (default 2000) and imports it with the build's once-spool, first with
# --connections 1 (one publish in flight: as import was before it used
# the pool), then with --connections CONNECTIONS (default 8) on a second
# file of as many rows, each timed from start to exit. Then once-bench
# measures, in the same run, the broker's pipelined publish rate and the
# machine's durable LMDB commits/s. ONCE_SPOOL_BEFORE=PATH also times
# another once-spool binary (an older build) on a third file first.
# Everything shares the machine's cores: read the ratios.
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
rows=${2:-2000}
conns=${3:-8}
dir=$(mktemp -d /tmp/import-bench-XXXXXX)
onced_pid=""
cleanup() {
  if [ -n "$onced_pid" ]; then kill "$onced_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

ctl() { "$build/tools/oncectl" --home home "$@" >/dev/null; }
"$build/tools/oncectl" init home --listen "ipc://$dir/b.sock" >/dev/null
sed -i 's/^console_listen = .*/console_listen =/' home/once.conf
"$build/tools/oncectl" keygen market-supervision.key >/dev/null
ctl dept add market-supervision --key market-supervision.key.pub
ctl type add business-licence --issuer market-supervision --subject enterprise \
  --fields name,legal_representative,address
"$build/broker/onced" --home home 2>onced.log &
onced_pid=$!
while [ ! -S b.sock ]; do sleep 0.05; done
cat >spool.conf <<CONF
[spool]
department = market-supervision
key = market-supervision.key
broker = ipc://$dir/b.sock
broker_key = home/broker.pub
spool_directory = $dir/spool
state_directory = $dir/spool.state
CONF

# csv FILE FIRST: ROWS rows of valid Unified Social Credit Codes from FIRST.
csv() {
  /usr/bin/python3 - "$1" "$2" "$rows" <<'PY'
import sys
alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
path, first, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("uscc,name,legal_representative,address\n")
    for n in range(first, first + rows):
        body = "91110108MA%07d" % n
        s = sum(alphabet.index(c) * weights[i] for i, c in enumerate(body))
        f.write('%s%s,"Firm %d, Ltd",Rep %d,Road %d\n'
                % (body, alphabet[(31 - s % 31) % 31], n, n, n))
PY
}

# import_rate LABEL SPOOL FIRST [ARGS...]: times one import of a new file.
import_rate() {
  local label=$1 spool=$2 first=$3 start end
  shift 3
  csv "rows-$first.csv" "$first"
  start=$(date +%s.%N)
  "$spool" import "rows-$first.csv" --type business-licence \
    --subject-column uscc --config spool.conf "$@" >"import-$first.out"
  end=$(date +%s.%N)
  grep -q "$rows published now" "import-$first.out" ||
    { cat "import-$first.out"; exit 1; }
  awk -v l="$label" -v r="$rows" -v s="$start" -v e="$end" \
    'BEGIN { printf "import %s: %d rows in %.1f s: %.0f rows/s\n", l, r, e - s, r / (e - s) }'
}

if [ -n "${ONCE_SPOOL_BEFORE:-}" ]; then
  import_rate "($ONCE_SPOOL_BEFORE)" "$ONCE_SPOOL_BEFORE" 2000000
fi
import_rate "--connections 1" "$build/adapters/spool/once-spool" 3000000 \
  --connections 1
import_rate "--connections $conns" "$build/adapters/spool/once-spool" \
  4000000 --connections "$conns"
kill "$onced_pid"; wait "$onced_pid" || true; onced_pid=""

"$build/tools/bench/once-bench" --onced "$build/broker/onced" \
  --records 10000 --clients 4 --seconds 2 --limit-seconds 1 >bench.out 2>&1 ||
  { cat bench.out; exit 1; }
grep -i -E "lmdb|publish" bench.out
