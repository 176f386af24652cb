#!/usr/bin/env bash
# scale.sh - the request rate of a large registry against a small one,
# alternating runs (A B A B ...) so that the load other programs put on
# the machine falls on both alike (docs/PERFORMANCE.md, "Scale of the
# registry").
#
#     tools/bench/scale.sh SMALL LARGE [ROUNDS [ONCE-BENCH OPTIONS...]]
#
# SMALL and LARGE are run directories kept by once-bench --keep, made for
# example with
#
#     once-bench --records 10000 --preload 10000 --keep --dir /var/tmp/a
#     once-bench --records 10000000 --preload 10000000 --keep --dir /var/tmp/b
#
# Each round runs once-bench --reuse on SMALL, then on LARGE, with the same
# options (default: the defaults, 10 s of closed-loop requests over every
# record of the home, uniformly). Each run starts a new onced, which
# first reads a byte of every cached page of its database (map_warm.c;
# about 12 s for the 20 GB of ten million records on the test machine,
# beside the requests): without --warmup-seconds (30 for ten million
# records) the runs measure that pass, not the steady state of a broker
# that has been running. Prints each run's granted requests/s,
# the requests per second of CPU onced used (on a loaded machine onced
# gets a varying share of the cores, and this moves less with it), onced's
# memory, the ratios LARGE/SMALL of each round, and the medians' ratios
# (median-ratio.py, as console-overhead.sh and compare-builds.sh).
# Every run's full output is kept in SMALL/../scale-runs/. $ONCE_BENCH
# names once-bench (default: the one on PATH); $ONCED is passed on, as
# once-bench reads it.
set -eu

small=${1:?usage: scale.sh SMALL LARGE [ROUNDS [ONCE-BENCH OPTIONS...]]}
large=${2:?usage: scale.sh SMALL LARGE [ROUNDS [ONCE-BENCH OPTIONS...]]}
rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
bench=${ONCE_BENCH:-once-bench}
out=$(dirname "$small")/scale-runs
mkdir -p "$out"

rate() { awk '/granted requests/ { print $3; exit }' "$1"; }
cores() { awk '/cpu cores used by onced/ { print $6; exit }' "$1"; }
memory() { sed -n 's/^once-bench: onced memory: //p' "$1"; }

rates_small=
rates_large=
cpu_small=
cpu_large=
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    for side in small large; do
        dir=$small
        [ "$side" = large ] && dir=$large
        f=$out/$round-$side
        "$bench" --reuse "$dir" "$@" >"$f.out" 2>"$f.err" || {
            echo "scale.sh: once-bench failed on $dir; see $f.err" >&2
            exit 1
        }
        r=$(rate "$f.out")
        c=$(cores "$f.out")
        per_cpu=$(awk -v r="$r" -v c="$c" 'BEGIN { printf "%.0f", r / c }')
        printf 'round %d %-5s %8s requests/s  %6s per onced cpu-s  %s\n' \
            "$round" "$side" "$r" "$per_cpu" "$(memory "$f.err")"
        if [ "$side" = small ]; then
            rs=$r
            ps=$per_cpu
            rates_small="$rates_small $r"
            cpu_small="$cpu_small $per_cpu"
        else
            rates_large="$rates_large $r"
            cpu_large="$cpu_large $per_cpu"
            awk -v a="$rs" -v b="$r" -v pa="$ps" -v pb="$per_cpu" \
                -v n="$round" 'BEGIN { printf "round %d ratio large/small " \
                "%.3f (per onced cpu-s %.3f)\n", n, b / a, pb / pa }'
        fi
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
ratio=$(dirname "$0")/median-ratio.py
python3 "$ratio" small "$rates_small" large "$rates_large"
printf 'per onced cpu-s: '
python3 "$ratio" small "$cpu_small" large "$cpu_large"
