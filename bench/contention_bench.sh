#!/bin/bash
# Cost of the lock wrappers on the uncontended path: the same unmodified
# program (bench/contention_bench.c) taking and releasing a mutex and a
# rwlock, run plain, under libmprof with the contention profiles off (the
# default), with each on, and with both.  Rounds are interleaved so that
# noise on a shared machine hits every variant alike; medians reported.
#
# Targets: profiling off costs nothing measurable (within noise, a few
# tenths of a nanosecond: one load, one branch and an indirect jump more);
# on, an uncontended lock stays a trylock and an unlock adds one load of a
# side-table word.
set -u
BUILD=$1
BIN=$BUILD/bench/contention_bench
[ -x "$BIN" ] || BIN=$BUILD/contention_bench
LIB=$BUILD/libmprof.so
ROUNDS=${ROUNDS:-7}
N=${OPS:-20000000}

declare -A mutex rwlock
run() { # name env...
    local name=$1
    shift
    local out
    out=$(env "$@" "$BIN" "$N") || { echo "run $name failed"; exit 1; }
    mutex[$name]+="${out% *} "
    rwlock[$name]+="${out#* } "
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

variants="plain off block mutex both"
for ((i = 0; i < ROUNDS; i++)); do
    run plain MPROF_TEST_UNUSED=1
    run off LD_PRELOAD="$LIB"
    run block LD_PRELOAD="$LIB" MPROF_BLOCK_RATE=1
    run mutex LD_PRELOAD="$LIB" MPROF_MUTEX_FRACTION=1
    run both LD_PRELOAD="$LIB" MPROF_BLOCK_RATE=1 MPROF_MUTEX_FRACTION=1
done
base_m=$(echo "${mutex[plain]}" | median)
base_r=$(echo "${rwlock[plain]}" | median)
printf "%-34s %16s %8s %18s %8s\n" variant "mutex ns/op" "vs plain" "rwlock(rd) ns/op" "vs plain"
for v in $variants; do
    m=$(echo "${mutex[$v]}" | median)
    r=$(echo "${rwlock[$v]}" | median)
    case $v in
    plain) label="plain (no preload)" ;;
    off) label="preloaded, profiling off" ;;
    block) label="preloaded, MPROF_BLOCK_RATE=1" ;;
    mutex) label="preloaded, MPROF_MUTEX_FRACTION=1" ;;
    both) label="preloaded, both on" ;;
    esac
    dm=$(awk -v a="$m" -v b="$base_m" 'BEGIN { printf "%+.2f", a - b }')
    dr=$(awk -v a="$r" -v b="$base_r" 'BEGIN { printf "%+.2f", a - b }')
    printf "%-34s %16s %8s %18s %8s\n" "$label" "$m" "$dm" "$r" "$dr"
done
echo "(one thread, lock+unlock pairs, $N per run, median of $ROUNDS interleaved rounds)"
