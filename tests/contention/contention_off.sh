#!/bin/sh
# Off by default: under the preload, without MPROF_BLOCK*/MPROF_MUTEX*, a
# contended program records nothing (the profiles, written through the
# library's own functions at the end, hold no record); and the stress
# program - every wrapped function from 8 threads, the profiles switched
# on and off while they run, forks - finishes with the right counts and
# readable profiles.
#
# usage: contention_off.sh LIBMPROF TARGET
. "$(dirname "$0")/contention_lib.sh"
LIB=$1
BIN=$2

timeout 120 env LD_PRELOAD="$LIB" "$BIN" off "$WORK/off" >"$WORK/off.out" 2>&1 || {
    echo "FAIL: $BIN off exited $?"
    cat "$WORK/off.out"
    exit 1
}
check_grep "block profile written (legacy text header)" "--- contention:" "$WORK/off.block"
check_grep "mutex profile written (legacy text header)" "--- mutex:" "$WORK/off.mutex"
check_no_grep "no block record without MPROF_BLOCK_RATE" " @ " "$WORK/off.block"
check_no_grep "no mutex record without MPROF_MUTEX_FRACTION" " @ " "$WORK/off.mutex"
check_no_grep "nothing said on stderr" "mprof:" "$WORK/off.out"

# A bad value: one warning, and the profile stays off.
timeout 120 env LD_PRELOAD="$LIB" MPROF_BLOCK_RATE=fast MPROF_MUTEX_FRACTION=-3 "$BIN" off \
    "$WORK/bad" >"$WORK/bad.out" 2>&1 || true
check_grep "bad MPROF_BLOCK_RATE named in a warning" "MPROF_BLOCK_RATE" "$WORK/bad.out"
check_grep "bad MPROF_MUTEX_FRACTION named in a warning" "MPROF_MUTEX_FRACTION" "$WORK/bad.out"
check_no_grep "bad rate: still off" " @ " "$WORK/bad.block"

if timeout 240 env LD_PRELOAD="$LIB" MPROF_BLOCK="$WORK/stress.block" \
    MPROF_MUTEX="$WORK/stress.mutex" "$BIN" stress >"$WORK/stress.out" 2>&1 &&
    grep -q "stress ok" "$WORK/stress.out"; then
    echo "ok:   stress: finished, counts right, forked children fine"
else
    echo "FAIL: stress:"
    cat "$WORK/stress.out"
    FAILS=$((FAILS + 1))
fi
pprof_lines "$WORK/stress.block.txt" "$WORK/stress.block" -unit=ms
pprof_lines "$WORK/stress.mutex.txt" "$WORK/stress.mutex" -unit=ms
check_grep "stress: block profile readable, charged to stress_main" "stress_main" \
    "$WORK/stress.block.txt"
finish
