#!/bin/sh
# The CPU profiler's API contract (test_cpu_api.c), plus what it printed:
# the foreign-SIGPROF-handler warning exactly once, and readable profiles.
#
# usage: cpu_api.sh TEST_CPU_API
. "$(dirname "$0")/cpu_lib.sh"
BIN=$1

if ! timeout 60 "$BIN" "$WORK" >"$WORK/out.txt" 2>"$WORK/err.txt"; then
    cat "$WORK/out.txt" "$WORK/err.txt"
    echo "FAIL: $BIN failed"
    exit 1
fi
cat "$WORK/out.txt" "$WORK/err.txt"
N=$(grep -c "own SIGPROF handler" "$WORK/err.txt" || true)
check "foreign SIGPROF handler reported exactly once (got $N)" "$N == 1"
N=$(grep -c "^mprof: " "$WORK/err.txt" || true)
check "nothing else on stderr from mprof (got $N lines)" "$N == 1"

pprof_top "$WORK/api.txt" "$WORK/api.pprof"
check "profile written by path holds api_burn" "$(cum_ms "$WORK/api.txt" api_burn) > 0"
pprof_top "$WORK/fd.txt" "$WORK/fd.pprof"
check "profile written to a descriptor holds api_burn" "$(cum_ms "$WORK/fd.txt" api_burn) > 0"
finish
