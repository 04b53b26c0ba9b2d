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

# The help of each command lists exactly the options its parser takes:
# every option in `mprof help CMD` is accepted (a missing file or program
# is the complaint, not the option), and every run flag of the options
# table is in `mprof help run`.
for cmd in run top dump; do
    "$MPROF" help $cmd >"$T/help-$cmd" 2>&1 || fail "mprof help $cmd exited $?"
    opts=$(sed -n 's/^  \(-[-a-z]*\).*/\1/p' "$T/help-$cmd" | sort -u)
    [ -n "$opts" ] || fail "mprof help $cmd lists no option"
    for o in $opts; do
        [ "$o" = "--help" ] && continue
        "$MPROF" $cmd "$o" x -- >"$T/o.out" 2>"$T/o.err"
        if grep -q "unknown option" "$T/o.err"; then
            fail "mprof help $cmd lists $o, which mprof $cmd refuses: $(cat "$T/o.err")"
        else pass "mprof $cmd takes $o, as its help says"; fi
    done
done
for flag in $("$MPROF" help --markdown run | sed -n 's/^| `\(--[a-z-]*\)[ `].*/\1/p'); do
    grep -q -- "^  $flag " "$T/help-run" && pass "mprof help run lists $flag" ||
        fail "mprof help run lacks $flag"
done
tr -s '\n ' '  ' <"$T/help-run" | grep -q "without any file option (--heap, .*--heapdump, --trace)" &&
    pass "mprof help run says --heapdump and --trace turn the default heap profile off" ||
    fail "mprof help run does not state the default heap profile's rule"

# "did you mean" for commands and every command's options.
expect 2 "unknown command 'tpo': did you mean top?" err "$MPROF" tpo
expect 2 "unknown option '--verison': did you mean --version?" err "$MPROF" --verison
expect 2 "the commands are run, top, dump and help" err "$MPROF" frobnicate
expect 2 "unknown option '--cmu': did you mean --cum?" err "$MPROF" top --cmu a.pb.gz
expect 2 "did you mean --sample-index?" err "$MPROF" top --sampel-index=cpu a.pb.gz
expect 2 "unknown option '--ppfor': did you mean --pprof?" err "$MPROF" dump --ppfor x d
expect 2 "did you mean --heapdump?" err "$MPROF" run --heapdupm x -- true
# Every Parca configuration the docs give is one Parca accepts: it refuses
# to start without object_storage.
ROOT=$(cd "$(dirname "$DOCS")/.." && pwd)
for doc in "$ROOT/README.md" "$ROOT"/docs/*.md; do
    awk '/^# parca.yaml/ { inblock = 1; has = 0; n++ }
         inblock && /^object_storage:/ { has = 1 }
         inblock && /^```/ { if (!has) bad++; inblock = 0 }
         END { exit bad > 0 }' "$doc" ||
        fail "$doc: a parca.yaml without object_storage"
done
n=$(cat "$ROOT/README.md" "$ROOT"/docs/*.md | grep -c '^# parca.yaml')
check_expr "the Parca configurations checked ($n)" "$n >= 2"

# The synopsis of docs/cli.md names every command.
for cmd in run top dump help; do
    grep -q "^mprof $cmd " "$DOCS" && pass "docs/cli.md's synopsis has mprof $cmd" ||
        fail "docs/cli.md's synopsis lacks mprof $cmd"
done

finish
