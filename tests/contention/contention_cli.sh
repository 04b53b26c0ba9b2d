#!/bin/sh
# `mprof run` options of the contention and thread-creation profiles:
# --block/--block-rate, --mutex/--mutex-fraction, --threadcreate write the
# profiles the program's run produced; bad values are refused (exit 2)
# before the program starts.
#
# usage: contention_cli.sh MPROF TARGET TARGET_SOURCE
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
MPROF=$1
BIN=$2
SRC=$3

cd "$T" || exit 1
timeout 120 "$MPROF" run --block block.pb.gz --block-rate 1000 --mutex mutex.pb.gz \
    --mutex-fraction 1 --threadcreate tc.pb.gz -- "$BIN" mutex >run.out 2>&1 || {
    echo "FAIL: mprof run exited $?"
    cat run.out
    exit 1
}
cat run.out
pprof_lines block.txt block.pb.gz -unit=ms
pprof_lines mutex.txt mutex.pb.gz -unit=ms
pprof_lines tc.txt tc.pb.gz
B=$(flat_at block.txt waiter_blocks_here "$(line_of "$SRC" waiter_lock)")
M=$(flat_at mutex.txt holder_critical_section "$(line_of "$SRC" holder_unlock)")
NT=$(total_of tc.txt)
echo "block ${B} ms, mutex ${M} ms, threads created $NT"
check_expr "--block: the waiter's line, about 25 x 20 ms" "$B >= 350 && $B <= 1000"
check_expr "--mutex: the holder's unlock line, about 25 x 20 ms" "$M >= 350 && $M <= 1000"
check_expr "--threadcreate: the program's two threads" "$NT == 2"
check_no_grep "no default heap profile when another profile was asked for" "mprof.heap" run.out

for bad in "--block-rate -1" "--block-rate fast" "--mutex-fraction -2" "--mutex-fraction x"; do
    status=0
    # shellcheck disable=SC2086 # $bad is an option and its value
    "$MPROF" run $bad -- "$BIN" mutex >bad.out 2>&1 || status=$?
    check_expr "'mprof run $bad' refused with usage status 2" "$status == 2"
    check_grep "... saying which option" "${bad%% *}" bad.out
done
for bad in --block --mutex --threadcreate; do
    status=0
    "$MPROF" run "$bad" >bad.out 2>&1 || status=$?
    check_expr "'mprof run $bad' without a file refused with status 2" "$status == 2"
    check_grep "... saying which option" "$bad needs a file name" bad.out
done
finish
