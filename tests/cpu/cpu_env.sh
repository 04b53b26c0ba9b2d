#!/bin/sh
# MPROF_CPU / MPROF_CPU_HZ with LD_PRELOAD on an unmodified program: the
# profile of the whole run is written at exit, "%p" is the pid, the
# announcement is printed once, bad rates are refused with one warning and
# the default used, and an unwritable destination does not break the
# program.
#
# usage: cpu_env.sh LIBMPROF TEST_CPU_STRESS
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2

run() { # run HZ_VALUE PROFILE_PATTERN [VAR=VALUE...]
    _hz=$1
    _p=$2
    shift 2
    timeout 60 env LD_PRELOAD="$LIB" MPROF_CPU="$_p" MPROF_CPU_HZ="$_hz" "$@" "$BIN" burn 300 \
        >"$T/out.txt" 2>"$T/err.txt"
}

# Good rate, %p in the name, and a heap profile at the same time.
run 500 "$T/env.%p.pprof" MPROF_HEAP="$T/heap.pprof" MPROF_RATE=1
cat "$T/err.txt"
P=$(ls "$T"/env.*.pprof)
check_expr "%p expanded to a pid" "$(basename "$P" | tr -cd 0-9 | wc -c) > 0"
N=$(grep -c "^mprof: wrote CPU profile to $P (view with: go tool pprof -top $P, or mprof top $P)\$" "$T/err.txt" || true)
check_expr "announced once on stderr (got $N)" "$N == 1"
"$GO" tool pprof -raw "$P" >"$T/raw.txt" 2>&1
check_grep_re "MPROF_CPU_HZ=500 gives a period of 2 ms" "Period: 2000000\$" "$T/raw.txt"
check_grep_re "comment names the per-thread timers" "Comment: .*per-thread CPU-time timers at 500 Hz" "$T/raw.txt"
check_expr "heap profile written alongside" "$(stat -c %s "$T/heap.pprof" 2>/dev/null || echo 0) > 0"
pprof_top "$T/top.txt" "$P"
BURN=$(cum_ms "$T/top.txt" stress_burn_fn)
check_expr "whole run profiled: stress_burn_fn ${BURN}ms of 300" "$BURN >= 210 && $BURN <= 390"
rm -f "$P"

# Bad rates: one warning each, default 100 Hz.
for bad in abc 0 20000 -5; do
    run "$bad" "$T/bad.pprof"
    N=$(grep -c "MPROF_CPU_HZ" "$T/err.txt" || true)
    check_expr "MPROF_CPU_HZ=$bad: one warning (got $N)" "$N == 1"
    "$GO" tool pprof -raw "$T/bad.pprof" >"$T/raw.txt" 2>&1
    check_grep_re "MPROF_CPU_HZ=$bad: default period 10 ms" "Period: 10000000\$" "$T/raw.txt"
    rm -f "$T/bad.pprof"
done

# The setitimer fallback, forced: still a profile, and it says so.
run 100 "$T/itimer.pprof" MPROF_CPU_ITIMER=1
"$GO" tool pprof -raw "$T/itimer.pprof" >"$T/raw.txt" 2>&1
check_grep_re "fallback named in the profile's comments" "Comment: .*setitimer(ITIMER_PROF)" "$T/raw.txt"
pprof_top "$T/top.txt" "$T/itimer.pprof"
BURN=$(cum_ms "$T/top.txt" stress_burn_fn)
check_expr "setitimer fallback samples: stress_burn_fn ${BURN}ms of 300" "$BURN >= 210 && $BURN <= 390"

# A ring too small to keep up (a test-only setting): the loss is a sample
# of its own, named, never silent.
run 1000 "$T/lost.pprof" MPROF_TEST_CPU_RING=2
pprof_top "$T/top.txt" "$T/lost.pprof"
BURN=$(cum_ms "$T/top.txt" stress_burn_fn)
LOST=$(cum_ms "$T/top.txt" mprof_lost_samples)
"$GO" tool pprof -raw "$T/lost.pprof" >"$T/raw.txt" 2>&1
echo "ring of 2: stress_burn_fn ${BURN}ms, mprof_lost_samples ${LOST}ms"
check_expr "lost samples shown as mprof_lost_samples" "$LOST > 0"
check_expr "recorded + lost account for the CPU: ${BURN} + ${LOST} of 300 ms" \
    "$BURN + $LOST >= 210 && $BURN + $LOST <= 390"
check_grep_re "loss reported in a comment" "Comment: .*samples lost" "$T/raw.txt"

# A program with its own getenv: bash's finds nothing while bash's main has
# not run, which is when the library constructor reads MPROF_CPU.
rc=0
timeout 60 env LD_PRELOAD="$LIB" MPROF_CPU="$T/bash.pprof" MPROF_CPU_HZ=500 \
    bash -c 'i=0; while [ $i -lt 100000 ]; do i=$((i + 1)); done' 2>"$T/err.txt" || rc=$?
check_expr "bash profiled: exit 0" "$rc == 0"
check_expr "bash profiled: profile written" "$(stat -c %s "$T/bash.pprof" 2>/dev/null || echo 0) > 0"
"$GO" tool pprof -raw "$T/bash.pprof" >"$T/raw.txt" 2>&1 || true
check_grep_re "bash profiled: MPROF_CPU_HZ=500 seen" "Period: 2000000\$" "$T/raw.txt"

# Unwritable destination: a warning, and the program runs to its end.
rc=0
run 100 "$T/no/such/dir/x.pprof" || rc=$?
cat "$T/err.txt"
check_expr "unwritable MPROF_CPU: program still exits 0" "$rc == 0"
check_grep_re "unwritable MPROF_CPU: says so" "CPU profiler not started" "$T/err.txt"
finish
