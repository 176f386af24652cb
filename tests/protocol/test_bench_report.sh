#!/usr/bin/env bash
# test_bench_report.sh - once-bench's report of the publish phase
# (tools/bench/report.c), on which docs/PERFORMANCE.md's publish figures
# rest.
#
#     test_bench_report.sh ONCE_BENCH ONCED
#
# A publish carries two Ed25519 signatures (its envelope's and the
# record's issuer signature), so the report quotes publishes/s against
# half of verify/s per core x cores, beside durable LMDB commits, and
# gives onced's CPU during the publishes. One short run as JSON and one
# as text, each closed loop, and one open-loop JSON run: every ratio must
# be the quotient of the figures the same report prints, and the text
# must carry the same lines. Nothing here is timed: speed is the
# benchmark's business.
set -eu

bench=${1:?usage: test_bench_report.sh ONCE_BENCH ONCED}
onced=${2:?}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-bench-report-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

run() {
    local out=$1
    shift
    "$bench" --onced "$onced" --records 300 --clients 2 --window 4 \
        --seconds 0.3 --limit-seconds 0.1 --max-presigned 2000 \
        --dir "$tmp" "$@" >"$tmp/$out" 2>"$tmp/$out.err" || {
        cat "$tmp/$out" "$tmp/$out.err" >&2
        echo "test_bench_report: once-bench $* failed" >&2
        exit 1
    }
}
run closed.json --json
run open.json --json --rate 100 --start-rate 100
run closed.txt

for f in closed.json open.json; do
    python3 - "$tmp/$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l, b, r = d["limits"], d["broker"], d["ratios"]
cores = d["machine"]["cores"]
pub = b["publishes_per_s"]
assert pub > 0, "no publishes/s"
assert b["publish_broker_cpu_cores"] > 0, "no onced cpu while publishing"
assert b["publish_bench_cpu_cores"] >= 0
# The limits are printed rounded to whole numbers; the ratios come from
# the unrounded ones.
def check(name, denominator):
    want, got = pub / denominator, r[name]
    assert abs(got - want) <= (1e-3 + 0.5 / denominator) * want + 1e-4, \
        (name, got, want)
check("publishes_per_verify_capacity",
      l["ed25519_verify_per_core"] * cores / 2)
check("publishes_per_lmdb_commit", l["lmdb_durable_commits"])
PY
done

expect() {
    grep -Eq "$1" "$tmp/closed.txt" || {
        cat "$tmp/closed.txt" >&2
        echo "test_bench_report: no line matching '$1'" >&2
        exit 1
    }
}
number='[0-9]+(\.[0-9]+)?'
expect "^  publishes +$number /s +\(300 in $number s, window 1024 on 4 connections\)$"
expect "^  cpu cores used by onced, publishing +$number +\(bench: $number; $number us of onced cpu a publish\)$"
expect "^  publishes/s / \(verify/s per core x cores/2\) +$number$"
expect "^  publishes/s / lmdb durable commits/s +$number$"
