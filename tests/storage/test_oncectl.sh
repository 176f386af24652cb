#!/usr/bin/env bash
# test_oncectl.sh - the operator CLI, run as an operator would.
#
# Runs $ONCECTL (set by meson's test_env) against a broker home in a temp
# directory and checks outputs, files, modes and exit codes: 0 on success,
# 1 when the database or a file refuses, 2 on a usage error, with every
# message on stderr prefixed "oncectl: ".
set -u

: "${ONCECTL:?ONCECTL must name the oncectl binary}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-cli-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs oncectl, keeps stdout in $out and
# stderr in $err, and checks the exit status.
run() {
    local expected=$1 status
    shift
    checks=$((checks + 1))
    "$ONCECTL" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    status=$?
    out=$(cat "$tmp/stdout")
    err=$(cat "$tmp/stderr")
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

expect_mode() {
    local mode
    checks=$((checks + 1))
    mode=$(stat -c %a "$1")
    [ "$mode" = "$2" ] || fail "$1 has mode $mode, expected $2"
}

# ---- help and usage errors ----
run 0 --help
expect_out 'usage: oncectl \[--home HOME\] COMMAND'
expect_out 'dept add ID --key PUBFILE'
expect_out 'grant revoke --requester D --type T --purpose P'
run 0 -h
expect_out 'Exit status'
run 0 grant add --help
expect_out 'usage: oncectl \[--home HOME\] grant add --requester D'
run 0 dept --help
expect_out 'dept suspend ID'
run 2
expect_err 'no command given'
run 2 frobnicate
expect_err "unknown command 'frobnicate'"
run 2 dept
expect_err "'dept' needs a command"
run 2 dept frobnicate
expect_err "unknown command 'dept frobnicate'"
run 2 --bogus
expect_err "unknown option '--bogus'"
run 2 --home
expect_err "option '--home' needs a value"
run 2 keygen
expect_err 'missing OUT'
run 2 keygen "$tmp/a.key" "$tmp/b.key"
expect_err "unexpected argument"

# ---- commands on a home that does not exist ----
run 1 --home "$tmp/nowhere" dept list
expect_err 'no broker home at .*nowhere.*init'
[ ! -e "$tmp/nowhere" ] || fail "dept list created $tmp/nowhere"

# ---- init ----
run 2 --home "$home" init --listen 'not an endpoint'
expect_err "invalid --listen"
run 2 --home "$home" init --name 'Bad Name'
expect_err "invalid --name"
[ ! -e "$home" ] || fail "a refused init left $home behind"
run 0 --home "$home" init --listen tcp://127.0.0.1:17700 --name test-broker
expect_out "created broker home $home"
expect_out 'broker public key: [0-9a-f]{64}$'
expect_mode "$home" 700
expect_mode "$home/broker.key" 600
expect_mode "$home/broker.pub" 644
[ -d "$home/db" ] || fail "init made no database"
grep -qx 'listen = tcp://127.0.0.1:17700' "$home/once.conf" ||
    fail "once.conf lacks the listen endpoint"
grep -qx 'name = test-broker' "$home/once.conf" ||
    fail "once.conf lacks the broker name"
grep -qx 'database = db' "$home/once.conf" || fail "once.conf lacks database"
grep -qx 'map_size_mb = 1024' "$home/once.conf" ||
    fail "once.conf lacks map_size_mb"
grep -qx '\[broker\]' "$home/once.conf" || fail "once.conf lacks [broker]"
pub_hex=$(cat "$home/broker.pub")
grep -q "broker public key: $pub_hex" "$tmp/stdout" ||
    fail "init printed another key than broker.pub holds"
run 1 --home "$home" init
expect_err 'once.conf already exists'

# init DIR, and the defaults in once.conf
run 0 init "$tmp/home2"
grep -qx 'listen = tcp://127.0.0.1:7700' "$tmp/home2/once.conf" ||
    fail "default listen endpoint missing"
grep -qx 'name = once-broker' "$tmp/home2/once.conf" ||
    fail "default broker name missing"
run 2 --home "$home" init "$tmp/home3"
expect_err 'two homes given'

# ---- keygen ----
run 0 keygen "$tmp/amr.key"
expect_out '^[0-9a-f]{64}$'
[ "$out" = "$(cat "$tmp/amr.key.pub")" ] ||
    fail "keygen printed another key than amr.key.pub holds"
expect_mode "$tmp/amr.key" 600
expect_mode "$tmp/amr.key.pub" 644
grep -qxE '[0-9a-f]{64}' "$tmp/amr.key" || fail "amr.key is not one hex line"
run 1 keygen "$tmp/amr.key"
expect_err 'already exists'
for d in tax police bank; do
    run 0 keygen "$tmp/$d.key"
done
amr_prefix=$(cut -c1-16 "$tmp/amr.key.pub")

# ---- dept ----
export ONCE_HOME=$home
run 0 dept add amr --key "$tmp/amr.key.pub" --name 'Market Regulation'
expect_out "added department amr \\(key $amr_prefix\\)"
run 0 dept add tax --name 'State Taxation' --key "$tmp/tax.key.pub"
run 0 dept add police --key="$tmp/police.key.pub"
run 0 dept add bank --key "$tmp/bank.key.pub"
run 1 dept add amr --key "$tmp/amr.key.pub"
expect_err 'department amr already exists'
run 1 dept add amr2 --key "$tmp/amr.key.pub"
expect_err 'already belongs to department amr'
run 2 dept add tax2
expect_err 'missing --key'
run 2 dept add 'Tax Office' --key "$tmp/tax.key.pub"
expect_err "invalid department id 'Tax Office'"
run 2 dept add tax2 --key
expect_err "option '--key' needs a value"
run 2 dept add tax2 --colour red
expect_err "unknown option '--colour'"
run 1 dept add tax2 --key "$tmp/missing.pub"
expect_err 'cannot open public key file'
# A secret key file given as a public one still parses as hex, but a
# corrupt file does not.
echo 'not hex' >"$tmp/bad.pub"
run 1 dept add tax2 --key "$tmp/bad.pub"
expect_err 'not one line of 64 hex digits'

run 0 dept list
expect_out '^ID +STATUS +KEY +NAME$'
expect_out "^amr +active +$amr_prefix +Market Regulation$"
expect_out '^tax +active +[0-9a-f]{16} +State Taxation$'
# Rows come in id order.
[ "$(sed -n 2p "$tmp/stdout" | cut -d' ' -f1)" = amr ] ||
    fail "dept list is not in id order"
[ "$(sed -n 5p "$tmp/stdout" | cut -d' ' -f1)" = tax ] ||
    fail "dept list is not in id order"
run 2 dept list extra
expect_err "unexpected argument 'extra'"

run 0 dept suspend tax
expect_out 'department tax is now suspended'
run 0 dept list
expect_out '^tax +suspended '
run 0 dept suspend tax
expect_out 'already suspended'
run 0 dept resume tax
expect_out 'department tax is now active'
run 0 dept list
expect_out '^tax +active '
run 1 dept suspend nobody
expect_err 'department nobody is not registered'
run 2 dept suspend
expect_err 'missing ID'

# ---- type ----
run 0 type add business-licence --issuer amr --subject enterprise \
    --fields name,legal-representative,address,registered-capital
expect_out 'added record type business-licence \(4 fields\)'
run 0 type add resident-id --issuer police --issuer tax --subject person \
    --fields name --fields birth-date
run 1 type add business-licence --issuer amr --subject enterprise \
    --fields name
expect_err 'record type business-licence already exists'
run 1 type add seal --issuer nobody --subject enterprise --fields shape
expect_err 'issuer nobody is not a registered department'
run 2 type add seal --issuer police --subject planet --fields shape
expect_err "invalid --subject 'planet'"
run 2 type add seal --subject enterprise --fields shape
expect_err 'missing --issuer'
run 2 type add seal --issuer police --subject enterprise
expect_err 'missing --fields'
run 2 type add seal --issuer police --subject enterprise --fields a,,b
expect_err "empty name in --fields"
run 2 type add seal --issuer police --subject enterprise --fields Shape
expect_err "invalid name 'Shape' in --fields"
run 1 type add seal --issuer police --subject enterprise --fields a,b,a
expect_err 'field a is listed twice'

run 0 type list
expect_out '^NAME +SUBJECT +ISSUERS +FIELDS$'
expect_out '^business-licence +enterprise +amr +name,legal-representative,address,registered-capital$'
expect_out '^resident-id +person +police,tax +name,birth-date$'

# ---- grant ----
run 0 grant add --requester tax --type business-licence \
    --purpose 'tax registration' --fields name,address
expect_out 'granted tax 2 field\(s\) of business-licence for purpose "tax registration"'
run 0 grant add --requester bank --type business-licence \
    --purpose 'account opening' --fields name,legal-representative
run 1 grant add --requester tax --type business-licence \
    --purpose 'tax registration' --fields name
expect_err 'already has a grant'
run 1 grant add --requester tax --type business-licence \
    --purpose audit --fields name,shoe-size
expect_err 'shoe-size is not a field of record type business-licence'
run 1 grant add --requester nobody --type business-licence \
    --purpose audit --fields name
expect_err 'requester nobody is not a registered department'
run 1 grant add --requester tax --type seal --purpose audit --fields name
expect_err 'record type seal is not in the catalogue'
run 2 grant add --requester tax --type business-licence --fields name
expect_err 'missing --purpose'
run 2 grant add --requester tax --type business-licence --purpose '' \
    --fields name
expect_err 'missing --purpose'
run 2 grant add --requester tax --type business-licence --purpose audit
expect_err 'missing --fields'
run 2 grant add --type business-licence --purpose audit --fields name
expect_err 'missing --requester'
run 2 grant revoke --requester tax --type business-licence --purpose a \
    --fields name
expect_err '--fields is not an option'

run 0 grant list
expect_out '^REQUESTER +TYPE +FIELDS +PURPOSE$'
expect_out '^bank +business-licence +name,legal-representative +account opening$'
expect_out '^tax +business-licence +name,address +tax registration$'

run 0 grant revoke --requester tax --type business-licence \
    --purpose 'tax registration'
expect_out 'revoked the grant of tax on business-licence'
run 1 grant revoke --requester tax --type business-licence \
    --purpose 'tax registration'
expect_err 'tax has no grant on business-licence for purpose "tax registration"'
run 0 grant list
expect_no_out '^tax '
expect_out '^bank '

# ---- the database location comes from once.conf ----
unset ONCE_HOME
mv "$home/db" "$home/policy-db"
run 1 --home "$home" dept list
expect_err 'no database at'
sed -i 's/^database = db$/database = policy-db/' "$home/once.conf"
run 0 --home "$home" dept list
expect_out '^amr '
printf '[broker]\nmap_size_mb = lots\n' >>"$home/once.conf"
run 1 --home "$home" dept list
expect_err 'once.conf line [0-9]+: map_size_mb must be a positive number'

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
