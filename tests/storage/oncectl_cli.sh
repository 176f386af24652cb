# oncectl_cli.sh - the checks the oncectl shell tests share, sourced by
# tests/storage/test_oncectl.sh and tests/log/test_export_cli.sh (it was
# written twice, word for word, before). Needs $ONCECTL and a temp dir in
# $tmp; counts in $checks and $failures, which the caller reports.

failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs oncectl, keeps stdout in $out and
# stderr in $err, and checks the exit status and that a refusal's message
# starts with "oncectl: ".
run() {
    local expected=$1 status
    shift
    checks=$((checks + 1))
    "$ONCECTL" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    status=$?
    out=$(cat "$tmp/stdout")
    err=$(cat "$tmp/stderr")
    # Under -Db_sanitize a report may come with the expected status.
    if grep -qE 'Sanitizer|runtime error:' "$tmp/stderr"; then
        fail "oncectl $*: sanitizer report: $err"
        return
    fi
    if [ "$status" -ne "$expected" ]; then
        fail "oncectl $* exited $status, expected $expected" \
             "(stdout: $out) (stderr: $err)"
        return
    fi
    if [ "$expected" -ne 0 ] && [[ "$err" != oncectl:* ]]; then
        fail "oncectl $*: stderr does not start with 'oncectl: ': $err"
    fi
}

expect_out() {
    checks=$((checks + 1))
    grep -qE -- "$1" <<<"$out" || fail "stdout lacks /$1/: $out"
}

expect_no_out() {
    checks=$((checks + 1))
    ! grep -qE -- "$1" <<<"$out" || fail "stdout has /$1/: $out"
}

expect_err() {
    checks=$((checks + 1))
    grep -qE -- "$1" <<<"$err" || fail "stderr lacks /$1/: $err"
}

expect_file() {
    checks=$((checks + 1))
    [ -e "$1" ] || fail "$1 does not exist"
}

# Neither a file nor a link (a dangling one too) at $1.
expect_no_file() {
    checks=$((checks + 1))
    [ ! -e "$1" ] && [ ! -L "$1" ] || fail "$1 exists"
}

expect_mode() {
    local mode
    checks=$((checks + 1))
    mode=$(stat -c %a "$1")
    [ "$mode" = "$2" ] || fail "$1 has mode $mode, expected $2"
}
