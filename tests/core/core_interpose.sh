#!/bin/sh
# Interposer semantics: each program (C, then C++) runs plain, then under
# LD_PRELOAD with MPROF_RATE=1 and with the default rate, and at rate 1
# with sampled blocks found through the live table instead of their
# headers (MPROF_HEADERS=0).  Every run must pass its own checks and print
# the same transcript as the plain run.  Then the C program with gperftools'
# tcmalloc underneath (an allocator other than glibc's, so table mode): the
# same against a run on tcmalloc alone.
# Usage: core_interpose.sh LIBMPROF PROGRAM...
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
shift
TCMALLOC=
for f in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4; do
    [ -e "$f" ] && { TCMALLOC=$f; break; }
done
[ -n "$TCMALLOC" ] || fail "no libtcmalloc (Debian's libgoogle-perftools-dev, installed by make deps)"

# run_variant NAME BASELINE ENV...: runs $prog with ENV; its exit status,
# its own check failures (the allocator's quirks: tcmalloc sets no errno
# on calloc overflow, gives 8-byte alignment to small blocks) and its
# transcript must be the baseline run's (BASELINE, BASELINE.err,
# BASELINE.rc).
run_variant() {
    variant=$1 base=$2
    shift 2
    out="$T/$name.$variant"
    run_t env "$@" CORE_EXPECT_MPROF=1 MPROF_HEAP="$out.pb.gz" "$prog" >"$out" 2>"$out.err"
    rc=$?
    if [ "$rc" = "$(cat "$base.rc")" ]; then
        pass "$name under LD_PRELOAD, $variant (exit $rc)"
    else
        fail "$name under LD_PRELOAD, $variant: exit status $rc"; cat "$out.err"
    fi
    grep '^FAIL' "$base.err" | sort >"$out.basefail"
    grep '^FAIL' "$out.err" | sort >"$out.fail"
    if cmp -s "$out.basefail" "$out.fail"; then
        pass "$name $variant: the same checks pass as on the allocator alone"
    else
        fail "$name $variant: checks differ from the allocator alone"; diff "$out.basefail" "$out.fail"
    fi
    if diff -u "$base" "$out" >"$out.diff"; then
        pass "$name $variant: same transcript as without mprof"
    else
        fail "$name $variant: behaviour differs from the allocator alone"; cat "$out.diff"
    fi
    [ -s "$out.pb.gz" ] || fail "$name $variant: no heap profile written"
    grep -v '^mprof: wrote heap profile' "$out.err" | grep '^mprof:' && fail "$name $variant: mprof warnings"
}

# baseline NAME ENV...: the program without mprof.
baseline() {
    base="$T/$name.$1"
    shift
    run_t env -u MPROF_RATE "$@" "$prog" >"$base" 2>"$base.err"
    echo $? >"$base.rc"
}

for prog in "$@"; do
    name=$(basename "$prog")
    baseline plain -u LD_PRELOAD
    if [ "$(cat "$T/$name.plain.rc")" = 0 ] && ! grep -q '^FAIL' "$T/$name.plain.err"; then
        pass "$name plain"
    else
        fail "$name plain run failed"; cat "$T/$name.plain.err"
    fi
    run_variant rate1 "$T/$name.plain" MPROF_RATE=1 CORE_EXPECT_HEADERS=1 LD_PRELOAD="$LIB"
    run_variant rate1-table "$T/$name.plain" MPROF_RATE=1 MPROF_HEADERS=0 CORE_EXPECT_HEADERS=0 \
        LD_PRELOAD="$LIB"
    run_variant default "$T/$name.plain" -u MPROF_RATE CORE_EXPECT_HEADERS=1 LD_PRELOAD="$LIB"

    # C only: tcmalloc has an operator new of its own, which never reaches
    # malloc, so the C++ program's own checks of its new sites cannot hold.
    case $name in *cxx*) continue ;; esac
    [ -n "$TCMALLOC" ] || continue
    baseline tc LD_PRELOAD="$TCMALLOC"
    run_variant tcmalloc-rate1 "$T/$name.tc" MPROF_RATE=1 CORE_EXPECT_HEADERS=0 \
        LD_PRELOAD="$LIB $TCMALLOC"
    run_variant tcmalloc-default "$T/$name.tc" -u MPROF_RATE CORE_EXPECT_HEADERS=0 \
        LD_PRELOAD="$LIB $TCMALLOC"
done
finish
