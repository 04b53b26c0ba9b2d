#!/bin/sh
# `mprof --help` and friends: the usage lists every MPROF_* variable and the
# way to view a profile, docs/cli.md documents the same variables, and bad
# command lines exit 2 with a pointer to the help.
#
# Usage: cli_help.sh MPROF DOCS_CLI_MD
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
DOCS=$2

expect() {
    want_status=$1
    want_text=$2
    stream=$3
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "$* exited $status, want $want_status; stderr: $(cat "$T/err")"
    elif [ -n "$want_text" ] && ! grep -qF -- "$want_text" "$T/$stream"; then
        fail "$*: $stream lacks '$want_text'"
    fi
}

variables="MPROF_RATE MPROF_HEAP MPROF_CPU MPROF_CPU_HZ MPROF_HTTP MPROF_SIGNAL MPROF_INTERVAL"
for how in --help help -h; do
    "$MPROF" $how >"$T/help" 2>&1 || fail "mprof $how exited $?"
    for v in $variables; do
        grep -q "$v=" "$T/help" || fail "mprof $how does not mention $v"
    done
    for text in "mprof run" "mprof top" "go tool pprof -top" "--sample-index" "--heap" "--cpu" \
        "--rate" "--hz" "--http" "524288" "%p"; do
        grep -qF -- "$text" "$T/help" || fail "mprof $how does not mention '$text'"
    done
done

# The docs describe every variable the help lists, and no other.
grep -o 'MPROF_[A-Z_]*=' "$T/help" | tr -d = | sort -u >"$T/help-vars"
while read -r v; do
    grep -q "$v" "$DOCS" || fail "$DOCS does not document $v"
done <"$T/help-vars"

# Test knobs and mprof's own variables are not the user's business.
grep -q 'MPROF_TEST_\|MPROF_ROOT_PID' "$T/help" && fail "the help lists a test knob or MPROF_ROOT_PID"

# The docs' tables come from the same table (scripts/docs-tables.sh checks
# them against the files); both forms print and the flags line up.
expect 0 "| \`MPROF_RATE\` |" out "$MPROF" help --markdown settings
expect 0 "| \`--rate N\` | \`MPROF_RATE\` |" out "$MPROF" help --markdown run
expect 2 "--markdown takes settings or run" err "$MPROF" help --markdown bogus

expect 2 "MPROF_RATE" err "$MPROF"
expect 0 "mprof 0." out "$MPROF" --version
expect 0 "mprof run" out "$MPROF" help run
expect 0 "--sample-index" out "$MPROF" help top
expect 0 "--cum" out "$MPROF" top --help
expect 2 "mprof --help" err "$MPROF" frobnicate
expect 2 "mprof --help" err "$MPROF" --frobnicate
expect 2 "mprof --help" err "$MPROF" help frobnicate
expect 2 "no profile given" err "$MPROF" top
expect 2 "--base needs a profile" err "$MPROF" top --base a.pb.gz
expect 2 "-o needs" err "$MPROF" merge a.pb.gz -o
expect 2 "add -o OUT" err "$MPROF" merge a.pb.gz
expect 2 "no profiles given" err "$MPROF" merge -o x.pb.gz
expect 2 "-n needs" err "$MPROF" top -n x a.pb.gz
expect 2 "-n needs" err "$MPROF" top a.pb.gz -n
expect 2 "unknown option '--bogus'" err "$MPROF" top --bogus a.pb.gz
expect 2 "--sample-index needs" err "$MPROF" top --sample-index= a.pb.gz

finish
