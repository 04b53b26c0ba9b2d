#!/bin/sh
# The symbolizer never reaches debuginfod (src/symbolize/debug_cache.c,
# mprof_find_local_debuginfo): a real program whose libraries have no
# local debug info (sqlite3's libsqlite3, libz, ...) writes a heap profile
# at rate 1 and the goroutine-style stacks, and the dynamic loader's log
# shows that neither libdebuginfod nor libcurl was ever loaded into it.
# libdwfl's standard search dlopens them for every module it finds no
# debug file for, which initializes libcurl and OpenSSL inside the host.
# Usage: no_debuginfod.sh LIBMPROF
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
need_cmd sqlite3

LD_DEBUG=files MPROF_RATE=1 MPROF_HEAP="$T/heap.pb.gz" LD_PRELOAD="$LIB" \
    sqlite3 :memory: "create table t(x); insert into t values(randomblob(5000));
                      select count(*) from t;" >"$T/out" 2>"$T/err"
check "sqlite3 ran" test "$(cat "$T/out")" = 1
check "the heap profile was written" test -s "$T/heap.pb.gz"
check "the loader's log was captured" grep -q 'file=' "$T/err"
check "libdebuginfod was never loaded" test "$(grep -c 'file=libdebuginfod' "$T/err")" = 0
check "libcurl was never loaded" test "$(grep -c 'file=libcurl' "$T/err")" = 0
finish
