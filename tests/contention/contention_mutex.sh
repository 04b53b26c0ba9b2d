#!/bin/sh
# Block and mutex profiles of two threads contending on one lock for a
# known time (contention_target.c): a holder keeps the lock 25 x 20 ms, a
# waiter blocks on it each time.  The block profile must show the waiter's
# line with the delay it measured itself; the mutex profile must charge the
# same delay to the holder's unlock line.  Then the same with a rwlock, and
# with sampling rates that make every wait shorter than the rate, where the
# unbiased estimates must still land near the truth.
#
# usage: contention_mutex.sh LIBMPROF TARGET TARGET_SOURCE
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2
SRC=$3

# run NAME MODE [VAR=VALUE...]: profiles in $T/NAME.block, NAME.mutex.
run() {
    _name=$1
    _mode=$2
    shift 2
    timeout 120 env LD_PRELOAD="$LIB" MPROF_BLOCK="$T/$_name.block" \
        MPROF_MUTEX="$T/$_name.mutex" "$@" "$BIN" "$_mode" \
        >"$T/$_name.out" 2>"$T/$_name.err" || {
        echo "FAIL: $BIN $_mode exited $?"
        cat "$T/$_name.out" "$T/$_name.err"
        exit 1
    }
    WAITED=$(awk '/^waited_ms/ { print $2 }' "$T/$_name.out")
    ROUNDS=$(awk '/^rounds/ { print $2 }' "$T/$_name.out")
}

# ---------------------------------------------------------------- mutex
run mutex mutex
WAIT_LINE=$(line_of "$SRC" waiter_lock)
UNLOCK_LINE=$(line_of "$SRC" holder_unlock)
pprof_lines "$T/mutex.block.txt" "$T/mutex.block" -unit=ms
pprof_lines "$T/mutex.block.n" "$T/mutex.block" -sample_index=contentions
pprof_lines "$T/mutex.mutex.txt" "$T/mutex.mutex" -unit=ms
B=$(flat_at "$T/mutex.block.txt" waiter_blocks_here "$WAIT_LINE")
BTOTAL=$(total_of "$T/mutex.block.txt")
N=$(flat_at "$T/mutex.block.n" waiter_blocks_here "$WAIT_LINE")
M=$(flat_at "$T/mutex.mutex.txt" holder_critical_section "$UNLOCK_LINE")
MTOTAL=$(total_of "$T/mutex.mutex.txt")
echo "mutex: waiter measured ${WAITED} ms; block profile ${B} ms in $N waits at line $WAIT_LINE" \
    "(total $BTOTAL); mutex profile ${M} ms at line $UNLOCK_LINE (total $MTOTAL)"
check_expr "block: waiter's line within 15% of the wait it measured" \
    "$B >= 0.85 * $WAITED && $B <= 1.15 * $WAITED"
check_expr "block: about the nominal 25 x 20 ms (-30%..+100%: a loaded machine only adds)" \
    "$B >= 350 && $B <= 1000"
check_expr "block: every wait counted once (20..25 of 25 rounds)" "$N >= 20 && $N <= 25"
check_expr "block: the waiter's line holds nearly all the delay" "$B >= 0.95 * $BTOTAL"
check_expr "mutex: holder's unlock line within 15% of the waiter's wait" \
    "$M >= 0.85 * $WAITED && $M <= 1.15 * $WAITED"
check_expr "mutex: the holder's unlock line holds nearly all the delay" "$M >= 0.95 * $MTOTAL"
check_grep "block profile sample types" "contentions" "$T/mutex.block.n"

# --------------------------------------------------------------- rwlock
run rwlock rwlock
WAIT_LINE=$(line_of "$SRC" reader_lock)
UNLOCK_LINE=$(line_of "$SRC" writer_unlock)
pprof_lines "$T/rw.block.txt" "$T/rwlock.block" -unit=ms
pprof_lines "$T/rw.mutex.txt" "$T/rwlock.mutex" -unit=ms
B=$(flat_at "$T/rw.block.txt" reader_blocks_here "$WAIT_LINE")
M=$(flat_at "$T/rw.mutex.txt" writer_critical_section "$UNLOCK_LINE")
echo "rwlock: reader measured ${WAITED} ms; block ${B} ms at line $WAIT_LINE;" \
    "mutex ${M} ms at line $UNLOCK_LINE"
check_expr "rwlock block: reader's line within 15% of its wait" \
    "$B >= 0.85 * $WAITED && $B <= 1.15 * $WAITED"
check_expr "rwlock mutex: writer's unlock line within 15% of the reader's wait" \
    "$M >= 0.85 * $WAITED && $M <= 1.15 * $WAITED"

# ------------------------------------------------------------- sampling
# Rate 10 ms < every 20 ms wait: all recorded at weight 1.
run rate10 mutex MPROF_BLOCK_RATE=10000000
WAIT_LINE=$(line_of "$SRC" waiter_lock)
pprof_lines "$T/rate10.txt" "$T/rate10.block" -unit=ms
B=$(flat_at "$T/rate10.txt" waiter_blocks_here "$WAIT_LINE")
echo "rate 10 ms: block ${B} ms of ${WAITED} ms"
check_expr "waits longer than the rate are all recorded" "$B >= 0.85 * $WAITED && $B <= 1.15 * $WAITED"

# 400 waits of ~2 ms with rate 4 ms: each recorded with probability ~1/2
# and weighted back; mutex fraction 4: one contended unlock in 4, weight 4.
# Binomial spread of the estimates: ~5% and ~9% (one sigma).
run short short MPROF_BLOCK_RATE=4000000 MPROF_MUTEX_FRACTION=4
pprof_lines "$T/short.block.txt" "$T/short.block" -unit=ms
pprof_lines "$T/short.block.n" "$T/short.block" -sample_index=contentions
pprof_lines "$T/short.mutex.txt" "$T/short.mutex" -unit=ms
B=$(flat_at "$T/short.block.txt" waiter_blocks_here "$WAIT_LINE")
N=$(flat_at "$T/short.block.n" waiter_blocks_here "$WAIT_LINE")
M=$(flat_at "$T/short.mutex.txt" holder_critical_section "$(line_of "$SRC" holder_unlock)")
echo "sampled: $ROUNDS waits, ${WAITED} ms measured; block estimates $N waits, ${B} ms;" \
    "mutex (1/4) estimates ${M} ms"
check_expr "sampled block delay unbiased (within 25%)" "$B >= 0.75 * $WAITED && $B <= 1.25 * $WAITED"
check_expr "sampled block count unbiased (within 30%)" "$N >= 0.7 * $ROUNDS && $N <= 1.3 * $ROUNDS"
check_expr "sampled mutex delay unbiased (within 40%)" "$M >= 0.6 * $WAITED && $M <= 1.4 * $WAITED"
finish
