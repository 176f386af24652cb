#!/usr/bin/env bash
# test_bench_preload.sh - once-bench --preload and --reuse, which the scale
# measurement of docs/PERFORMANCE.md ("Scale of the registry") rests on.
#
#     test_bench_preload.sh ONCE_BENCH ONCED ONCECTL ONCE_AUDIT
#
# 1. A run whose records are all preloaded (stored straight into the
#    database, never published through the wire): once-bench passes only
#    when every answer is a Response and each client's sample, which can
#    only be a preloaded record, verifies with the issuer's key and holds
#    exactly the granted fields; and when the database holds every record
#    after onced stopped.
# 2. A second run on the kept home (--reuse) that publishes 200 more
#    records through the wire above the preloaded ones.
# 3. The exchange log of both (the preloaded publishes' leaves and
#    evidence, and every exchange of both runs) exported with oncectl
#    verifies completely with once-audit, the keyed subject hashes
#    included, and a preloaded subject's publish is found in it.
# 4. bench-first-touch reads the kept home's records as a worker does,
#    after its pass over the map: every one of the 1,200 subjects it asks
#    for is found.
# Nothing here is timed: speed is the benchmark's business.
set -eu

bench=${1:?usage: test_bench_preload.sh ONCE_BENCH ONCED ONCECTL ONCE_AUDIT FIRST_TOUCH}
onced=${2:?}
oncectl=${3:?}
once_audit=${4:?}
first_touch=${5:?}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-preload-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
common=(--onced "$onced" --clients 4 --window 4 --seconds 1
        --limit-seconds 0.2 --max-presigned 4000)

"$bench" "${common[@]}" --records 1000 --preload 1000 --dir "$tmp" --keep \
    >"$tmp/first.out"
run=$(echo "$tmp"/once-bench-*)
test -d "$run/home" && test -f "$run/keys/bench-issuer.key"
test "$(stat -c %a "$run/keys")" = 700
test "$(stat -c %a "$run/keys/bench-issuer.key")" = 600

"$bench" "${common[@]}" --reuse "$run" --records 1200 >"$tmp/second.out" \
    2>"$tmp/second.err" || { cat "$tmp/second.err" >&2; exit 1; }
grep -q 'publishing 200 records' "$tmp/second.err"
grep -q 'onced memory: VmHWM' "$tmp/second.err"
grep -q '^once-bench: records  *1000 ' "$tmp/second.err"

"$oncectl" --home "$run/home" log export "$tmp/export" >/dev/null
"$once_audit" verify "$tmp/export" --key "$run/home/broker.pub" \
    --audit-key "$run/home/audit.key"
# Subject 5 of the bench's numbering (tools/bench/bench.c make_subject).
"$once_audit" subject "$tmp/export" --audit-key "$run/home/audit.key" \
    --type bench-licence --subject 913501000000000051 >"$tmp/subject.out"
grep -q 'bench-issuer	publish	1	' "$tmp/subject.out"

"$first_touch" "$run/home/db" 1200 500 2 --touch >"$tmp/touch.out"
grep -q '^touch over ' "$tmp/touch.out"
test "$(grep -c '^batch [01]: 500 of 500 found' "$tmp/touch.out")" = 2
echo "ok: preloaded and reused homes serve verified records; the log verifies; bench-first-touch finds them"
