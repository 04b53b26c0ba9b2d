#!/bin/sh
# Signal-safety stress: an unmodified program (test_cpu_stress.c) under
# LD_PRELOAD, CPU profiled at 1000 Hz with every allocation heap-sampled,
# while its threads malloc/free, dlopen/dlclose libz, fork and churn
# threads.  Bounded by `timeout`: a deadlock fails the test, as does a
# crash, a child that did not exit 0, or an unreadable profile.
#
# usage: cpu_stress.sh LIBMPROF TEST_CPU_STRESS
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2

for round in 1 2; do
    rc=0
    # timeout outside the preloaded environment: it must not be profiled.
    timeout -s KILL 60 env LD_PRELOAD="$LIB" MPROF_CPU="$T/stress.%p.pprof" \
        MPROF_CPU_HZ=1000 MPROF_RATE=1 "$BIN" stress 3 >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    cat "$T/out.txt"
    grep -v "^mprof: wrote" "$T/err.txt" | head -n 20 || true
    check_expr "round $round: exit status 0 (137 = killed by the timeout: deadlock)" "$rc == 0"
    awk '/^main_cpu_ms/ { print $2 }' "$T/out.txt" >"$T/main_cpu.$round"
done

# The parent's profiles; children wrote none (they did not profile).
NPROF=$(ls "$T"/stress.*.pprof 2>/dev/null | wc -l)
check_expr "one CPU profile per round, none from the forked children (got $NPROF)" "$NPROF == 2"
# Profiles sort by pid, rounds ran in order (pids only grow in this short run
# unless they wrap; then the per-round comparison is merely loose).
round=0
for p in $(ls "$T"/stress.*.pprof | sort -t. -k2 -n); do
    round=$((round + 1))
    MAIN_CPU=$(cat "$T/main_cpu.$round" 2>/dev/null || echo 0)
    pprof_top "$T/top.txt" "$p"
    TOTAL=$(total_ms "$T/top.txt")
    BURN=$(cum_ms "$T/top.txt" stress_burn_fn)
    ALLOC=$(cum_ms "$T/top.txt" alloc_thread)
    LOST=$(cum_ms "$T/top.txt" mprof_lost_samples)
    echo "$(basename "$p"): total ${TOTAL}ms; main thread used ${MAIN_CPU}ms," \
        "stress_burn_fn ${BURN}ms; alloc_thread ${ALLOC}ms; lost ${LOST}ms"
    # The main thread does nothing but call stress_burn_fn.  On a loaded
    # machine the writer thread can starve and the ring overflow: those
    # samples are counted as lost, not dropped, so they count here.
    check_expr "profile readable, main thread's burning sampled" \
        "$BURN + $LOST >= 0.7 * $MAIN_CPU"
    check_expr "allocating threads sampled" "$ALLOC > 0"
done
finish
