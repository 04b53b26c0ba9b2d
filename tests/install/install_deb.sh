#!/bin/sh
# The .deb of `make deb`, built by CPack from this build into a scratch
# folder and unpacked into a scratch root (never installed on this
# machine): its control fields, that apt would install it here (apt-get -s
# resolves its dependencies without installing), its files under /usr with
# the library in the multiarch folder, and that the unpacked tree works:
# its mprof run finds its libmprof.so, and a program built with its
# pkg-config file writes the profile it should.
#   install_deb.sh SOURCE_DIR BUILD_DIR CPACK CC
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/consumer_checks.sh"
src=$1; build=$2; cpack=$3; cc=$4
need_cmd dpkg-deb
need_cmd pkg-config

MPROF_TEST_TIMEOUT=300 run_t "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$T/pkg" \
    >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; die "cpack -G DEB failed"; }
deb=$(ls "$T"/pkg/mprof_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { cat "$T/cpack.log"; die "cpack wrote no mprof_*.deb"; }
pass "built $(basename "$deb")"

dpkg-deb -f "$deb" Package Architecture Depends >"$T/control"
check_grep "package name mprof" "Package: mprof" "$T/control"
check_grep "architecture $(dpkg --print-architecture)" \
    "Architecture: $(dpkg --print-architecture)" "$T/control"
for dep in libc6 libdw1 libelf1 zlib1g; do
    check_grep_re "depends on $dep" "^Depends:.*\b$dep\b" "$T/control"
done
if command -v apt-get >/dev/null; then
    # -s: simulate; works unprivileged and changes nothing.
    if apt-get install -s "$deb" >"$T/apt.log" 2>&1 && grep -q '^Inst mprof' "$T/apt.log"; then
        pass "apt-get install -s $(basename "$deb"): installable here"
    else
        cat "$T/apt.log"; fail "apt would not install $(basename "$deb")"
    fi
fi

root=$T/root
dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x failed"
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for f in usr/bin/mprof "usr/lib/$arch/libmprof.so" "usr/lib/$arch/libmprof.a" \
         usr/include/mprof.h "usr/lib/$arch/pkgconfig/mprof.pc" \
         "usr/lib/$arch/cmake/mprof/mprofConfig.cmake" usr/share/man/man1/mprof.1; do
    check "package has /$f" test -f "$root/$f"
done

# The unpacked tree, run where it lies: mprof run finds
# usr/lib/<multiarch>/libmprof.so from usr/bin.
build_plain_program "$cc" "$T/plain"
(cd "$T" && env -u MPROF_LIB "$root/usr/bin/mprof" run --heap "$T/plain.pb.gz" -- "$T/plain") \
    >"$T/run.out" 2>&1
if [ -s "$T/plain.pb.gz" ]; then pass "the package's mprof run found its library"
else cat "$T/run.out"; fail "the package's mprof run wrote no profile"; fi

# Its pkg-config file, relocated with the tree (prefix from ${pcfiledir}).
export PKG_CONFIG_PATH="$root/usr/lib/$arch/pkgconfig"
check "pkg-config's libdir is inside the unpacked tree" \
    test "$(cd "$(pkg-config --variable=libdir mprof)" && pwd -P)" = "$(cd "$root/usr/lib/$arch" && pwd -P)"
if "$cc" -O2 -o "$T/example" "$src/tests/install/consumer/example.c" \
        $(pkg-config --cflags --libs mprof-static) 2>"$T/cc.err"; then
    run_t "$T/example" "$T/example.pb.gz" >"$T/example.out" 2>&1
    check_consumer_profile "the package's libmprof.a" "$T/example.pb.gz" "$root/usr/bin/mprof" \
        "$T/example.out"
else
    cat "$T/cc.err"; fail "cc with the package's mprof-static.pc failed"
fi
finish
