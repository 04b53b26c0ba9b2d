#!/bin/bash
# The public API end to end: test_api writes every kind by name; the real
# `go tool pprof` must read each pprof file with no binary at hand, and
# `mprof dump` the heap dump.  Usage: api_check.sh TEST_API MPROF_CLI
. "$(dirname "$0")/../lib/testlib.sh"
need_go
API=$1 CLI=$2
"$API" "$T" >"$T/api.out" 2>"$T/api.err" || { cat "$T/api.err"; fail "test_api"; }
for kind in heap allocs block mutex threadcreate goroutine threads; do
    f=$(ls "$T"/$kind.*.out 2>/dev/null | head -1)
    if [ -z "$f" ]; then fail "$kind: no file written"; continue; fi
    if pprof -raw "$f" >"$T/$kind.raw"; then pass "$kind: go tool pprof reads it"
    else fail "$kind: go tool pprof: $(cat "$T/pprof.err")"; fi
done
grep -q "worker" "$T/heap.raw" 2>/dev/null && pass "heap names the allocating function" ||
    fail "heap profile lacks worker()"
grep -q "^PeriodType: threadcreate count" "$T/threadcreate.raw" && pass "threadcreate period type" ||
    fail "threadcreate period type"
d=$(ls "$T"/heapdump.*.out 2>/dev/null | head -1)
if [ -n "$d" ] && "$CLI" dump "$d" >"$T/dump.txt" 2>&1; then pass "mprof dump reads the heap dump"
else fail "mprof dump: $(cat "$T/dump.txt" 2>/dev/null)"; fi
grep -q "^heap profile: " "$T/heap.txt" && pass "heap debug=1 text" || fail "heap debug=1 text"
ls "$T"/*.tmp.* >/dev/null 2>&1 && fail "temporary files left" || pass "no temporary files left"

# Settings read once at start: the program empties its environment before
# exit; one signal writes a numbered file of every kind with a file at exit.
mkdir -p "$T/env"
if MPROF_HEAP="$T/env/exit.pb.gz" MPROF_BLOCK="$T/env/block.pb.gz" MPROF_SIGNAL=USR2 \
    "$API" "$T/env" env >"$T/env.out" 2>"$T/env.err"; then pass "numbered files of every kind on a signal"
else fail "env mode: $(cat "$T/env.err")"; fi
for f in exit block; do
    if [ -s "$T/env/$f.pb.gz" ] && pprof -raw "$T/env/$f.pb.gz" >/dev/null; then
        pass "$f profile at exit after clearenv()"
    else fail "$f profile at exit missing after clearenv(): $(cat "$T/env.err")"; fi
done
grep -q "^mprof: wrote block profile $T/env/block.0001.pb.gz (on SIGUSR2; view with: mprof top $T/env/block.0001.pb.gz)$" "$T/env.err" &&
    pass "snapshot announced once, by kind" || fail "snapshot message: $(cat "$T/env.err")"
finish
