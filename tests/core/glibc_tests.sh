#!/bin/sh
# glibc's own malloc tests, built from Debian's glibc-source (never copied
# into the tree) and run plain and under LD_PRELOAD=libmprof.so at the
# default rate, at rate 1 and with headers off (rate 1), each bounded in
# time; a hang prints the stacks of every thread.  glibc_malloc_tests.txt
# lists every test of glibc's malloc/ folder: the set it belongs to, the
# modes it runs in, and why a test (glibc's internals: tunables, mcheck,
# arenas) or a mode is left out.  Every test run passes plain; under mprof
# it must pass too.  The fork tests are the reference for the fork protocol
# (runtime/lifecycle.c).
#
# The tests need glibc's test driver (support/test-driver.c: they define
# do_test) and its support library; both are built here from the same
# source, with a config.h shim and the few internal headers they include,
# once per OUTDIR (under a lock: two tests may share it).
#
# Usage: glibc_tests.sh LIBMPROF OUTDIR SETS [ITERATIONS]
#   SETS: a comma-separated list of the sets of glibc_malloc_tests.txt to
#   run (check, fork, stress).  ITERATIONS replaces the fork tests' 10,000
#   (default 1,000: a short slice for make check; "full" keeps 10,000, and
#   gives each run 600 s instead of 60).
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
OUT=$2
SETS=$3
ITERATIONS=${4:-1000}
LIST=$(dirname "$0")/glibc_malloc_tests.txt
SRC=/usr/src/glibc/glibc-2.36.tar.xz
[ -f "$SRC" ] || die "$SRC missing: install Debian's glibc-source (make deps does)"
[ -f "$LIB" ] || die "$LIB missing: run make first"
need_cmd flock
mkdir -p "$OUT"
G=$OUT/src/glibc-2.36
CFLAGS_GLIBC="-O1 -D_GNU_SOURCE -w -I$G/support -I$G -I$G/malloc -I$OUT/shim -DTIMEOUTFACTOR=1 -include limits.h"

build_support() {
    [ -f "$OUT/libsupport.a" ] && return 0
    echo "mprof: building glibc's test support library (once)"
    mkdir -p "$OUT/src" "$OUT/shim" "$OUT/obj"
    tar xJf "$SRC" -C "$OUT/src" glibc-2.36/malloc glibc-2.36/support glibc-2.36/test-skeleton.c \
        glibc-2.36/include/array_length.h glibc-2.36/include/libc-diag.h \
        glibc-2.36/include/intprops.h glibc-2.36/sysdeps/generic/malloc-size.h \
        glibc-2.36/sysdeps/generic/malloc-alignment.h || return 1
    cp "$G"/include/array_length.h "$G"/include/libc-diag.h "$G"/include/intprops.h \
        "$G"/sysdeps/generic/malloc-size.h "$G"/sysdeps/generic/malloc-alignment.h "$OUT/shim/"
    : >"$OUT/shim/config.h"
    for f in "$G"/support/*.c; do
        b=$(basename "$f" .c)
        case $b in test-driver|tst-*|links-dso-program*|*-container) continue ;; esac
        # shellcheck disable=SC2086
        gcc $CFLAGS_GLIBC -DSRCDIR_PATH='"/tmp"' -DOBJDIR_PATH='"/tmp"' \
            -DOBJDIR_ELF_LDSO_PATH='"/lib64/ld-linux-x86-64.so.2"' -DINSTDIR_PATH='"/usr"' \
            -DLIBDIR_PATH='"/usr/lib"' -DBINDIR_PATH='"/usr/bin"' -DSBINDIR_PATH='"/usr/sbin"' \
            -DSLIBDIR_PATH='"/lib"' -DROOTSBINDIR_PATH='"/sbin"' \
            -DCOMPLOCALEDIR_PATH='"/usr/lib/locale"' -c "$f" -o "$OUT/obj/$b.o" 2>/dev/null || :
    done
    ar rcs "$OUT/libsupport.a.tmp" "$OUT"/obj/*.o && mv "$OUT/libsupport.a.tmp" "$OUT/libsupport.a"
}
(
    flock 9
    build_support
) 9>"$OUT/.lock" || die "cannot build glibc's test support library"

# The tests of the sets asked for, as "NAME MODES" lines.
awk -v sets=",$SETS," '!/^#/ && NF >= 3 && index(sets, "," $2 ",") { print $1, $3 }' "$LIST" \
    >"$T/selected"
[ -s "$T/selected" ] || die "no test of $LIST is in the sets '$SETS'"

# build NAME: the binary's path on stdout.  The fork tests' iteration
# count is replaced in a copy of the source (the binary is named by it).
build() {
    _src=$G/malloc/$1.c
    _bin=$OUT/bin/$1
    if grep -q "iterations = 10000" "$_src" && [ "$ITERATIONS" != full ]; then
        sed "s/iterations = 10000/iterations = $ITERATIONS/" "$_src" >"$G/malloc/$1-$ITERATIONS.c"
        _src=$G/malloc/$1-$ITERATIONS.c
        _bin=$OUT/bin/$1-$ITERATIONS
    fi
    mkdir -p "$OUT/bin"
    # shellcheck disable=SC2086
    gcc $CFLAGS_GLIBC -o "$_bin.tmp.$$" "$_src" "$OUT/libsupport.a" -lpthread -ldl \
        >"$T/$1.build" 2>&1 && mv "$_bin.tmp.$$" "$_bin" || { cat "$T/$1.build"; return 1; }
    echo "$_bin"
}

LIMIT=60
[ "$ITERATIONS" = full ] && LIMIT=600
while read -r t modes; do
    bin=$(build "$t") || { fail "cannot build $t"; continue; }
    [ "$modes" = all ] && modes=plain,default,rate1,noheaders
    for mode in $(echo "$modes" | tr ',' ' '); do
        case $mode in
        plain) env="" ;;
        default) env="LD_PRELOAD=$LIB" ;;
        rate1) env="LD_PRELOAD=$LIB MPROF_RATE=1" ;;
        noheaders) env="LD_PRELOAD=$LIB MPROF_RATE=1 MPROF_HEADERS=0" ;;
        *) fail "$t: unknown mode $mode in $LIST"; continue ;;
        esac
        start=$(date +%s)
        # In $T: some tests write files into the current folder.
        # shellcheck disable=SC2086
        (cd "$T" && run_watch "$LIMIT" env $env "$bin") >"$T/$t.$mode.log" 2>&1
        rc=$?
        took=$(($(date +%s) - start))
        if [ $rc -eq 0 ]; then
            pass "$t $mode (${took}s)"
        else
            why="exit $rc"
            [ $rc -eq 124 ] && why="hung"
            grep -q "^Timed out" "$T/$t.$mode.log" && why="hung: glibc's test driver timed it out"
            fail "$t $mode: $why; its log:"
            tail -60 "$T/$t.$mode.log"
        fi
    done
done <"$T/selected"
finish
