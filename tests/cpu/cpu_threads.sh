#!/bin/sh
# Thread life cycles (test_cpu_threads.c): threads created after the start
# are sampled, 200 short-lived threads are not lost in aggregate, stop and
# restart work, and a fork while profiling leaves the child running
# normally.
#
# usage: cpu_threads.sh TEST_CPU_THREADS
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
BIN=$1

timeout 120 "$BIN" "$T" >"$T/out.txt" 2>"$T/err.txt" || {
    echo "FAIL: $BIN exited $?"
    cat "$T/out.txt" "$T/err.txt"
    exit 1
}
cat "$T/out.txt" "$T/err.txt"
check_grep_re "the forked child finished its work" "child done" "$T/out.txt"
check_grep_re "the parent finished" "parent done" "$T/out.txt"

pprof_top "$T/a.txt" "$T/a.pprof"
LATE=$(cum_ms "$T/a.txt" late_thread)
SHORT=$(cum_ms "$T/a.txt" short_thread)
SHORT_FN=$(cum_ms "$T/a.txt" short_thread_fn)
LATE_CPU=$(awk '/^late_cpu_ms/ { print $2 }' "$T/out.txt")
SHORT_CPU=$(awk '/^short_cpu_ms/ { print $2 }' "$T/out.txt")
echo "a: late_thread ${LATE}ms (used ${LATE_CPU}), short_thread ${SHORT}ms (used ${SHORT_CPU})," \
    "of which short_thread_fn ${SHORT_FN}ms"
check_expr "thread created after start is sampled: late_thread within 30% of its CPU" \
    "$LATE >= 0.7 * $LATE_CPU && $LATE <= 1.3 * $LATE_CPU"
# ~250 samples expected at 250 Hz: the first expiry of each thread's timer
# is random within the period, and the expiries a thread's end would lose
# are recorded at its exit (charged to short_thread itself).
check_expr "200 short-lived threads x 5 ms: short_thread within 15% of their CPU" \
    "$SHORT >= 0.85 * $SHORT_CPU && $SHORT <= 1.15 * $SHORT_CPU"
check_expr "a good part of it in short_thread_fn, where it was spent" "$SHORT_FN >= 0.3 * $SHORT"
"$GO" tool pprof -tags "$T/a.pprof" >"$T/a.tags" 2>&1
check_grep_re "late thread labelled by name" "late" "$T/a.tags"

pprof_top "$T/b.txt" "$T/b.pprof"
RESTART=$(cum_ms "$T/b.txt" restart_fn)
B_OLD=$(cum_ms "$T/b.txt" short_thread_fn)
echo "b: restart_fn ${RESTART}ms (expect 300)"
check_expr "restarted profile samples restart_fn ~300 ms" "$RESTART >= 210 && $RESTART <= 390"
PRE=$(cum_ms "$T/b.txt" pre_existing_fn)
echo "b: pre_existing_fn ${PRE}ms (expect 300)"
check_expr "a thread that existed before the start is sampled: ~300 ms" "$PRE >= 210 && $PRE <= 390"
check_expr "restarted profile holds nothing of the first" "$B_OLD == 0"

pprof_top "$T/c.txt" "$T/c.pprof"
PARENT=$(cum_ms "$T/c.txt" parent_fn)
C_CHILD=$(cum_ms "$T/c.txt" child_fn)
echo "c: parent_fn ${PARENT}ms (expect 600), child_fn ${C_CHILD}ms (expect 0)"
check_expr "parent profile across the fork: parent_fn ~600 ms" "$PARENT >= 450 && $PARENT <= 750"
check_expr "the child's CPU is not in the parent's profile" "$C_CHILD == 0"

CHILD_P=$(ls "$T"/child.*.pprof)
pprof_top "$T/child.txt" "$CHILD_P"
CHILD=$(cum_ms "$T/child.txt" child_fn)
echo "child: child_fn ${CHILD}ms (expect 100)"
check_expr "the child can profile itself: child_fn ~100 ms" "$CHILD >= 50 && $CHILD <= 150"
finish
