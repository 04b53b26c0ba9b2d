#!/bin/sh
# Labeled CPU samples (test_cpu_labels.c): all the CPU goes to one
# function, burn_slice, under labels whose true CPU time the program
# measured with each thread's CPU clock.  `go tool pprof -tagfocus` must
# split burn_slice's time by label within 12% of those times (labels
# changed about 60 times on the main thread, another label on a second
# thread running at once, unlabeled time left out), `-tags` must list
# them, and `mprof top --tag` / `--tags` must print what pprof prints.
#
# usage: cpu_labels.sh TEST_CPU_LABELS MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
BIN=$1
MPROF=$2
P="$T/labels.pprof"

# 250 Hz: one sample per 4 ms of CPU, the finest the scheduler tick gives.
"$BIN" "$P" 250 >"$T/out.txt" || die "test_cpu_labels failed"
cat "$T/out.txt"
ms() { awk -v k="$1_ms" '$1 == k { print $2 }' "$T/out.txt"; }

# focused FOCUS: burn_slice's ms in the samples pprof keeps under -tagfocus.
focused() {
    pprof_top "$T/focus.txt" "$P" "-tagfocus=$1" || { echo 0; return; }
    cum_ms "$T/focus.txt" burn_slice
}
for pair in request=upload:upload request=download:download phase=a:a phase=b:b; do
    focus=${pair%%:*}
    truth=$(ms "${pair##*:}")
    got=$(focused "$focus")
    check_expr "-tagfocus=$focus: burn_slice ${got} ms, measured ${truth} ms (within 12%)" \
        "$got >= 0.88 * $truth && $got <= 1.12 * $truth"
done
# The unlabeled stretch carries no request label: all of burn_slice minus
# both requests is that stretch.
pprof_top "$T/all.txt" "$P"
all=$(cum_ms "$T/all.txt" burn_slice)
up=$(focused request=upload)
down=$(focused request=download)
unl=$(ms unlabeled)
check_expr "unlabeled burn_slice $all - $up - $down ms, measured $unl ms (within 12% or 12 ms)" \
    "($all - $up - $down) >= 0.88 * $unl - 12 && ($all - $up - $down) <= 1.12 * $unl + 12"
# A thread's labels are its own: the worker's samples carry no phase.
pprof_top "$T/wphase.txt" "$P" -tagfocus=thread=labels-worker -tagignore=phase=.
wshown=$(shown_ms "$T/wphase.txt")
check_expr "the worker's ${wshown} ms carry no phase label" "$wshown >= 0.88 * $(ms download)"

"$GO" tool pprof -tags "$P" >"$T/tags.txt" 2>&1
cat "$T/tags.txt"
for word in request: upload download phase: thread: labels-main; do
    check_grep "pprof -tags lists $word" "$word" "$T/tags.txt"
done

# mprof top reads the same labels: --tags and --tag print what pprof does.
same_as_pprof "$MPROF" "$P" request=upload phase=b request=down,up thread=labels-worker
finish
