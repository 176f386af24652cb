#!/usr/bin/env bash
# What the operator's console costs the exchange: once-bench's request rate
# with the console on and scraped every second (--console) against the
# console off, alternating in one run so that both see the same machine
# state, and the ratio of the medians (issue 10 asks for at least 0.97).
#
# Usage: tools/bench/console-overhead.sh [--rounds N] [--build-dir DIR]
#        [-- ONCE-BENCH-OPTIONS...]
# Default: 3 rounds of each, once-bench --seconds 10 --limit-seconds 0.2.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build"
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "console-overhead: unknown option $1" >&2; exit 2 ;;
  esac
done
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(--seconds 10 --limit-seconds 0.2)
bench="$build/tools/bench/once-bench"

rate() {
  "$bench" --json "${extra[@]}" "$@" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["broker"]["requests_per_s"])'
}

off=() on=()
for i in $(seq "$rounds"); do
  off+=("$(rate)")
  on+=("$(rate --console)")
  echo "round $i: console off ${off[-1]} requests/s, on and scraped ${on[-1]}"
done
/usr/bin/python3 "$root/tools/bench/median-ratio.py" off "${off[*]}" on "${on[*]}"
