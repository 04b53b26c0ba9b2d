#!/bin/sh
# Tests of `mprof run` with a stand-in library (cli_dummy_preload.c), so
# that they check the command itself: option errors, where libmprof.so is
# looked for, the environment the program gets, and that exit statuses and
# signals pass through.
#
# Usage: cli_run.sh MPROF DUMMY_PRELOAD_SO
set -u
MPROF=$1
DUMMY=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS STDERR_SUBSTRING COMMAND...: runs COMMAND, checks its exit
# status and that stderr contains the substring ("" = anything).
expect() {
    want_status=$1
    want_text=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "$* exited $status, want $want_status; stderr: $(cat "$tmp/err")"
    elif [ -n "$want_text" ] && ! grep -qF -- "$want_text" "$tmp/err"; then
        fail "$*: stderr lacks '$want_text': $(cat "$tmp/err")"
    fi
}

# --- command-line errors: status 2 and a message saying what to do
unset MPROF_LIB MPROF_HEAP MPROF_CPU
export MPROF_LIB="$DUMMY"
expect 2 "no program given" "$MPROF" run
expect 2 "no program given" "$MPROF" run --rate 1
expect 2 "no program given" "$MPROF" run --
expect 2 "--rate needs" "$MPROF" run --rate abc /bin/true
expect 2 "--rate needs" "$MPROF" run --rate -5 /bin/true
expect 2 "--rate needs" "$MPROF" run --rate=12x /bin/true
expect 2 "--rate needs" "$MPROF" run --rate
expect 2 "--hz needs" "$MPROF" run --hz 0 /bin/true
expect 2 "--hz needs" "$MPROF" run --hz 100000 /bin/true
expect 2 "--http needs" "$MPROF" run --http 6060 /bin/true
expect 2 "--http needs" "$MPROF" run --http localhost:http /bin/true
expect 2 "--heap needs" "$MPROF" run --heap= /bin/true
expect 2 "--cpu needs" "$MPROF" run --cpu
expect 2 "unknown option '--bogus'" "$MPROF" run --bogus /bin/true
expect 2 "put -- before the program" "$MPROF" run -x /bin/true
expect 0 "" "$MPROF" run --help

# --- library lookup
expect 2 "MPROF_LIB=$tmp/missing/libmprof.so" \
    env MPROF_LIB="$tmp/missing/libmprof.so" "$MPROF" run -- /bin/sh -c 'exit 7'
unset MPROF_LIB
mkdir -p "$tmp/prefix/bin" "$tmp/prefix/lib/mprof"
cp "$MPROF" "$tmp/prefix/bin/mprof"
expect 2 "cannot find libmprof.so" "$tmp/prefix/bin/mprof" run /bin/true
for dir in lib/mprof lib bin; do
    # Each candidate directory in turn; the later ones in this loop come
    # first in the search, so each step also checks the order.
    cp "$DUMMY" "$tmp/prefix/$dir/libmprof.so"
    rm -f "$tmp/report"
    expect 0 "" env CLI_TEST_PRELOAD_REPORT="$tmp/report" "$tmp/prefix/bin/mprof" run /bin/true
    resolved=$(cd "$tmp/prefix/$dir" && pwd -P)/libmprof.so
    grep -qx "LD_PRELOAD=$resolved" "$tmp/report" 2>/dev/null ||
        fail "library in $dir not used: $(cat "$tmp/report" 2>/dev/null)"
done
export MPROF_LIB="$DUMMY"

# --- exit status and signals pass through (mprof execs the program)
expect 7 "" "$MPROF" run -- /bin/sh -c 'exit 7'
expect 7 "" "$MPROF" run /bin/sh -c 'exit 7'
expect 0 "" "$MPROF" run --rate 1 /bin/true
expect 143 "" /bin/sh -c "\"$MPROF\" run -- /bin/sh -c 'kill -TERM \$\$'"
expect 127 "cannot run '$tmp/no-such-program'" "$MPROF" run "$tmp/no-such-program"

# --- the program's environment
cd "$tmp" || exit 1
rm -f report
expect 0 "" env CLI_TEST_PRELOAD_REPORT="$tmp/report" "$MPROF" run --rate 1 --cpu cpu.pb.gz \
    --hz 250 --http 127.0.0.1:6061 -- /bin/true
dummy_abs=$(cd "$(dirname "$DUMMY")" && pwd -P)/$(basename "$DUMMY")
for line in preloaded MPROF_RATE=1 "MPROF_CPU=$(pwd -P)/cpu.pb.gz" MPROF_CPU_HZ=250 \
    MPROF_HTTP=127.0.0.1:6061 "LD_PRELOAD=$dummy_abs"; do
    grep -qxF "$line" report || fail "program environment lacks '$line': $(cat report)"
done
grep -q '^MPROF_HEAP=' report && fail "--cpu alone must not add a heap profile: $(cat report)"

# Default heap profile, absolute, with '%' in the directory escaped.
mkdir -p "$tmp/50%dir"
cd "$tmp/50%dir" || exit 1
rm -f "$tmp/report"
expect 0 "" env CLI_TEST_PRELOAD_REPORT="$tmp/report" "$MPROF" run /bin/true
want="MPROF_HEAP=$(pwd -P | sed 's/%/%%/g')/mprof.heap.%p.pb.gz"
grep -qxF "$want" "$tmp/report" || fail "default heap profile: want '$want': $(cat "$tmp/report")"

# MPROF_HEAP from the environment is left alone; LD_PRELOAD entries kept.
rm -f "$tmp/report"
expect 0 "" env MPROF_HEAP=/elsewhere/h.pb.gz LD_PRELOAD="$dummy_abs" \
    CLI_TEST_PRELOAD_REPORT="$tmp/report" "$MPROF" run /bin/true
grep -qxF "MPROF_HEAP=/elsewhere/h.pb.gz" "$tmp/report" || fail "MPROF_HEAP overridden: $(cat "$tmp/report")"
grep -qxF "LD_PRELOAD=$dummy_abs:$dummy_abs" "$tmp/report" || fail "LD_PRELOAD not prepended: $(cat "$tmp/report")"
cd "$tmp" || exit 1

if [ "$failures" -ne 0 ]; then
    echo "cli_run: $failures failure(s)" >&2
    exit 1
fi
echo "cli_run: ok"
