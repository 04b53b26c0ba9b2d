#!/bin/sh
# Condition variables under the wrappers: a producer/consumer program (4 +
# 4 threads, 80000 items through a 16-slot queue, pthread_cond_wait and
# pthread_cond_timedwait) must finish with every item consumed once, with
# profiling off, with each profile on, and with both; and a consumer that
# waits 25 x ~20 ms for a slow producer shows that time at its
# pthread_cond_wait line in the block profile.
#
# usage: contention_cond.sh LIBMPROF TARGET TARGET_SOURCE
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2
SRC=$3

for variant in off block mutex both; do
    case $variant in
    off) envs="MPROF_TEST_UNUSED=1" ;;
    block) envs="MPROF_BLOCK=$T/$variant.block" ;;
    mutex) envs="MPROF_MUTEX=$T/$variant.mutex" ;;
    both) envs="MPROF_BLOCK=$T/$variant.block MPROF_MUTEX=$T/$variant.mutex" ;;
    esac
    # shellcheck disable=SC2086
    if timeout 120 env LD_PRELOAD="$LIB" $envs "$BIN" cond >"$T/$variant.out" 2>&1 &&
        grep -q "condvar ok" "$T/$variant.out"; then
        pass "producer/consumer finished correctly, profiling $variant"
    else
        fail "producer/consumer, profiling $variant:"
        cat "$T/$variant.out"
    fi
done

LINE=$(line_of "$SRC" cond_wait)
pprof_lines "$T/cond.txt" "$T/both.block" -unit=ms
C=$(flat_at "$T/cond.txt" consumer_waits_here "$LINE")
echo "consumer_waits_here:$LINE ${C} ms (nominal 25 x 20 ms)"
check_expr "condvar wait at its line, about 25 x 20 ms" "$C >= 350 && $C <= 1000"
finish
