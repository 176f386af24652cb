#!/bin/sh
# profile.sh - where onced's CPU goes per request, by stage (docs/PERFORMANCE.md).
#
# Runs once-bench's closed loop (the broker at saturation), or with
# `--rate R` among the options its open loop at R requests/s, attaches
# `perf record --call-graph dwarf` to the onced it started for a few seconds
# of the request phase, and prints each stage's share of onced's CPU and its
# microseconds per request: onced's CPU per request (cpu cores used /
# requests per second, from the same run's JSON) times the share. The stack
# of each sample decides its stage (perf_stages.py says how). dwarf call
# graphs because libsodium, libzmq and LMDB are built without frame
# pointers.
#
# usage: tools/bench/profile.sh [BUILD_DIR] [PERF_SECONDS] [-- ONCE-BENCH OPTIONS]
#   BUILD_DIR     the meson build directory (default: build)
#   PERF_SECONDS  how long perf records (default 6; the request phase lasts
#                 that plus 8 s)
# The open loop's phase starts after its warm-up and the signing of its
# envelopes, during which onced is idle: perf starts once onced's CPU
# rises again after that lull.
# Needs perf and the right to profile one's own processes
# (kernel.perf_event_paranoid <= 2; root needs nothing). Leaves perf.data,
# the bench's JSON and its log in a temporary directory it prints.
set -eu

build=${1:-build}
secs=${2:-6}
[ $# -ge 1 ] && shift
[ $# -ge 1 ] && shift
[ "${1:-}" = "--" ] && shift
here=$(dirname "$0")
bench="$build/tools/bench/once-bench"
[ -x "$bench" ] || { echo "profile.sh: no $bench; build first" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/once-profile-XXXXXX")
"$bench" --seconds $((secs + 8)) --json "$@" >"$out/bench.json" 2>"$out/bench.log" &
bench_pid=$!

case " $* " in *" --rate "*) open=1 marker="warming up" ;; *) open=0 marker=running ;; esac
# onced's CPU time so far, in ns, all threads (schedstat: exact, not ticks).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# The request phase starts after the limits, the publishes and the signing.
i=0
until grep -q "$marker" "$out/bench.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 1200 ] || ! kill -0 $bench_pid 2>/dev/null; then
        echo "profile.sh: the bench did not reach its request phase" >&2
        # A slow bench (a large --preload) still runs: let it stop its
        # onced and remove its home rather than leave them behind.
        wait $bench_pid || :
        cat "$out/bench.log" >&2
        rm -rf "$out"
        exit 1
    fi
    sleep 0.1
done
onced_pid=$(pgrep -P $bench_pid -x onced)
if [ $open = 1 ]; then
    # Past the 0.5 s warm-up, wait for the lull (signing) and its end:
    # onced using over 5% of a core again. At most 30 s.
    sleep 0.6
    lull=0 i=0 a=$(cpu_ns "$onced_pid")
    while [ $i -lt 300 ]; do
        sleep 0.1
        b=$(cpu_ns "$onced_pid")
        d=$((b - a)) a=$b i=$((i + 1))
        [ $d -lt 2000000 ] && lull=1
        [ $lull = 1 ] && [ $d -gt 5000000 ] && break
    done
fi
sleep 1
perf record -q -F 499 --call-graph dwarf,16384 -p "$onced_pid" \
    -o "$out/perf.data" -- sleep "$secs" 2>"$out/perf.log"
wait $bench_pid || {
    echo "profile.sh: the bench failed" >&2
    cat "$out/bench.log" >&2
    rm -rf "$out"
    exit 1
}

us=$(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))["broker"]
p = b["phases"][0] if "phases" in b else None
print("%.2f" % (p["broker_cpu_cores"] / p["achieved_per_s"] * 1e6 if p else
                b["broker_cpu_cores"] / b["requests_per_s"] * 1e6))' "$out/bench.json")
python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); b, l = d["broker"], d["limits"]
if "phases" in b:
    p = b["phases"][0]; lat = p["latency_us"]
    print("open loop at %.0f/s: achieved %.0f/s, p50 %.0f us, p99 %.0f us, %d sends"
          " late; onced %.2f cores, bench %.2f cores" % (p["rate"], p["achieved_per_s"],
          lat["p50"], lat["p99"], p["late_sends"], p["broker_cpu_cores"],
          p["bench_cpu_cores"]))
else:
    print("requests/s %.0f, onced %.2f cores, bench %.2f cores; verify/s per core %.0f;"
          " ratio to verify capacity %.3f" % (b["requests_per_s"], b["broker_cpu_cores"],
          b["bench_cpu_cores"], l["ed25519_verify_per_core"],
          d["ratios"]["requests_per_verify_capacity"]))
print("verify alone: %.1f us of one core" % (1e6 / l["ed25519_verify_per_core"]))' "$out/bench.json"
echo "onced CPU per request: $us us"
perf script -F comm,ip,sym,dso -i "$out/perf.data" 2>/dev/null |
    python3 "$here/perf_stages.py" "$us"
echo "(files in $out)"
