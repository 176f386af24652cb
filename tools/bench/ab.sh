#!/usr/bin/env bash
# Before and after an optimisation: once-bench's closed loop against two
# onced binaries, alternating (A, B, A, B, ...) in one run so that both see
# the same machine state, with each run's machine limits, and the medians
# of requests/s, of its ratio to the verify capacity measured in the same
# run (verify/s per core x cores), of onced's CPU per request and of p99.
# docs/PERFORMANCE.md's table of optimisations is filled from its output.
#
# Usage: tools/bench/ab.sh ONCED_BEFORE ONCED_AFTER [--rounds N]
#        [-- ONCE-BENCH-OPTIONS...]
# Default: 3 rounds, once-bench --seconds 10 --limit-seconds 1. The bench
# itself is this tree's (build/tools/bench/once-bench, or $BENCH).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bench=${BENCH:-$root/build/tools/bench/once-bench}
[ $# -ge 2 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
before=$1 after=$2
shift 2
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(--seconds 10 --limit-seconds 1)

# One run: requests/s, ratio to verify capacity, onced us/request, p99 us,
# verify/s per core, lmdb commits/s, and of onced's us/request those of its
# console thread (0 unless the bench options hold --console).
run() {
  "$bench" --json --onced "$1" "${extra[@]}" 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin); b, l = d["broker"], d["limits"]
print("%.1f %.4f %.1f %.0f %.0f %.0f %.3f" % (b["requests_per_s"],
      d["ratios"]["requests_per_verify_capacity"],
      b["broker_cpu_cores"] / b["requests_per_s"] * 1e6,
      b["latency_us"]["p99"], l["ed25519_verify_per_core"],
      l["lmdb_durable_commits"],
      b.get("console_cpu_cores", 0) / b["requests_per_s"] * 1e6))'
}

a=() b=()
echo "round label requests/s ratio_to_verify onced_us/req p99_us verify/s/core lmdb_commits/s console_us/req"
for i in $(seq "$rounds"); do
  a+=("$(run "$before")"); echo "$i before ${a[-1]}"
  b+=("$(run "$after")"); echo "$i after  ${b[-1]}"
done
/usr/bin/python3 - "$(printf '%s\n' "${a[@]}")" "$(printf '%s\n' "${b[@]}")" <<'PY'
import statistics, sys
def medians(text):
    rows = [[float(x) for x in line.split()] for line in text.splitlines()]
    return [statistics.median(col) for col in zip(*rows)]
a, b = medians(sys.argv[1]), medians(sys.argv[2])
names = {0: "requests/s", 1: "ratio to verify capacity",
         2: "onced us/request", 3: "p99 us", 6: "console us/request"}
for i, n in names.items():
    print("median %-26s before %10.4g  after %10.4g  after/before %.3f"
          % (n, a[i], b[i], b[i] / a[i] if a[i] else 0))
PY
