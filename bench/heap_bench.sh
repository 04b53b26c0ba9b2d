#!/bin/bash
# Allocation-churn benchmark: the same unmodified program run plain, under
# libmprof at the default rate and at rate 1, interleaved so that noise on
# this shared machine hits all variants alike; the median of each is
# reported with its ratio to plain.
#
# Targets (2-core machine): default rate <= 1.05x, rate 1 <= 8x, profiler
# memory a few MiB at the default rate.
set -u
BUILD=$1
BIN=$BUILD/bench/heap_churn
[ -x "$BIN" ] || BIN=$BUILD/heap_churn
LIB=$BUILD/libmprof.so
ROUNDS=${ROUNDS:-7}
THREADS=2 OPS=${OPS:-1000000} LIVE=4096

declare -A times mem buckets samples
run() { # name env...
    local name=$1; shift
    local out
    out=$(env "$@" "$BIN" $THREADS $OPS $LIVE) || { echo "run $name failed"; exit 1; }
    times[$name]+="$(echo "$out" | cut -d' ' -f1) "
    mem[$name]=$(echo "$out" | cut -d' ' -f3)
    buckets[$name]=$(echo "$out" | cut -d' ' -f4)
    samples[$name]=$(echo "$out" | cut -d' ' -f5)
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for ((i = 0; i < ROUNDS; i++)); do
    run plain MPROF_UNUSED=1
    run default LD_PRELOAD=$LIB
    run rate1 LD_PRELOAD=$LIB MPROF_RATE=1
done
base=$(echo "${times[plain]}" | median)
printf "%-22s %10s %8s %14s %9s %10s %8s\n" variant "median s" ratio "profiler mem" buckets samples target
for v in plain default rate1; do
    t=$(echo "${times[$v]}" | median)
    ratio=$(awk -v a="$t" -v b="$base" 'BEGIN{printf "%.3f", a/b}')
    m=$(awk -v m="${mem[$v]}" 'BEGIN{printf "%.1f MiB", m/1048576}')
    case $v in plain) tgt="-";; default) tgt="<=1.05x";; rate1) tgt="<=8x";; esac
    printf "%-22s %10s %8s %14s %9s %10s %8s\n" "$v" "$t" "${ratio}x" "$m" "${buckets[$v]}" "${samples[$v]}" "$tgt"
done
echo "($THREADS threads, $OPS ops each, $LIVE live blocks per thread, sizes 8 B..256 KiB log-uniform, $ROUNDS interleaved rounds)"
