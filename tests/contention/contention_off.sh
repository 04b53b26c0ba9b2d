#!/bin/sh
# Off by default: under the preload, without MPROF_BLOCK*/MPROF_MUTEX*, a
# contended program records nothing (the profiles, written through the
# library's own functions at the end, hold no record); and the stress
# program - every wrapped function from 8 threads, the profiles switched
# on and off while they run, forks - finishes with the right counts and
# readable profiles.
#
# usage: contention_off.sh LIBMPROF TARGET
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2

timeout 120 env LD_PRELOAD="$LIB" "$BIN" off "$T/off" >"$T/off.out" 2>&1 || {
    echo "FAIL: $BIN off exited $?"
    cat "$T/off.out"
    exit 1
}
check_grep "block profile written (legacy text header)" "--- contention:" "$T/off.block"
check_grep "mutex profile written (legacy text header)" "--- mutex:" "$T/off.mutex"
check_no_grep "no block record without MPROF_BLOCK_RATE" " @ " "$T/off.block"
check_no_grep "no mutex record without MPROF_MUTEX_FRACTION" " @ " "$T/off.mutex"
check_no_grep "nothing said on stderr" "mprof:" "$T/off.out"

# A bad value: one warning, and the profile stays off.
timeout 120 env LD_PRELOAD="$LIB" MPROF_BLOCK_RATE=fast MPROF_MUTEX_FRACTION=-3 "$BIN" off \
    "$T/bad" >"$T/bad.out" 2>&1 || true
check_grep "bad MPROF_BLOCK_RATE named in a warning" "MPROF_BLOCK_RATE" "$T/bad.out"
check_grep "bad MPROF_MUTEX_FRACTION named in a warning" "MPROF_MUTEX_FRACTION" "$T/bad.out"
check_no_grep "bad rate: still off" " @ " "$T/bad.block"

if timeout 240 env LD_PRELOAD="$LIB" MPROF_BLOCK="$T/stress.block" \
    MPROF_MUTEX="$T/stress.mutex" "$BIN" stress >"$T/stress.out" 2>&1 &&
    grep -q "stress ok" "$T/stress.out"; then
    pass "stress: finished, counts right, forked children fine"
else
    fail "stress:"
    cat "$T/stress.out"
fi
pprof_lines "$T/stress.block.txt" "$T/stress.block" -unit=ms
pprof_lines "$T/stress.mutex.txt" "$T/stress.mutex" -unit=ms
check_grep "stress: block profile readable, charged to stress_main" "stress_main" \
    "$T/stress.block.txt"
finish
