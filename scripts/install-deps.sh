#!/bin/sh
# Installs the Debian packages mprof needs to build and test, if missing
# (`make deps`; run first by `make check` and `make demo`).  It says which
# packages are missing and why each is needed, then shows apt's progress;
# with nothing missing it prints nothing.
#
# The table below is the one list: a package and what it is for.  Add a
# package as one line here and a row in README.md's dependency table. No apostrophe
# in the table: it is one single-quoted string.
set -e
PKG_TABLE='
cmake                    build: the build system
make                     build: the root Makefile
gcc                      build: the C compiler
g++                      build: the C++ tests (operator new, C++ programs)
pkg-config               build: finds libdw; tests: the installed mprof.pc
libdw-dev                build: symbols, file:line and inlined frames (elfutils)
libelf-dev               build: ELF sections, read directly and through libdw
zlib1g-dev               build: gzip of profiles
libc6-dbg                demo and tests: file:line in libc frames (strdup, ...)
golang-go                tests: the real go tool pprof reads what we write
sqlite3                  tests: a real program profiled unmodified
python3                  tests: a real program profiled unmodified; pprof_raw.py
git                      tests: a real program profiled; the fresh-clone demo test
curl                     tests: a real HTTP client for /debug/pprof
gdb                      tests: the stacks of every thread when a test hangs
glibc-source             tests: glibc malloc fork tests run under the profiler
nginx-light              tests: a real master + workers server
clang                    tests: libFuzzer, for make fuzz and its slice in make check
libclang-rt-14-dev       tests: libFuzzer runtime
liblsan0                 tests: LeakSanitizer (gcc -fsanitize=leak), the reference of the leak check
chromium                 tests: a real browser, headless, opens the pages of mprof report and the vendored speedscope
dpkg-dev                 make deb: dpkg-shlibdeps for the package dependencies
groff-base               tests: renders the man page mprof(1) to check it
libgoogle-perftools-dev  benchmarks: gperftools CPU profiler, tcmalloc, HEAPPROFILE
libjemalloc2             benchmarks: jemalloc and its heap profiler
heaptrack                benchmarks: another heap profiler, side by side
golang-github-google-pprof-dev  tests: google/pprof, its own parser, built offline (tests/readers)
nodejs                   tests: runs the vendored npm pprof-format decoder (tests/readers)
valgrind                 benchmarks: memcheck --leak-check=full beside the leak check
redis-server             tests: a real server under load while scraped, BGSAVE forks
redis-tools              tests: redis-benchmark, the load for redis-server
apache2-utils            tests: ab, the load for nginx
'
PKGS=$(printf '%s\n' "$PKG_TABLE" | awk 'NF { print $1 }')
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "mprof: installing the Debian packages a fresh machine lacks for the build, tests and demo:"
for p in $missing; do
    printf '%s\n' "$PKG_TABLE" | awk -v p="$p" '$1 == p { $1 = ""; printf "  %-24s%s\n", p, substr($0, 2) }'
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "mprof: not root and no sudo; install them as root: apt-get install$missing" >&2
        exit 1
    }
    SUDO=sudo
fi
echo "mprof: apt-get update (the package lists, about a minute on a fresh machine) ..."
$SUDO apt-get update -q
echo "mprof: apt-get install$missing ..."
# -q keeps apt's one line per download and per package set up (the
# progress) and drops its redrawn progress bars, which logs garble.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
echo "mprof: installed$missing"
