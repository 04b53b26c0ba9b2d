#!/bin/sh
# The CPU profiler's API contract (test_cpu_api.c), plus what it printed:
# the foreign-SIGPROF-handler warning exactly once, and readable profiles.
#
# usage: cpu_api.sh TEST_CPU_API
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
BIN=$1

if ! timeout 60 "$BIN" "$T" >"$T/out.txt" 2>"$T/err.txt"; then
    cat "$T/out.txt" "$T/err.txt"
    echo "FAIL: $BIN failed"
    exit 1
fi
cat "$T/out.txt" "$T/err.txt"
N=$(grep -c "own SIGPROF handler" "$T/err.txt" || true)
check_expr "foreign SIGPROF handler reported exactly once (got $N)" "$N == 1"
N=$(grep -c "^mprof: " "$T/err.txt" || true)
check_expr "nothing else on stderr from mprof (got $N lines)" "$N == 1"

pprof_top "$T/api.txt" "$T/api.pprof"
check_expr "profile written by path holds api_burn" "$(cum_ms "$T/api.txt" api_burn) > 0"
pprof_top "$T/fd.txt" "$T/fd.pprof"
check_expr "profile written to a descriptor holds api_burn" "$(cum_ms "$T/fd.txt" api_burn) > 0"
finish
