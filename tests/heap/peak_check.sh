#!/bin/sh
# The peak heap profile (docs/peak.md): a program that holds 64 MiB from
# phase_a, frees it, then holds 16 MiB from phase_b until exit.  At the
# default rate, the peak profile names phase_a with 64 MiB (within 12%) and
# not phase_b; the exit heap profile names phase_b with 16 MiB and not
# phase_a; the statistics' high-water mark says 64 MiB.  Under LD_PRELOAD
# (MPROF_PEAK, mprof run --peak) and through the embedding API in the
# consistent-snapshot mode.
# Usage: peak_check.sh LIBMPROF PEAK_TARGET PEAK_TARGET_API MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2
API=$3
MPROF=$4
MIB=1048576

check_pair() { # WHAT PEAK HEAP
    pprof_raw "$2" "$T/peak.raw" || { fail "$1: pprof cannot read the peak profile"; return; }
    pprof_raw "$3" "$T/heap.raw" || { fail "$1: pprof cannot read the heap profile"; return; }
    a=$(pyq total "$T/peak.raw" inuse_space phase_a)
    b=$(pyq total "$T/peak.raw" inuse_space phase_b)
    check_expr "$1: the peak holds phase_a's 64 MiB within 12% ($a bytes)" \
        "$a >= 0.88 * 64 * $MIB && $a <= 1.12 * 64 * $MIB"
    check_expr "$1: phase_b came after the peak ($b bytes)" "$b == 0"
    ha=$(pyq total "$T/heap.raw" inuse_space phase_a)
    hb=$(pyq total "$T/heap.raw" inuse_space phase_b)
    check_expr "$1: the exit profile holds phase_b's 16 MiB within 12% ($hb bytes)" \
        "$hb >= 0.88 * 16 * $MIB && $hb <= 1.12 * 16 * $MIB"
    check_expr "$1: and nothing of phase_a ($ha bytes)" "$ha == 0"
    check_grep "$1: the peak profile says when and how high" "peak heap profile:" "$T/peak.raw"
}

env MPROF_PEAK="$T/peak.pb.gz" MPROF_HEAP="$T/heap.pb.gz" LD_PRELOAD="$LIB" "$PROG" \
    2>"$T/preload.err" || fail "preload: the program failed"
check_pair preload "$T/peak.pb.gz" "$T/heap.pb.gz"
check_grep "preload: one line on stderr for the peak file" "peak heap profile" "$T/preload.err"

"$MPROF" run --peak "$T/run-peak.pb.gz" --heap "$T/run-heap.pb.gz" -- "$PROG" \
    2>"$T/run.err" || fail "mprof run --peak: the program failed"
check_pair "mprof run --peak" "$T/run-peak.pb.gz" "$T/run-heap.pb.gz"

# Rate 1: every block counted, the peak exact.
env MPROF_RATE=1 MPROF_PEAK="$T/peak1.pb.gz" MPROF_HEAP="$T/heap1.pb.gz" LD_PRELOAD="$LIB" \
    "$PROG" 2>/dev/null || fail "rate 1: the program failed"
pprof_raw "$T/peak1.pb.gz" "$T/peak1.raw" && a=$(pyq total "$T/peak1.raw" inuse_space phase_a) &&
    check_expr "rate 1: phase_a's 64 MiB at the peak within 3% ($a bytes)" \
        "$a >= 0.97 * 64 * $MIB && $a <= 64 * $MIB"

# The embedding API, consistent-snapshot mode (the program links the
# library and writes both profiles itself).
"$API" api "$T/api-peak.pb.gz" "$T/api-heap.pb.gz" 2>"$T/api.err" ||
    fail "api: the program failed: $(cat "$T/api.err")"
check_pair api "$T/api-peak.pb.gz" "$T/api-heap.pb.gz"
finish
