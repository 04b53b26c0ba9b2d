#!/bin/bash
# The leak check's cost (issue 14): the same program (leaks_work: 200,000
# records and their names in hash chains, churn, one record in ten lost,
# cycles) run plain, under mprof --leaks, built with -fsanitize=leak
# (LeakSanitizer), and under valgrind --leak-check=full, in one run,
# interleaved round by round so that this shared machine's noise falls on
# every variant alike; each time is divided by the plain run of its round
# and the median ratio is reported.
#
# The leak check's own time: mprof's report says how long its scan took
# (threads stopped); for LeakSanitizer and valgrind it is the difference
# with leak checking off (LSAN_OPTIONS=detect_leaks=0, --leak-check=no).
# mprof's remaining cost is recording every allocation (MPROF_RATE=1, the
# "rate1" row).  All variants find the same leaks (checked: the same
# totals of leaked bytes).
#
# Target: mprof --leaks within 2x of LeakSanitizer's slowdown, far below
# valgrind's.
set -u
BUILD=$1
BIN=$BUILD/bench/leaks_work
LSAN_BIN=$BUILD/bench/leaks_work_lsan
LIB=$BUILD/libmprof.so
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
[ -x "$BIN" ] && [ -x "$LSAN_BIN" ] || { echo "leaks_work not built"; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind missing (make deps installs it)"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

declare -A times ratios scans
variants=(plain rate1 leaks lsan_off lsan vg_off vg_full)
now() { echo "$EPOCHREALTIME"; }
run() { # variant -> seconds in $last; stderr in $T/$1.err
    local v=$1 s e
    s=$(now)
    case $v in
        plain) "$BIN" "$N" ;;
        rate1) env MPROF_RATE=1 LD_PRELOAD="$LIB" "$BIN" "$N" ;;
        leaks) env MPROF_LEAKS=1 MPROF_LEAKS_EXITCODE=0 LD_PRELOAD="$LIB" "$BIN" "$N" ;;
        lsan_off) env LSAN_OPTIONS=detect_leaks=0 "$LSAN_BIN" "$N" ;;
        lsan) env LSAN_OPTIONS=exitcode=0 "$LSAN_BIN" "$N" ;;
        vg_off) valgrind --leak-check=no "$BIN" "$N" ;;
        vg_full) valgrind --leak-check=full "$BIN" "$N" ;;
    esac 2>"$T/$v.err" >/dev/null
    e=$(now)
    last=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.4f", b - a}')
    times[$v]+="$last "
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for ((i = 0; i < ROUNDS; i++)); do
    declare -A this=()
    n=${#variants[@]}
    for ((k = 0; k < n; k++)); do
        v=${variants[(i + k) % n]}
        run "$v"
        this[$v]=$last
    done
    for v in "${variants[@]}"; do
        ratios[$v]+="$(awk -v a="${this[$v]}" -v b="${this[plain]}" 'BEGIN{printf "%.4f", a/b}') "
    done
    scans[leaks]+="$(sed -n 's/.*scanned in \([0-9.]*\) ms.*/\1/p' "$T/leaks.err" | awk '{printf "%.4f", $1 / 1000}') "
    scans[lsan]+="$(awk -v a="${this[lsan]}" -v b="${this[lsan_off]}" 'BEGIN{printf "%.4f", a - b}') "
    scans[vg_full]+="$(awk -v a="${this[vg_full]}" -v b="${this[vg_off]}" 'BEGIN{printf "%.4f", a - b}') "
done

# The same leaks found by each (total leaked bytes).
mb=$(sed -n 's/^SUMMARY: mprof: \([0-9]*\) byte.*/\1/p' "$T/leaks.err")
lb=$(sed -n 's/^SUMMARY: LeakSanitizer: \([0-9]*\) byte.*/\1/p' "$T/lsan.err")
vb=$(sed -n "s/.*\(definitely\|indirectly\) lost: \([0-9,]*\) bytes.*/\2/p" "$T/vg_full.err" | tr -d , | awk "{s += \$1} END {print s}")
echo "program: bench/leaks_work $N; $ROUNDS rounds; leaked bytes found: mprof ${mb:-?}, LeakSanitizer ${lb:-?}, valgrind ${vb:-?} (definitely + indirectly lost)"
printf "%-22s %10s %8s %14s\n" variant "median s" ratio "leak check s"
label() {
    case $1 in
        plain) echo "plain" ;; rate1) echo "mprof rate 1, no check" ;; leaks) echo "mprof --leaks" ;;
        lsan_off) echo "LSan, detect_leaks=0" ;; lsan) echo "LeakSanitizer" ;;
        vg_off) echo "valgrind, no check" ;; vg_full) echo "valgrind --leak-check=full" ;;
    esac
}
for v in "${variants[@]}"; do
    t=$(echo "${times[$v]}" | median)
    r=$(echo "${ratios[$v]}" | median)
    sc=-
    [ -n "${scans[$v]:-}" ] && sc=$(echo "${scans[$v]}" | median)
    printf "%-22s %10s %7sx %14s\n" "$(label "$v")" "$t" "$r" "$sc"
done
rl=$(echo "${ratios[leaks]}" | median)
rs=$(echo "${ratios[lsan]}" | median)
rv=$(echo "${ratios[vg_full]}" | median)
cl=$(echo "${scans[leaks]}" | median)
cs=$(echo "${scans[lsan]}" | median)
cv=$(echo "${scans[vg_full]}" | median)
awk -v l="$rl" -v s="$rs" -v v="$rv" -v cl="$cl" -v cs="$cs" -v cv="$cv" 'BEGIN {
    printf "mprof --leaks slowdown / LeakSanitizer slowdown: %.2f (target <= 2: %s); valgrind / mprof: %.1f\n",
        l / s, l / s <= 2 ? "met" : "MISSED", v / l
    if (cs > 0 && cl > 0)
        printf "leak-check time: mprof / LeakSanitizer %.2f, valgrind / mprof %.1f\n", cl / cs, cv / cl }'
