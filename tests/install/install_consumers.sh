#!/bin/sh
# make install, and a program built against the result the three ways
# users build: pkg-config, find_package(mprof), add_subdirectory of the
# source tree; each shared and static.  Each example keeps 200 blocks of
# 64 KiB from consumer_keep() at rate 1 and writes its heap profile through
# the API: the installed `mprof top` must show exactly that.  The installed
# `mprof run` must find libmprof.so in the multiarch library folder without
# MPROF_LIB, and the man page must render and name every setting.
#   install_consumers.sh SOURCE_DIR BUILD_DIR CMAKE CC
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/consumer_checks.sh"
src=$1; build=$2; cmake=$3; cc=$4
need_cmd pkg-config

prefix=$T/prefix
run_t "$cmake" --install "$build" --prefix "$prefix" >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; die "cmake --install $build --prefix $prefix failed"; }
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$build/mprof.pc")
[ -n "$libdir" ] || die "no libdir in $build/mprof.pc"
for f in bin/mprof "$libdir/libmprof.so" "$libdir/libmprof.a" include/mprof.h \
         "$libdir/pkgconfig/mprof.pc" "$libdir/pkgconfig/mprof-static.pc" \
         "$libdir/cmake/mprof/mprofConfig.cmake" share/man/man1/mprof.1; do
    check "installed $f" test -f "$prefix/$f"
done
case "$libdir" in
    lib/*-linux-gnu) pass "the library folder is the multiarch one ($libdir)" ;;
    *) [ -d /usr/lib/x86_64-linux-gnu ] && fail "library folder $libdir is not multiarch" ;;
esac
mprof=$prefix/bin/mprof

# check_example NAME BINARY [ENV...]: runs it, checks its profile.
check_example() {
    name=$1; bin=$2; shift 2
    if ! run_t env "$@" "$bin" "$T/$name.pb.gz" >"$T/$name.out" 2>&1; then
        cat "$T/$name.out"; fail "$name: the example failed"; return
    fi
    check_consumer_profile "$name" "$T/$name.pb.gz" "$mprof" "$T/$name.out"
}
# check_linkage NAME BINARY shared|static: libmprof.so is needed or not.
check_linkage() {
    if readelf -d "$2" | grep -q 'NEEDED.*libmprof\.so'; then got=shared; else got=static; fi
    [ "$got" = "$3" ] && pass "$1: linked $3" || fail "$1: linked $got, not $3"
}

# 1. pkg-config, found by PKG_CONFIG_PATH as in a user's shell.
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
ex=$src/tests/install/consumer/example.c
if "$cc" -O2 -o "$T/pc_shared" "$ex" $(pkg-config --cflags --libs mprof) 2>"$T/pc.err"; then
    check_linkage pkg-config "$T/pc_shared" shared
    check_example pkg-config "$T/pc_shared" LD_LIBRARY_PATH="$prefix/$libdir"
else
    cat "$T/pc.err"; fail "pkg-config: cc $(pkg-config --cflags --libs mprof) failed"
fi
if "$cc" -O2 -o "$T/pc_static" "$ex" $(pkg-config --cflags --libs mprof-static) 2>"$T/pcs.err"; then
    check_linkage pkg-config-static "$T/pc_static" static
    check_example pkg-config-static "$T/pc_static"
else
    cat "$T/pcs.err"; fail "pkg-config: cc $(pkg-config --cflags --libs mprof-static) failed"
fi
# --static lists libmprof.a's own needs: linking the archive by its path
# with them (and nothing else) must work.
static_libs=$(pkg-config --libs --static mprof | sed 's/-lmprof\b//')
if "$cc" -O2 -o "$T/pc_static2" "$ex" $(pkg-config --cflags mprof) "$prefix/$libdir/libmprof.a" \
        $static_libs 2>"$T/pcs2.err"; then
    check_example "pkg-config --static" "$T/pc_static2"
else
    cat "$T/pcs2.err"; fail "libmprof.a with pkg-config --libs --static mprof failed"
fi
# One version everywhere: the package files' (CMake's project version) is
# the library's own (mprof_version(), from mprof.h), as the example prints.
pc_version=$(pkg-config --modversion mprof)
check_grep "pkg-config's version $pc_version is the library's" "mprof $pc_version, kept" \
    "$T/pkg-config.out"
unset PKG_CONFIG_PATH

# 2 and 3. The same CMake project with find_package and add_subdirectory.
for how in package subdirectory; do
    b=$T/cmake_$how
    if run_t "$cmake" -S "$src/tests/install/consumer" -B "$b" -DMPROF_CONSUMER=$how \
            -DMPROF_SOURCE="$src" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
            >"$T/$how.log" 2>&1 &&
        MPROF_TEST_TIMEOUT=600 run_t "$cmake" --build "$b" -j 2 >>"$T/$how.log" 2>&1; then
        pass "$how: configured and built"
    else
        tail -40 "$T/$how.log"; fail "$how: the consumer project did not build"; continue
    fi
    check_linkage "$how shared" "$b/example_shared" shared
    check_linkage "$how static" "$b/example_static" static
    check_example "$how shared" "$b/example_shared"
    check_example "$how static" "$b/example_static"
    cli=$(cat "$b/mprof_cli_path.txt")
    check "$how: mprof::cli is $cli" test -x "$cli"
done
check "find_package: mprof::cli is the installed mprof" \
    test "$(cat "$T/cmake_package/mprof_cli_path.txt")" = "$mprof"
# As a subdirectory only the library and the CLI are built, no tests.
check "add_subdirectory builds no tests" test ! -e "$T/cmake_subdirectory/mprof/tests"
check_no_grep "add_subdirectory: no path of the parent taken for ours" "CMake Error" \
    "$T/subdirectory.log"

# The installed mprof run finds the installed library by itself.
build_plain_program "$cc" "$T/plain"
(cd "$T" && env -u MPROF_LIB "$mprof" run --heap "$T/plain.pb.gz" -- "$T/plain") >"$T/run.out" 2>&1
if [ -s "$T/plain.pb.gz" ]; then pass "installed mprof run found $libdir/libmprof.so"
else cat "$T/run.out"; fail "installed mprof run wrote no profile"; fi

# The man page: renders without warnings and names every setting.
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww -z "$prefix/share/man/man1/mprof.1" >"$T/groff.err" 2>&1
    [ -s "$T/groff.err" ] && cat "$T/groff.err"
    check "mprof.1 renders without warnings" test ! -s "$T/groff.err"
    groff -man -Tascii -P-cbou "$prefix/share/man/man1/mprof.1" >"$T/man.txt" 2>/dev/null
    for v in $("$mprof" help --markdown settings | sed -n 's/^| `\(MPROF_[A-Z_]*\)`.*/\1/p'); do
        check_grep "mprof.1 documents $v" "$v" "$T/man.txt"
    done
    for f in $("$mprof" help --markdown run | sed -n 's/^| `\(--[a-z-]*\) .*/\1/p'); do
        check_grep "mprof.1 documents run $f" "$f" "$T/man.txt"
    done
fi
finish
