#!/bin/sh
# Two threads on two cores (test_cpu_split.c): the profile, read by
# `go tool pprof`, must show the main thread's 3:1 split, each thread's
# CPU time, a total within 10% of what getrusage accounted, and the thread
# labels that -tagfocus and -tags use.
#
# usage: cpu_split.sh TEST_CPU_SPLIT
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
BIN=$1
P="$T/split.pprof"

# 250 Hz: Debian's scheduler tick, the finest rate at which thread CPU
# timers fire one signal each; ~750 samples of the main thread give the
# 3:1 split a standard error of 1.6 points.
"$BIN" "$P" 250 >"$T/out.txt"
RUSAGE=$(awk '/^rusage_cpu_ms/ { print $2 }' "$T/out.txt")

pprof_top "$T/top.txt" "$P"
cat "$T/top.txt" | head -n 24
TOTAL=$(total_ms "$T/top.txt")
THREE=$(cum_ms "$T/top.txt" split_three)
ONE=$(cum_ms "$T/top.txt" split_one)
WORKER=$(cum_ms "$T/top.txt" split_worker)
echo "rusage ${RUSAGE}ms, sampled ${TOTAL}ms; split_three ${THREE}ms, split_one ${ONE}ms, split_worker ${WORKER}ms"

check_expr "sampled total within 10% of getrusage CPU time" \
    "$TOTAL >= 0.9 * $RUSAGE && $TOTAL <= 1.1 * $RUSAGE"
# Expected share of split_three: 0.75; 0.70..0.80 is beyond 3 standard
# errors, i.e. a ratio between 2.33:1 and 4:1.
check_expr "split_three : split_one is 3:1 (share $THREE / ($THREE + $ONE) in 0.70..0.80)" \
    "$THREE + $ONE > 0 && $THREE / ($THREE + $ONE) >= 0.70 && $THREE / ($THREE + $ONE) <= 0.80"
# Each thread burns a fixed CPU time: 3000 ms and 2000 ms.
check_expr "main thread's functions hold ~3000 ms" "$THREE + $ONE >= 2700 && $THREE + $ONE <= 3300"
check_expr "split_worker holds ~2000 ms" "$WORKER >= 1800 && $WORKER <= 2200"

# Per-thread labels: -tags lists both names; -tagfocus on a name keeps
# exactly that thread's samples, and on its numeric tid the same.
"$GO" tool pprof -tags "$P" >"$T/tags.txt" 2>&1
cat "$T/tags.txt"
check_grep_re "-tags lists thread split-main" "split-main" "$T/tags.txt"
check_grep_re "-tags lists thread split-worker" "split-worker" "$T/tags.txt"
check_grep_re "-tags lists numeric tids" "tid:" "$T/tags.txt"

pprof_top "$T/worker.txt" "$P" -tagfocus=thread=split-worker
W_SHOWN=$(shown_ms "$T/worker.txt")
W_MAIN=$(cum_ms "$T/worker.txt" split_three)
check_expr "-tagfocus=thread=split-worker keeps the worker's ${W_SHOWN}ms" \
    "$W_SHOWN >= 1800 && $W_SHOWN <= 2200 && $W_MAIN == 0"
pprof_top "$T/main.txt" "$P" -tagfocus=thread=split-main
M_SHOWN=$(shown_ms "$T/main.txt")
M_WORKER=$(cum_ms "$T/main.txt" split_worker)
check_expr "-tagfocus=thread=split-main keeps the main thread's ${M_SHOWN}ms" \
    "$M_SHOWN >= 2700 && $M_SHOWN <= 3300 && $M_WORKER == 0"

WTID=$(awk '/^ *tid:/ { t = 1; next } t && NF >= 3 { print $NF }' "$T/tags.txt" | head -n 2)
for tid in $WTID; do
    pprof_top "$T/tid.txt" "$P" "-tagfocus=tid=$tid"
    T_SHOWN=$(shown_ms "$T/tid.txt")
    check_expr "-tagfocus=tid=$tid keeps one thread (${T_SHOWN}ms)" \
        "($T_SHOWN >= 1800 && $T_SHOWN <= 2200) || ($T_SHOWN >= 2700 && $T_SHOWN <= 3300)"
done

"$GO" tool pprof -raw "$P" >"$T/raw.txt" 2>&1
check_grep_re "period type cpu/nanoseconds" "PeriodType: cpu nanoseconds" "$T/raw.txt"
check_grep_re "period 1e9/250" "Period: 4000000" "$T/raw.txt"
check_grep_re "sample types samples/count cpu/nanoseconds" "samples/count cpu/nanoseconds" "$T/raw.txt"
check_grep_re "duration set" "Duration: " "$T/raw.txt"
finish
