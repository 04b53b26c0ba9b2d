#!/bin/sh
# Tests of `mprof run` with a stand-in library (cli_dummy_preload.c), so
# that they check the command itself: option errors, where libmprof.so is
# looked for, the environment the program gets, and that exit statuses and
# signals pass through.
#
# Usage: cli_run.sh MPROF DUMMY_PRELOAD_SO
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
DUMMY=$2

# expect STATUS STDERR_SUBSTRING COMMAND...: runs COMMAND, checks its exit
# status and that stderr contains the substring ("" = anything).
expect() {
    want_status=$1
    want_text=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "$* exited $status, want $want_status; stderr: $(cat "$T/err")"
    elif [ -n "$want_text" ] && ! grep -qF -- "$want_text" "$T/err"; then
        fail "$*: stderr lacks '$want_text': $(cat "$T/err")"
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
expect 2 "--http needs" "$MPROF" run --http 127.0.0.1:65536 /bin/true
# Port 0: a free port the kernel picks, as docs/live.md says.
expect 0 "" "$MPROF" run --http 127.0.0.1:0 -- /bin/true
expect 2 "--heap needs" "$MPROF" run --heap= /bin/true
expect 2 "--cpu needs" "$MPROF" run --cpu
expect 2 "unknown option '--bogus'" "$MPROF" run --bogus /bin/true
expect 2 "did you mean --rate?" "$MPROF" run --rat 1 /bin/true
expect 2 "did you mean --heap?" "$MPROF" run --haep=x /bin/true
expect 2 "--interval needs" "$MPROF" run --interval 0 /bin/true
expect 2 "--trace-buffer needs" "$MPROF" run --trace-buffer 1 /bin/true
expect 2 "put -- before the program" "$MPROF" run -x /bin/true
expect 0 "" "$MPROF" run --help

# --- library lookup
expect 1 "MPROF_LIB=$T/missing/libmprof.so" \
    env MPROF_LIB="$T/missing/libmprof.so" "$MPROF" run -- /bin/sh -c 'exit 7'
unset MPROF_LIB
mkdir -p "$T/prefix/bin" "$T/prefix/lib/mprof"
cp "$MPROF" "$T/prefix/bin/mprof"
expect 1 "libmprof.so, the library mprof run preloads into it, is missing" "$T/prefix/bin/mprof" run /bin/true
for dir in lib/mprof lib bin; do
    # Each candidate directory in turn; the later ones in this loop come
    # first in the search, so each step also checks the order.
    cp "$DUMMY" "$T/prefix/$dir/libmprof.so"
    rm -f "$T/report"
    expect 0 "" env CLI_TEST_PRELOAD_REPORT="$T/report" "$T/prefix/bin/mprof" run /bin/true
    resolved=$(cd "$T/prefix/$dir" && pwd -P)/libmprof.so
    grep -qx "LD_PRELOAD=$resolved" "$T/report" 2>/dev/null ||
        fail "library in $dir not used: $(cat "$T/report" 2>/dev/null)"
done
export MPROF_LIB="$DUMMY"

# --- exit status and signals pass through (mprof execs the program)
expect 7 "" "$MPROF" run -- /bin/sh -c 'exit 7'
expect 7 "" "$MPROF" run /bin/sh -c 'exit 7'
expect 0 "" "$MPROF" run --rate 1 /bin/true
expect 143 "" /bin/sh -c "\"$MPROF\" run -- /bin/sh -c 'kill -TERM \$\$'"
expect 127 "cannot run '$T/no-such-program'" "$MPROF" run "$T/no-such-program"

# --- the program's environment
cd "$T" || exit 1
rm -f report
expect 0 "" env CLI_TEST_PRELOAD_REPORT="$T/report" "$MPROF" run --rate 1 --cpu cpu.pb.gz \
    --hz 250 --http 127.0.0.1:6061 -- /bin/true
dummy_abs=$(cd "$(dirname "$DUMMY")" && pwd -P)/$(basename "$DUMMY")
for line in preloaded MPROF_RATE=1 "MPROF_CPU=$(pwd -P)/cpu.pb.gz" MPROF_CPU_HZ=250 \
    MPROF_HTTP=127.0.0.1:6061 "LD_PRELOAD=$dummy_abs"; do
    grep -qxF "$line" report || fail "program environment lacks '$line': $(cat report)"
done
grep -q '^MPROF_HEAP=' report && fail "--cpu alone must not add a heap profile: $(cat report)"

# Default heap profile, absolute, with '%' in the directory escaped.
mkdir -p "$T/50%dir"
cd "$T/50%dir" || exit 1
rm -f "$T/report"
expect 0 "" env CLI_TEST_PRELOAD_REPORT="$T/report" "$MPROF" run /bin/true
want="MPROF_HEAP=$(pwd -P | sed 's/%/%%/g')/mprof.heap.%p.pb.gz"
grep -qxF "$want" "$T/report" || fail "default heap profile: want '$want': $(cat "$T/report")"

# MPROF_HEAP from the environment is left alone; LD_PRELOAD entries kept.
rm -f "$T/report"
expect 0 "" env MPROF_HEAP=/elsewhere/h.pb.gz LD_PRELOAD="$dummy_abs" \
    CLI_TEST_PRELOAD_REPORT="$T/report" "$MPROF" run /bin/true
grep -qxF "MPROF_HEAP=/elsewhere/h.pb.gz" "$T/report" || fail "MPROF_HEAP overridden: $(cat "$T/report")"
grep -qxF "LD_PRELOAD=$dummy_abs:$dummy_abs" "$T/report" || fail "LD_PRELOAD not prepended: $(cat "$T/report")"

# Flags from the options table: --signal and --interval set their settings;
# --trace - traces to stderr (no file made absolute) and turns the trace on;
# a file option in the environment (MPROF_BLOCK) stands for "a file was asked
# for", so no default heap profile is added.
rm -f "$T/report"
expect 0 "" env CLI_TEST_PRELOAD_REPORT="$T/report" MPROF_BLOCK=/b.pb.gz "$MPROF" run \
    --signal USR2 --interval 5 --trace - --trace-buffer 128 /bin/true
for line in MPROF_SIGNAL=USR2 MPROF_INTERVAL=5 MPROF_TRACE=alloc MPROF_TRACE_FILE=- \
    MPROF_TRACE_BUFFER=128; do
    grep -qxF "$line" "$T/report" || fail "missing $line: $(cat "$T/report")"
done
grep -q '^MPROF_HEAP=' "$T/report" && fail "MPROF_BLOCK in the environment asked for a file: $(cat "$T/report")"
cd "$T" || exit 1

finish
