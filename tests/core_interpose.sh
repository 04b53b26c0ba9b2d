#!/bin/sh
# Interposer semantics: each program (C, then C++) runs plain, then under
# LD_PRELOAD with MPROF_RATE=1 and with the default rate, and at rate 1
# with sampled blocks found through the live table instead of their
# headers (MPROF_HEADERS=0, as with an allocator other than glibc's).
# Every run must pass its own checks and print the same transcript as the
# plain run.
# Usage: core_interpose.sh LIBMPROF PROGRAM...
. "$(dirname "$0")/core_lib.sh"
LIB=$1
shift
for prog in "$@"; do
    name=$(basename "$prog")
    if run_t env -u LD_PRELOAD -u MPROF_RATE "$prog" >"$T/$name.plain" 2>"$T/$name.plain.err"; then
        pass "$name plain"
    else
        fail "$name plain run failed"; cat "$T/$name.plain.err"
    fi
    for rate in 1 1-table default; do
        out="$T/$name.$rate"
        case $rate in
            default) set -- env -u MPROF_RATE ;;
            1-table) set -- env MPROF_RATE=1 MPROF_HEADERS=0 ;;
            *) set -- env MPROF_RATE=$rate ;;
        esac
        if run_t "$@" CORE_EXPECT_MPROF=1 MPROF_HEAP="$T/$name.$rate.pb.gz" LD_PRELOAD="$LIB" \
            "$prog" >"$out" 2>"$out.err"; then
            pass "$name under LD_PRELOAD, rate $rate"
        else
            fail "$name under LD_PRELOAD, rate $rate: exit status $?"; cat "$out.err"
        fi
        if grep -q '^FAIL' "$out.err"; then
            fail "$name rate $rate reported failures"; grep '^FAIL' "$out.err"
        fi
        if diff -u "$T/$name.plain" "$out" >"$out.diff"; then
            pass "$name rate $rate: same transcript as without mprof"
        else
            fail "$name rate $rate: behaviour differs from plain glibc"; cat "$out.diff"
        fi
        [ -s "$T/$name.$rate.pb.gz" ] || fail "$name rate $rate: no heap profile written"
        grep -v '^mprof: wrote heap profile' "$out.err" | grep '^mprof:' && fail "$name rate $rate: mprof warnings"
    done
done
finish
