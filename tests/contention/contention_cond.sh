#!/bin/sh
# Condition variables under the wrappers: a producer/consumer program (4 +
# 4 threads, 80000 items through a 16-slot queue, pthread_cond_wait and
# pthread_cond_timedwait) must finish with every item consumed once, with
# profiling off, with each profile on, and with both; and a consumer that
# waits 25 x ~20 ms for a slow producer shows that time at its
# pthread_cond_wait line in the block profile.
#
# usage: contention_cond.sh LIBMPROF TARGET TARGET_SOURCE
. "$(dirname "$0")/contention_lib.sh"
LIB=$1
BIN=$2
SRC=$3

for variant in off block mutex both; do
    case $variant in
    off) envs="MPROF_UNUSED=1" ;;
    block) envs="MPROF_BLOCK=$WORK/$variant.block" ;;
    mutex) envs="MPROF_MUTEX=$WORK/$variant.mutex" ;;
    both) envs="MPROF_BLOCK=$WORK/$variant.block MPROF_MUTEX=$WORK/$variant.mutex" ;;
    esac
    # shellcheck disable=SC2086
    if timeout 120 env LD_PRELOAD="$LIB" $envs "$BIN" cond >"$WORK/$variant.out" 2>&1 &&
        grep -q "condvar ok" "$WORK/$variant.out"; then
        echo "ok:   producer/consumer finished correctly, profiling $variant"
    else
        echo "FAIL: producer/consumer, profiling $variant:"
        cat "$WORK/$variant.out"
        FAILS=$((FAILS + 1))
    fi
done

LINE=$(line_of "$SRC" cond_wait)
pprof_lines "$WORK/cond.txt" "$WORK/both.block" -unit=ms
C=$(flat_at "$WORK/cond.txt" consumer_waits_here "$LINE")
echo "consumer_waits_here:$LINE ${C} ms (nominal 25 x 20 ms)"
check "condvar wait at its line, about 25 x 20 ms" "$C >= 350 && $C <= 1000"
finish
