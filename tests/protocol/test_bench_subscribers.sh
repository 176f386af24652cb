#!/usr/bin/env bash
# test_bench_subscribers.sh - once-bench --idle-subscribers and
# --notice-fanout (tools/bench/idle.c, fanout.c), on which the notice
# figures of docs/PERFORMANCE.md ("Notices") rest.
#
#     test_bench_subscribers.sh ONCE_BENCH ONCED
#
# One short run on a real onced: the request phase alternating without
# and with 8 idle subscribers (two rounds: A B A B), then 8 subscribers
# that read while the issuer revokes 10 records. once-bench fails the run
# on any wrong answer, on a subscriber that cannot connect, subscribe or
# acknowledge, or on a notice that never arrived; this checks the report's
# shape on top: a line per round and the medians' ratio, and every one of
# the 8 x 10 notices received, with their rate and latencies. Nothing
# here is timed: speed is the benchmark's business.
set -eu

bench=${1:?usage: test_bench_subscribers.sh ONCE_BENCH ONCED}
onced=${2:?}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-bench-subs-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$bench" --onced "$onced" --records 300 --clients 4 --window 4 \
    --seconds 0.5 --limit-seconds 0.2 --max-presigned 4000 --dir "$tmp" \
    --idle-subscribers 8 --idle-rounds 2 \
    --notice-fanout 8 --notice-records 10 >"$tmp/out" 2>"$tmp/err" || {
    cat "$tmp/out" "$tmp/err" >&2
    echo "test_bench_subscribers: once-bench failed" >&2
    exit 1
}
cat "$tmp/out"

expect() {
    grep -Eq "$1" "$tmp/out" || {
        echo "test_bench_subscribers: no line matching '$1'" >&2
        exit 1
    }
}
number='[0-9]+(\.[0-9]+)?'
expect '^Idle subscribers \(8 connected, '
for round in 1 2; do
    expect "^  round $round  none +$number requests/s \(p99 [0-9]+ us, [0-9]+ per onced cpu-s\)  idle +$number requests/s \(p99 [0-9]+ us, [0-9]+ per onced cpu-s\)  ratio $number$"
done
expect "^per onced cpu-s: median none $number, idle $number requests/s: ratio idle/none $number$"
expect "^median none $number, idle $number requests/s: ratio idle/none $number \(target >= 0\.95\)$"
expect '^Notice fan-out \(8 subscribers reading with libonce, 10 records '
expect '^  notices received +80 of 80$'
expect "^  notices fanned out +[0-9]+ notices/s "
expect "^  revoke-to-notice +p50 [0-9]+ us  p90 [0-9]+ us  p99 [0-9]+ us  max [0-9]+ us "
# The idle rounds' requesters got only right answers: no errors line
# other than 0 (once-bench exits 1 otherwise, checked above).
expect '^  errors +0$'
