#!/usr/bin/env bash
# test_export_cli.sh - `oncectl log export` as an operator runs it: the
# evidence private or sealed, and a hostile DIR refused.
#
#     test_export_cli.sh APPEND_TEST_LOG
#
# Grows a log in a fresh broker home with APPEND_TEST_LOG (as the broker's
# writer would), exports it with $ONCECTL and checks modes, files, exit
# codes and messages. (tests/log/test_export_files.c covers the export
# module case by case; make_test_log.c once-audit on sealed evidence.)
set -u

: "${ONCECTL:?ONCECTL must name the oncectl binary}"
append_log=${1:?usage: test_export_cli.sh APPEND_TEST_LOG}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-export-cli-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
export ONCE_HOME=$tmp/home
. "$(dirname "${BASH_SOURCE[0]}")/../storage/oncectl_cli.sh"

run 0 init
"$append_log" "$ONCE_HOME" once.test/export-cli 1000 350 ||
    fail "append_test_log failed"

# The evidence is personal data: 0700/0600 in plain, the rest public,
# whatever the umask.
exp=$tmp/export
saved_umask=$(umask)
umask 0
run 0 log export "$exp"
umask "$saved_umask"
expect_out 'evidence +in plain, personal data'
expect_mode "$exp" 755
expect_mode "$exp/evidence" 700
expect_mode "$exp/evidence/000" 600
expect_mode "$exp/evidence/003.p/232" 600
expect_mode "$exp/tile/entries/000" 644
expect_mode "$exp/tile/0" 755
expect_mode "$exp/keys.txt" 644

# Or sealed to an auditor's key, so the export can travel.
run 0 keygen "$tmp/auditor"
run 0 log export "$tmp/sealed" --evidence-to "$tmp/auditor.pub"
expect_out "evidence +sealed to the auditor key $tmp/auditor.pub"
expect_file "$tmp/sealed/evidence-sealed/auditor.pub"
expect_file "$tmp/sealed/evidence-sealed/003.p/232"
expect_no_file "$tmp/sealed/evidence"
run 1 log export "$tmp/sealed"
expect_err 'holds evidence sealed to an auditor'
run 1 log export "$exp" --evidence-to "$tmp/auditor.pub"
expect_err 'holds evidence in plain'
run 1 log export "$tmp/sealed2" --evidence-to "$tmp/nokey.pub"
expect_err '\-\-evidence-to: cannot open public key file'
expect_no_file "$tmp/sealed2"

# A hostile DIR: links planted for files and directories, a directory
# others may write. Refused, and nothing written where the links point.
mkdir "$tmp/outside"
echo precious >"$tmp/outside/victim"
mkdir "$tmp/p1" && ln -s "$tmp/outside/victim" "$tmp/p1/README.txt.tmp"
run 1 log export "$tmp/p1"
expect_err 'README.txt.tmp is a symbolic link'
mkdir "$tmp/p2" && ln -s "$tmp/outside" "$tmp/p2/tile"
run 1 log export "$tmp/p2"
expect_err 'p2/tile is a symbolic link'
checks=$((checks + 1))
[ "$(cat "$tmp/outside/victim")" = precious ] &&
    [ "$(ls "$tmp/outside")" = victim ] ||
    fail "something was written through a planted link: $(ls -l "$tmp/outside")"
mkdir -m 777 "$tmp/open"
run 1 log export "$tmp/open"
expect_err 'group or others may write'
expect_no_file "$tmp/open/checkpoint"

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
