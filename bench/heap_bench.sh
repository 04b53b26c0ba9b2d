#!/bin/bash
# Allocation-churn benchmark: the same unmodified program run plain, under
# libmprof at the default rate and at rate 1, interleaved so that noise on
# this shared machine hits all variants alike.  A fourth variant, labeled,
# is the default rate with the churn cut into requests of $REQ operations,
# each under a label (mprof_labels_push/pop, request=get|put|list|delete):
# its ratio to default is what labels cost; default itself pushes none.
#
# Each round runs the three variants back to back and divides each time by
# the plain run of the same round; the ratio reported is the median of
# those per-round ratios.  On this machine (a VM whose neighbours load the
# memory system) whole stretches of a minute run 20-40% slower than others:
# ratios of runs seconds apart are steady where medians of separate times
# are not.
#
# Targets (2-core machine): default rate <= 1.05x, rate 1 <= 8x, labeled
# within 2% of default, profiler memory a few MiB at the default rate.
set -u
BUILD=$1
BIN=$BUILD/bench/heap_churn
[ -x "$BIN" ] || BIN=$BUILD/heap_churn
LIB=$BUILD/libmprof.so
ROUNDS=${ROUNDS:-21}
THREADS=2 OPS=${OPS:-1000000} LIVE=4096 REQ=${REQ:-16}

declare -A times ratios mem buckets samples
run() { # name env...
    local name=$1; shift
    local out req=0
    [ "$name" = labeled ] && req=$REQ
    out=$(env "$@" "$BIN" $THREADS $OPS $LIVE $req) || { echo "run $name failed"; exit 1; }
    last=$(echo "$out" | cut -d' ' -f1)
    times[$name]+="$last "
    mem[$name]=$(echo "$out" | cut -d' ' -f3)
    buckets[$name]=$(echo "$out" | cut -d' ' -f4)
    samples[$name]=$(echo "$out" | cut -d' ' -f5)
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
quartiles() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.3f-%.3f", a[int((NR+3)/4)], a[int((3*NR+3)/4)]}'; }

# Each round runs the three variants in a rotated order (plain first, then
# second, then third), so that whatever a run leaves behind for the next one
# (reclaimed memory, a warm or cold cache) falls on every variant alike.
order=(plain default rate1 labeled)
for ((i = 0; i < ROUNDS; i++)); do
    declare -A this=()
    for ((k = 0; k < 4; k++)); do
        v=${order[(i + k) % 4]}
        case $v in
            plain) run plain MPROF_TEST_UNUSED=1 ;;
            default) run default LD_PRELOAD=$LIB ;;
            rate1) run rate1 LD_PRELOAD=$LIB MPROF_RATE=1 ;;
            labeled) run labeled LD_PRELOAD=$LIB ;;
        esac
        this[$v]=$last
    done
    for v in default rate1 labeled; do
        ratios[$v]+="$(awk -v a="${this[$v]}" -v b="${this[plain]}" 'BEGIN{printf "%.4f", a/b}') "
    done
done
ratios[plain]="1"
printf "%-10s %10s %8s %13s %14s %9s %10s %8s\n" variant "median s" ratio "(quartiles)" "profiler mem" buckets samples target
for v in plain default rate1 labeled; do
    t=$(echo "${times[$v]}" | median)
    ratio=$(echo "${ratios[$v]}" | median)
    q=$(echo "${ratios[$v]}" | quartiles)
    m=$(awk -v m="${mem[$v]}" 'BEGIN{printf "%.1f MiB", m/1048576}')
    case $v in plain) tgt="-";; default) tgt="<=1.05x";; rate1) tgt="<=8x";; labeled) tgt="~default";; esac
    printf "%-10s %10s %8s %13s %14s %9s %10s %8s\n" "$v" "$t" "$(printf %.3f "$ratio")x" "($q)" "$m" \
        "${buckets[$v]}" "${samples[$v]}" "$tgt"
done
echo "($THREADS threads, $OPS ops each, $LIVE live blocks per thread, sizes 8 B..256 KiB log-uniform;"
echo " ratio: median over $ROUNDS rounds, in rotated order, of each run's time over the plain run of its round;"
echo " labeled: default rate, one mprof_labels_push/pop per request of $REQ operations)"
