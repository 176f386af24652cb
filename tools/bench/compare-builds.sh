#!/usr/bin/env bash
# Two builds of once against each other: once-bench's granted requests/s
# with each build's own once-bench and onced, alternating old, new, old,
# new... in one run so that both see the same machine state, and the ratio
# new/old of the medians. For a change that must not cost speed (issue 8
# asks for "within noise of before"): build the old commit in a worktree of
# its own (git worktree add --detach DIR COMMIT; meson setup DIR/build;
# ninja -C DIR/build broker/onced tools/bench/once-bench) and give both
# build directories.
#
# Usage: tools/bench/compare-builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [ROUNDS]
#        [-- ONCE-BENCH-OPTIONS...]
# Default: 3 rounds, once-bench --seconds 10 --limit-seconds 0.2.
# Each build runs BUILD/tools/bench/once-bench --onced BUILD/broker/onced.
# Exits 1 when a run fails, 2 on a usage error.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 2 ]; then
  usage >&2
  exit 2
fi
old=$1 new=$2
shift 2
rounds=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  rounds=$1
  shift
fi
case "$rounds" in
  ''|*[!0-9]*|0*) echo "compare-builds: ROUNDS is a number from 1" >&2; exit 2 ;;
esac
if [ $# -gt 0 ]; then
  [ "$1" = "--" ] || { echo "compare-builds: unexpected $1" >&2; exit 2; }
  shift
fi
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(--seconds 10 --limit-seconds 0.2)

for build in "$old" "$new"; do
  for program in tools/bench/once-bench broker/onced; do
    if [ ! -x "$build/$program" ]; then
      echo "compare-builds: no $build/$program (build it first)" >&2
      exit 2
    fi
  done
done

# rate BUILD: one once-bench run of BUILD against its own onced; prints the
# granted requests/s.
rate() {
  local out
  out=$(env -u ONCED "$1/tools/bench/once-bench" --onced "$1/broker/onced" \
          --json "${extra[@]}") || {
    echo "compare-builds: once-bench of $1 failed" >&2
    return 1
  }
  printf '%s' "$out" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["broker"]["requests_per_s"])'
}

old_rates=() new_rates=()
for i in $(seq "$rounds"); do
  r=$(rate "$old") || exit 1
  old_rates+=("$r")
  r=$(rate "$new") || exit 1
  new_rates+=("$r")
  echo "round $i: old ${old_rates[-1]} requests/s, new ${new_rates[-1]}"
done
/usr/bin/python3 "$(dirname "$0")/median-ratio.py" old "${old_rates[*]}" new "${new_rates[*]}"
