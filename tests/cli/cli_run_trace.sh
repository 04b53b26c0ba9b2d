#!/bin/bash
# `mprof run --trace FILE --heapdump FILE`: MPROF CLI BINARY.  The options
# reach the library: the trace names the allocating function, the dump
# reads back with `mprof dump` and lists the live blocks, and no default
# heap profile is written (the options ask for other outputs).
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1 BIN=$2
cd "$T"
out=$("$MPROF" run --rate 1 --trace "$T/trace.txt" --heapdump "$T/heap.dump" -- "$BIN" 10 2>"$T/err") ||
    { echo "FAIL: mprof run exited $?"; cat "$T/err"; exit 1; }
[ "$out" = "served 10 requests, 10120 bytes of responses" ] || fail "program output changed: $out"
grep -q '^tracealloc(0x[0-9a-f]*, 2048)' "$T/trace.txt" || fail "no tracealloc of the 2048-byte responses"
grep -q 'format_response' "$T/trace.txt" || fail "trace does not name format_response"
grep -q '^tracefree(0x' "$T/trace.txt" || fail "no tracefree"
"$MPROF" dump "$T/heap.dump" >"$T/dump.txt" || fail "mprof dump could not read the dump"
grep -q 'remember' "$T/dump.txt" || fail "dump does not show the leaking function"
ls "$T"/mprof.heap.* >/dev/null 2>&1 && fail "a default heap profile was written although other outputs were asked for"
"$MPROF" run --trace 2>"$T/err2" -- "$BIN" 1; [ $? = 2 ] || fail "--trace without a file must exit 2"
finish
