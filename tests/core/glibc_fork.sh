#!/bin/sh
# glibc's own fork tests of malloc (tst-malloc-fork-deadlock,
# tst-mallocfork, tst-mallocfork2, tst-mallocfork3), built from Debian's
# glibc-source and run plain and under LD_PRELOAD=libmprof.so at the
# default rate, at rate 1 and with headers off, each bounded in time; a
# hang prints the stacks of every thread.  They all pass plain; they are
# the reference for the fork protocol (runtime/lifecycle.c).
#
# Usage: glibc_fork.sh LIBMPROF OUTDIR [ITERATIONS]
#   ITERATIONS replaces the tests' 10,000 (default 1,000: a short slice
#   for make check; make stress runs the full count).
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
OUT=$2
ITERATIONS=${3:-1000}
SRC=/usr/src/glibc/glibc-2.36.tar.xz
[ -f "$SRC" ] || die "$SRC missing: install Debian's glibc-source (make deps does)"
[ -f "$LIB" ] || die "$LIB missing: run make first"
mkdir -p "$OUT/src" "$OUT/shim" "$OUT/obj"
if [ ! -f "$OUT/libsupport.a" ]; then
    echo "mprof: building glibc's test support library (once, about a minute)"
    tar xJf "$SRC" -C "$OUT/src" glibc-2.36/malloc glibc-2.36/support glibc-2.36/test-skeleton.c \
        glibc-2.36/include/array_length.h glibc-2.36/include/libc-diag.h glibc-2.36/include/intprops.h
    G=$OUT/src/glibc-2.36
    cp "$G"/include/array_length.h "$G"/include/libc-diag.h "$G"/include/intprops.h "$OUT/shim/"
    : >"$OUT/shim/config.h"
    for f in "$G"/support/*.c; do
        b=$(basename "$f" .c)
        case $b in test-driver|tst-*|links-dso-program*|*-container) continue ;; esac
        gcc -O1 -D_GNU_SOURCE -w -I"$G/support" -I"$G" -I"$OUT/shim" -DTIMEOUTFACTOR=1 \
            -include limits.h -DSRCDIR_PATH='"/tmp"' -DOBJDIR_PATH='"/tmp"' \
            -DOBJDIR_ELF_LDSO_PATH='"/lib64/ld-linux-x86-64.so.2"' -DINSTDIR_PATH='"/usr"' \
            -DLIBDIR_PATH='"/usr/lib"' -DBINDIR_PATH='"/usr/bin"' -DSBINDIR_PATH='"/usr/sbin"' \
            -DSLIBDIR_PATH='"/lib"' -DROOTSBINDIR_PATH='"/sbin"' \
            -DCOMPLOCALEDIR_PATH='"/usr/lib/locale"' -c "$f" -o "$OUT/obj/$b.o" 2>/dev/null || :
    done
    ar rcs "$OUT/libsupport.a" "$OUT"/obj/*.o
fi
G=$OUT/src/glibc-2.36
for t in tst-malloc-fork-deadlock tst-mallocfork tst-mallocfork2 tst-mallocfork3; do
    sed "s/iterations = 10000/iterations = $ITERATIONS/" "$G/malloc/$t.c" >"$G/malloc/$t-short.c"
    gcc -O1 -D_GNU_SOURCE -w -I"$G/support" -I"$G" -I"$G/malloc" -I"$OUT/shim" \
        -DTIMEOUTFACTOR=1 -include limits.h -o "$OUT/$t" "$G/malloc/$t-short.c" \
        "$OUT/libsupport.a" -lpthread || die "cannot build $t"
done
for t in tst-malloc-fork-deadlock tst-mallocfork tst-mallocfork2 tst-mallocfork3; do
    for mode in plain default rate1 noheaders; do
        case $mode in
        plain) env="" ;;
        default) env="LD_PRELOAD=$LIB" ;;
        rate1) env="LD_PRELOAD=$LIB MPROF_RATE=1" ;;
        noheaders) env="LD_PRELOAD=$LIB MPROF_HEADERS=0" ;;
        esac
        start=$(date +%s)
        # shellcheck disable=SC2086
        run_watch 60 env $env "$OUT/$t" >"$OUT/$t.$mode.log" 2>&1
        rc=$?
        took=$(($(date +%s) - start))
        if [ $rc -eq 0 ]; then
            pass "$t $mode (${took}s)"
        else
            why="exit $rc"
            [ $rc -eq 124 ] && why="hung"
            grep -q "^Timed out" "$OUT/$t.$mode.log" && why="hung: glibc's test driver timed it out"
            fail "$t $mode: $why; its log:"
            tail -60 "$OUT/$t.$mode.log"
        fi
    done
done
finish
