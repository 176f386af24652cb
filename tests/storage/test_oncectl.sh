#!/usr/bin/env bash
# test_oncectl.sh - the operator CLI, run as an operator would.
#
#     test_oncectl.sh APPEND_TEST_LOG ONCE_AUDIT
#
# Runs $ONCECTL (set by meson's test_env) against a broker home in a temp
# directory and checks outputs, files, modes and exit codes: 0 on success,
# 1 when the database or a file refuses, 2 on a usage error, with every
# message on stderr prefixed "oncectl: ". The log commands run on a log
# grown by APPEND_TEST_LOG as the broker's writer would grow it, and the
# exports are checked with ONCE_AUDIT.
set -u

: "${ONCECTL:?ONCECTL must name the oncectl binary}"
append_log=${1:?usage: test_oncectl.sh APPEND_TEST_LOG ONCE_AUDIT}
once_audit=${2:?usage: test_oncectl.sh APPEND_TEST_LOG ONCE_AUDIT}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-cli-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
. "$(dirname "${BASH_SOURCE[0]}")/oncectl_cli.sh"

# expect_conf HOME LINE: once.conf of HOME holds exactly that line.
expect_conf() {
    checks=$((checks + 1))
    grep -qxF -- "$2" "$1/once.conf" || fail "$1/once.conf lacks '$2'"
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
# --iterations is a plain decimal number (lib/text_fields.c): no sign, no
# blank, no leading zero, nothing after it. Refused before any home is read.
for bad in -1 ' 1' '+1' 01 1x '' 1000001 18446744073709551616; do
    run 2 top --iterations "$bad"
    expect_err '--iterations takes 0 to 1000000'
done

# ---- commands on a home that does not exist ----
run 1 --home "$tmp/nowhere" dept list
expect_err 'no broker home at .*nowhere.*init'
[ ! -e "$tmp/nowhere" ] || fail "dept list created $tmp/nowhere"

# ---- init ----
run 2 --home "$home" init --listen 'not an endpoint'
expect_err "invalid --listen"
run 2 --home "$home" init --name 'Bad Name'
expect_err "invalid --name"
run 2 --home "$home" init --log-origin 'once test'
expect_err "invalid --log-origin 'once test'"
run 2 --home "$home" init --log-origin 'once+test'
expect_err "invalid --log-origin"
run 2 --home "$home" init --log-origin ''
expect_err "invalid --log-origin"
[ ! -e "$home" ] || fail "a refused init left $home behind"
run 0 --home "$home" init --listen tcp://127.0.0.1:17700 --name test-broker
expect_out "created broker home $home"
expect_out "audit key +$home/audit.key"
expect_out 'log origin +test-broker$'
expect_out 'broker public key: [0-9a-f]{64}$'
expect_mode "$home" 700
expect_mode "$home/broker.key" 600
expect_mode "$home/broker.pub" 644
expect_mode "$home/audit.key" 600
grep -qxE '[0-9a-f]{64}' "$home/audit.key" ||
    fail "audit.key is not one line of 64 hex digits"
[ "$(wc -c <"$home/audit.key")" -eq 65 ] || fail "audit.key is not 65 bytes"
[ "$(cat "$home/audit.key")" != "$(cat "$home/broker.key")" ] ||
    fail "audit.key is the broker key"
expect_no_file "$home/audit.key.pub"
expect_conf "$home" 'audit_key = audit.key'
# The origin defaults to the broker name.
expect_conf "$home" 'log_origin = test-broker'
[ -d "$home/db" ] || fail "init made no database"
grep -qx 'listen = tcp://127.0.0.1:17700' "$home/once.conf" ||
    fail "once.conf lacks the listen endpoint"
grep -qx 'name = test-broker' "$home/once.conf" ||
    fail "once.conf lacks the broker name"
grep -qx 'database = db' "$home/once.conf" || fail "once.conf lacks database"
grep -qx 'map_size_mb = 16384' "$home/once.conf" ||
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
expect_conf "$tmp/home2" 'log_origin = once-broker'
[ "$(cat "$tmp/home2/audit.key")" != "$(cat "$home/audit.key")" ] ||
    fail "two homes got the same audit key"
run 2 --home "$home" init "$tmp/home3"
expect_err 'two homes given'
run 0 init "$tmp/home3" --name gov-broker \
    --log-origin once.example.gov/exchange-log
expect_conf "$tmp/home3" 'name = gov-broker'
expect_conf "$tmp/home3" 'log_origin = once.example.gov/exchange-log'
# A failed init leaves nothing behind, the audit key included.
mkdir -p "$tmp/home4/db"
run 1 init "$tmp/home4"
expect_err 'already exists'
for f in once.conf broker.key broker.pub audit.key; do
    expect_no_file "$tmp/home4/$f"
done

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

# ---- log ----
run 0 log --help
expect_out 'log status'
expect_out 'log export DIR \[--from N\] \[--to N\]'
run 0 log export --help
expect_out 'once-audit verify DIR --key broker.pub'
expect_out '--from N'
run 0 --help
expect_out 'log export DIR'
run 2 log
expect_err "'log' needs a command"
run 2 log frobnicate
expect_err "unknown command 'log frobnicate'"

lhome=$tmp/loghome
origin=once.test/exchange-log
run 0 --home "$lhome" init --log-origin "$origin"
export ONCE_HOME=$lhome

run 2 log status extra
expect_err "unexpected argument 'extra'"
run 2 log export
expect_err 'missing DIR'
run 2 log export "$tmp/x" "$tmp/y"
expect_err "unexpected argument"
run 2 log export "$tmp/x" --from ten
expect_err "invalid --from 'ten'"
run 2 log export "$tmp/x" --from -1
expect_err "invalid --from '-1'"
run 2 log export "$tmp/x" --to 0
expect_err '--to takes a tree size of at least 1'
run 2 log export "$tmp/x" --from 5 --to 5
expect_err '--from 5 is not below --to 5'
run 2 log export "$tmp/x" --to
expect_err "option '--to' needs a value"
run 2 log export "$tmp/x" --bogus
expect_err "unknown option '--bogus'"
expect_no_file "$tmp/x"
run 1 --home "$tmp/nowhere" log status
expect_err 'no broker home'

# An empty log has no signed checkpoint: nothing to export that an auditor
# could verify, so the export is refused, before DIR is made.
run 0 log status
expect_out '^log size +0 leaves$'
expect_out '^checkpoints +0 stored$'
expect_out '^latest checkpoint: none yet'
run 1 log export "$tmp/empty"
expect_err 'the log is empty and no checkpoint has been signed'
expect_no_file "$tmp/empty"

# Once the broker has signed the empty tree, its export is a valid one.
"$append_log" "$lhome" "$origin" 0 1 || fail "append_test_log failed"
run 0 log status
expect_out '^checkpoints +1 stored$'
expect_out '^latest checkpoint, of tree size 0:$'
expect_out "^$origin\$"
run 0 log export "$tmp/empty"
expect_out "exported a tree of 0 leaves to $tmp/empty"
expect_out 'leaves +none: the tree is empty'
expect_file "$tmp/empty/checkpoints/0"
expect_file "$tmp/empty/keys.txt"
checks=$((checks + 1))
"$once_audit" verify "$tmp/empty" --key "$lhome/broker.pub" >"$tmp/audit" 2>&1 ||
    fail "once-audit verify refused the empty export: $(cat "$tmp/audit")"

# 300 leaves in commits of 100: checkpoints of 0, 100, 200 and 300.
"$append_log" "$lhome" "$origin" 300 100 || fail "append_test_log failed"
run 0 log status
expect_out '^log size +300 leaves$'
expect_out '^checkpoints +4 stored$'
expect_out '^latest checkpoint, of tree size 300:$'
expect_out '^300$'
expect_out "^— $origin "
# The note is printed whole, so it can be kept.
sed '1,/^latest checkpoint/d' "$tmp/stdout" >"$tmp/status-note"

# --to picks the newest checkpoint at or below it.
exp=$tmp/export
run 0 log export "$exp" --to 250
expect_out "exported a tree of 200 leaves to $exp"
expect_out 'leaves +0 to 199'
expect_out 'checkpoints +3 '
checks=$((checks + 1))
[ "$(sed -n 2p "$exp/checkpoint")" = 200 ] || fail "export is not of size 200"
for f in checkpoints/0 checkpoints/100 checkpoints/200 tile/0/000.p/200 \
    tile/entries/000.p/200 evidence/000.p/200; do
    expect_file "$exp/$f"
done
expect_no_file "$exp/checkpoints/300"
cp "$exp/checkpoint" "$tmp/kept.checkpoint"

# Extending: the log grows to 1000 leaves; the same directory is brought
# up to date, and the auditor can show that the log only grew.
"$append_log" "$lhome" "$origin" 700 350 || fail "append_test_log failed"
run 0 log export "$exp"
expect_out "exported a tree of 1000 leaves to $exp"
expect_out 'extended +an export of 200 leaves'
expect_file "$exp/tile/entries/003.p/232"
expect_no_file "$exp/tile/entries/000.p"
checks=$((checks + 1))
"$once_audit" consistency "$tmp/kept.checkpoint" "$exp" \
    --key "$lhome/broker.pub" >"$tmp/audit" 2>&1 ||
    fail "once-audit consistency refused the extension: $(cat "$tmp/audit")"
# An extended export is the same as one made at once.
run 0 log export "$tmp/whole"
checks=$((checks + 1))
diff -r "$exp" "$tmp/whole" >"$tmp/diff" 2>&1 ||
    fail "extended and whole exports differ: $(head -5 "$tmp/diff")"
# What log status shows is what the export holds.
run 0 log status
sed '1,/^latest checkpoint/d' "$tmp/stdout" >"$tmp/status-note"
checks=$((checks + 1))
cmp -s "$tmp/status-note" "$exp/checkpoint" ||
    fail "log status shows another checkpoint than the export holds"
run 0 log export "$exp"
expect_out "extended +nothing: $exp held this tree already"
run 1 log export "$exp" --to 300
expect_err 'already holds a tree of 1000 leaves, newer than 300'

# A range: whole bundles from the one holding --from, all hash tiles.
run 0 log export "$tmp/range" --from 300
expect_out 'leaves +256 to 999'
expect_out 'rounded down'
expect_out "once-audit verify $tmp/range --key broker.pub --from 256"
expect_no_file "$tmp/range/tile/entries/000"
expect_file "$tmp/range/tile/entries/001"
expect_file "$tmp/range/tile/0/000"
checks=$((checks + 1))
"$once_audit" consistency "$tmp/kept.checkpoint" "$tmp/range" \
    --key "$lhome/broker.pub" >"$tmp/audit" 2>&1 ||
    fail "once-audit consistency refused the range export: $(cat "$tmp/audit")"

# Another log's export is not extended with this one, and a log whose
# first checkpoint is above --to has nothing to export up to it.
other=$tmp/otherhome
run 0 --home "$other" init
"$append_log" "$other" other.test 100 100 || fail "append_test_log failed"
run 1 --home "$other" log export "$exp"
expect_err 'not a checkpoint of this log'
run 1 --home "$other" log export "$tmp/other" --to 50
expect_err 'no checkpoint of a tree of at most 50 leaves is stored; the oldest is of 100'

# oncectl reads once.conf by onced's rules: a setting onced would refuse
# stops oncectl too, naming the line.
bad=$tmp/badconf
run 0 --home "$bad" init
echo "skew_secods = 30" >>"$bad/once.conf"
run 1 --home "$bad" dept list
expect_err "once.conf line [0-9]+: unknown setting 'skew_secods' in \\[broker\\]"
# The per-department limits are written by init and range checked.
expect_conf "$bad" 'max_sessions_per_department = 4096'
expect_conf "$bad" 'max_in_flight_per_department = 1024'
bad2=$tmp/badlimit
run 0 --home "$bad2" init
echo "max_sessions_per_department = 65537" >>"$bad2/once.conf"
run 1 --home "$bad2" dept list
expect_err "once.conf line [0-9]+: max_sessions_per_department must be 1 to 65536"
sed -i '$d' "$bad2/once.conf"
echo "max_in_flight_per_department = 0" >>"$bad2/once.conf"
run 1 --home "$bad2" dept list
expect_err "once.conf line [0-9]+: max_in_flight_per_department must be 1 to 1000000"
sed -i '$d' "$bad2/once.conf"
echo "max_in_flight_per_department = 7" >>"$bad2/once.conf"
run 0 --home "$bad2" dept list
unset ONCE_HOME

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
