#!/bin/sh
# Installs the Debian packages mprof needs to build and test, if missing.
# Build: cmake, gcc/g++, pkg-config, libdw-dev (symbols, lines, inlines),
# zlib1g-dev (gzip).  Tests: golang-go (the real `go tool pprof`), sqlite3,
# python3 and git (real programs to profile), curl (a real HTTP client),
# gdb (the stacks of every thread when a test hangs), glibc-source (glibc's
# own malloc fork tests, built and run under the profiler), nginx-light (a
# real master + workers server whose every process must write its profile),
# clang and libclang-rt-14-dev (libFuzzer, for make fuzz and the short
# fuzzing slice of make check), redis-server, redis-tools and
# apache2-utils (real servers under load while scraped: redis-benchmark,
# ab; their throughput with and without mprof in make bench).
# Benchmarks: libgoogle-perftools-dev (gperftools' CPU profiler to compare;
# tcmalloc, its sampling and HEAPPROFILE too), libjemalloc2 and heaptrack
# (the other heap profilers bench/user_cost_bench.sh runs side by side).
set -e
PKGS="cmake make gcc g++ pkg-config libdw-dev libelf-dev zlib1g-dev golang-go sqlite3 python3 git curl gdb glibc-source libgoogle-perftools-dev libjemalloc2 heaptrack nginx-light clang libclang-rt-14-dev redis-server redis-tools apache2-utils"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "mprof: installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
