#!/bin/sh
# MPROF_CPU / MPROF_CPU_HZ with LD_PRELOAD on an unmodified program: the
# profile of the whole run is written at exit, "%p" is the pid, the
# announcement is printed once, bad rates are refused with one warning and
# the default used, and an unwritable destination does not break the
# program.
#
# usage: cpu_env.sh LIBMPROF TEST_CPU_STRESS
. "$(dirname "$0")/cpu_lib.sh"
LIB=$1
BIN=$2

run() { # run HZ_VALUE PROFILE_PATTERN [VAR=VALUE...]
    _hz=$1
    _p=$2
    shift 2
    timeout 60 env LD_PRELOAD="$LIB" MPROF_CPU="$_p" MPROF_CPU_HZ="$_hz" "$@" "$BIN" burn 300 \
        >"$WORK/out.txt" 2>"$WORK/err.txt"
}

# Good rate, %p in the name, and a heap profile at the same time.
run 500 "$WORK/env.%p.pprof" MPROF_HEAP="$WORK/heap.pprof" MPROF_RATE=1
cat "$WORK/err.txt"
P=$(ls "$WORK"/env.*.pprof)
check "%p expanded to a pid" "$(basename "$P" | tr -cd 0-9 | wc -c) > 0"
N=$(grep -c "^mprof: wrote CPU profile to $P (view with: go tool pprof -top $P)\$" "$WORK/err.txt" || true)
check "announced once on stderr (got $N)" "$N == 1"
"$GO" tool pprof -raw "$P" >"$WORK/raw.txt" 2>&1
check_grep "MPROF_CPU_HZ=500 gives a period of 2 ms" "Period: 2000000\$" "$WORK/raw.txt"
check_grep "comment names the per-thread timers" "Comment: .*per-thread CPU-time timers at 500 Hz" "$WORK/raw.txt"
check "heap profile written alongside" "$(stat -c %s "$WORK/heap.pprof" 2>/dev/null || echo 0) > 0"
pprof_top "$WORK/top.txt" "$P"
BURN=$(cum_ms "$WORK/top.txt" stress_burn_fn)
check "whole run profiled: stress_burn_fn ${BURN}ms of 300" "$BURN >= 210 && $BURN <= 390"
rm -f "$P"

# Bad rates: one warning each, default 100 Hz.
for bad in abc 0 20000 -5; do
    run "$bad" "$WORK/bad.pprof"
    N=$(grep -c "MPROF_CPU_HZ" "$WORK/err.txt" || true)
    check "MPROF_CPU_HZ=$bad: one warning (got $N)" "$N == 1"
    "$GO" tool pprof -raw "$WORK/bad.pprof" >"$WORK/raw.txt" 2>&1
    check_grep "MPROF_CPU_HZ=$bad: default period 10 ms" "Period: 10000000\$" "$WORK/raw.txt"
    rm -f "$WORK/bad.pprof"
done

# The setitimer fallback, forced: still a profile, and it says so.
run 100 "$WORK/itimer.pprof" MPROF_CPU_ITIMER=1
"$GO" tool pprof -raw "$WORK/itimer.pprof" >"$WORK/raw.txt" 2>&1
check_grep "fallback named in the profile's comments" "Comment: .*setitimer(ITIMER_PROF)" "$WORK/raw.txt"
pprof_top "$WORK/top.txt" "$WORK/itimer.pprof"
BURN=$(cum_ms "$WORK/top.txt" stress_burn_fn)
check "setitimer fallback samples: stress_burn_fn ${BURN}ms of 300" "$BURN >= 210 && $BURN <= 390"

# A ring too small to keep up (a test-only setting): the loss is a sample
# of its own, named, never silent.
run 1000 "$WORK/lost.pprof" MPROF_CPU_TEST_RING=2
pprof_top "$WORK/top.txt" "$WORK/lost.pprof"
BURN=$(cum_ms "$WORK/top.txt" stress_burn_fn)
LOST=$(cum_ms "$WORK/top.txt" mprof_lost_samples)
"$GO" tool pprof -raw "$WORK/lost.pprof" >"$WORK/raw.txt" 2>&1
echo "ring of 2: stress_burn_fn ${BURN}ms, mprof_lost_samples ${LOST}ms"
check "lost samples shown as mprof_lost_samples" "$LOST > 0"
check "recorded + lost account for the CPU: ${BURN} + ${LOST} of 300 ms" \
    "$BURN + $LOST >= 210 && $BURN + $LOST <= 390"
check_grep "loss reported in a comment" "Comment: .*samples lost" "$WORK/raw.txt"

# A program with its own getenv: bash's finds nothing while bash's main has
# not run, which is when the library constructor reads MPROF_CPU.
rc=0
timeout 60 env LD_PRELOAD="$LIB" MPROF_CPU="$WORK/bash.pprof" MPROF_CPU_HZ=500 \
    bash -c 'i=0; while [ $i -lt 100000 ]; do i=$((i + 1)); done' 2>"$WORK/err.txt" || rc=$?
check "bash profiled: exit 0" "$rc == 0"
check "bash profiled: profile written" "$(stat -c %s "$WORK/bash.pprof" 2>/dev/null || echo 0) > 0"
"$GO" tool pprof -raw "$WORK/bash.pprof" >"$WORK/raw.txt" 2>&1 || true
check_grep "bash profiled: MPROF_CPU_HZ=500 seen" "Period: 2000000\$" "$WORK/raw.txt"

# Unwritable destination: a warning, and the program runs to its end.
rc=0
run 100 "$WORK/no/such/dir/x.pprof" || rc=$?
cat "$WORK/err.txt"
check "unwritable MPROF_CPU: program still exits 0" "$rc == 0"
check_grep "unwritable MPROF_CPU: says so" "CPU profiler not started" "$WORK/err.txt"
finish
