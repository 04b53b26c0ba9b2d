#!/bin/bash
# /debug/pprof end to end: an unmodified program under LD_PRELOAD with
# MPROF_HTTP, read with the real `go tool pprof` and curl.  Profiles show
# the expected functions; the index, debug=1 text, cmdline, headers and
# every status code are Go's; port in use and bad addresses leave the
# program running; a forked child does not keep the port; exit with a
# profile in flight is clean.
#
# usage: http_endpoints.sh LIBMPROF TEST_HTTP_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
TARGET=$2
need_go
need_cmd curl

start_target main MPROF_HTTP=127.0.0.1:0
require_server main
MAIN=$PID
BASE=http://127.0.0.1:$PORT/debug/pprof
check "announced once: mprof: serving http://127.0.0.1:PORT/debug/pprof/" \
    test -n "$PORT" -a "$(grep -c '^mprof: serving' "$T/main.err")" = 1
# Until the first sampled block is live (the program allocates 9 MB/s).
for _ in $(seq 1 100); do
    curl -s "$BASE/heap?debug=1" | head -1 | grep -q '^heap profile: [1-9]' && break
    sleep 0.1
done

# ------------------------------------------------------------ profiles
pprof -top "$BASE/heap" >"$T/heap.top"
check "go tool pprof -top heap: http_target_grow_heap in use" grep -q http_target_grow_heap "$T/heap.top"
check "heap default type is inuse_space" grep -q "^Type: inuse_space" "$T/heap.top"
check "heap: the freed churn is not in use" bash -c "! grep -q http_target_churn '$T/heap.top'"

pprof -top "$BASE/allocs" >"$T/allocs.top"
check "allocs default type is alloc_space" grep -q "^Type: alloc_space" "$T/allocs.top"
check "allocs: http_target_churn allocated" grep -q http_target_churn "$T/allocs.top"

pprof -top "$BASE/peak" >"$T/peak.top"
check "peak: read by pprof, in use at the peak" grep -q "^Type: inuse_space" "$T/peak.top"
check "peak: http_target_grow_heap held memory at the peak" grep -q http_target_grow_heap "$T/peak.top"

pprof -top "$BASE/profile?seconds=2" >"$T/cpu.top"
check "go tool pprof -top profile?seconds=2: http_target_burn_cpu" grep -q http_target_burn_cpu "$T/cpu.top"
check "CPU profile lasted 2 s" grep -q "^Duration: 2" "$T/cpu.top"

pprof -top "$BASE/heap?seconds=1" >"$T/delta.top"
check "delta heap?seconds=1 read by pprof, duration 1 s" grep -q "^Duration: 1" "$T/delta.top"
check "delta heap shows the growth in http_target_grow_heap" grep -q http_target_grow_heap "$T/delta.top"
pprof -top "$BASE/allocs?seconds=1" >"$T/delta-allocs.top"
check "delta allocs shows http_target_churn" grep -q http_target_churn "$T/delta-allocs.top"
check "pprof printed no errors" bash -c "! grep -qi 'error\|failed' '$T/pprof.err'"

# ---------------------------------------------------------- text forms
curl -s -D "$T/index.h" -o "$T/index.html" "$BASE/"
check "index is HTML" grep -qi "^Content-Type: text/html" "$T/index.h"
for p in heap allocs peak profile cmdline; do
    check "index links $p?debug=1" grep -q "href='$p?debug=1'>$p</a>" "$T/index.html"
done
check "index describes heap" grep -q "A sampling of memory allocations of live objects" "$T/index.html"

curl -s -D "$T/debug.h" -o "$T/heap.txt" "$BASE/heap?debug=1"
check "debug=1 is text/plain" grep -qi "^Content-Type: text/plain" "$T/debug.h"
check "debug=1 has no attachment" bash -c "! grep -qi '^Content-Disposition' '$T/debug.h'"
check "debug=1 header: heap profile: N: B [N: B] @ heap/8192" \
    grep -qE '^heap profile: [0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @ heap/8192$' "$T/heap.txt"
check "debug=1 record lines with hex stacks" grep -qE '^[0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @( 0x[0-9a-f]+)+$' "$T/heap.txt"
check "debug=1 symbolized: #<tab>0x...<tab>http_target_grow_heap<tab>file:line" \
    grep -qP '^#\t0x[0-9a-f]+\thttp_target_grow_heap(\+0x[0-9a-f]+)?\t\S*test_http_target\.c:[0-9]+$' "$T/heap.txt"
check "debug=1 ends with mprof's statistics, headers on (glibc underneath)" \
    grep -q '^# BlockHeaders = 1$' "$T/heap.txt"
pprof -raw "$T/heap.txt" >"$T/heap-legacy.raw"
check "go tool pprof parses the debug=1 text" grep -q "^Samples:" "$T/heap-legacy.raw"

curl -s -o "$T/cmdline" "$BASE/cmdline"
printf '%s\0%s\0%s\0%s\0%s' "$TARGET" --seconds 200 --stop-file "$T/main.stop" >"$T/cmdline.want"
check "cmdline is argv joined by NUL" cmp -s "$T/cmdline" "$T/cmdline.want"

# -------------------------------------------------------------- headers
curl -s -D "$T/heap.h" -o /dev/null "$BASE/heap"
check "heap: application/octet-stream" grep -qi "^Content-Type: application/octet-stream" "$T/heap.h"
check "heap: attachment named heap" grep -qi '^Content-Disposition: attachment; filename="heap"' "$T/heap.h"
check "heap: X-Content-Type-Options: nosniff" grep -qi "^X-Content-Type-Options: nosniff" "$T/heap.h"
check "heap: Content-Length" grep -qi "^Content-Length: [1-9]" "$T/heap.h"
curl -s -D "$T/delta.h" -o /dev/null "$BASE/heap?seconds=1"
check "delta: attachment named heap-delta" grep -qi 'filename="heap-delta"' "$T/delta.h"
curl -s -I -o "$T/head.h" "$BASE/heap"
check "HEAD heap: 200 with the GET's headers" grep -qi '^HTTP/1.1 200' "$T/head.h"
check "HEAD heap: attachment header" grep -qi '^Content-Disposition: attachment' "$T/head.h"
check "heap?gc=1 accepted" test "$(status "$BASE/heap?gc=1")" = 200

# --------------------------------------------------------- status codes
check "404 unknown profile" test "$(status "$BASE/nope")" = 404
check "404 outside /debug/pprof" test "$(status "http://127.0.0.1:$PORT/")" = 404
check "301 /debug/pprof -> /debug/pprof/" test "$(status "http://127.0.0.1:$PORT/debug/pprof")" = 301
check "400 seconds=abc" test "$(status "$BASE/heap?seconds=abc")" = 400
check "400 seconds=-1" test "$(status "$BASE/profile?seconds=-1")" = 400
check "400 seconds too large" test "$(status "$BASE/profile?seconds=100000")" = 400
check "400 seconds with debug" test "$(status "$BASE/heap?seconds=1&debug=1")" = 400
# The CPU profile answers debug with seconds as heap and mutex do (issue
# 17; debug alone, which the index links to, still runs the profile).
curl -s -o "$T/heap-debug.body" "$BASE/heap?seconds=1&debug=1"
curl -s -D "$T/cpu-debug.h" -o "$T/cpu-debug.body" "$BASE/profile?debug=1&seconds=1"
check "400 profile?debug=1&seconds=1" grep -q "^HTTP/1.1 400" "$T/cpu-debug.h"
check "profile?debug=1&seconds=1 answers as heap does" cmp -s "$T/heap-debug.body" "$T/cpu-debug.body"
check "400 mutex?seconds=1&debug=1" test "$(status "$BASE/mutex?seconds=1&debug=1")" = 400
# Parameters given twice, and malformed ones mprof does not read.
curl -s -D "$T/dup.h" -o "$T/dup.body" "$BASE/heap?seconds=1&seconds=2"
check "400 seconds given twice" grep -q "^HTTP/1.1 400" "$T/dup.h"
check "the 400 names the parameter given twice" grep -q 'duplicate parameter "seconds"' "$T/dup.body"
check "400 debug given twice" test "$(status "$BASE/heap?debug=0&debug=1")" = 400
check "400 a malformed escape in an unknown parameter" test "$(status "$BASE/heap?junk=%zz")" = 400
check "400 %00 in an unknown parameter" test "$(status "$BASE/heap?junk=a%00b")" = 400
check "well-formed unknown parameters are ignored" test "$(status "$BASE/heap?junk=%41&x=1&x=2")" = 200
check "400 seconds on cmdline" test "$(status "$BASE/cmdline?seconds=1")" = 400
check "405 POST" test "$(status "$BASE/heap" -X POST)" = 405
curl -s -D "$T/405.h" -o /dev/null -X PUT "$BASE/heap"
check "405 names Allow: GET, HEAD" grep -qi "^Allow: GET, HEAD" "$T/405.h"
check "403 for a foreign Host (DNS rebinding)" test "$(status "$BASE/" -H 'Host: attacker.example')" = 403

curl -s -o "$T/first.pb.gz" --max-time 20 "$BASE/profile?seconds=3" &
FIRST=$!
sleep 1
curl -s -D "$T/409.h" -o "$T/409.body" --max-time 20 "$BASE/profile?seconds=1"
check "409 while a CPU profile runs" grep -q "^HTTP/1.1 409" "$T/409.h"
check "409 carries X-Go-Pprof for pprof to show" grep -qi "^X-Go-Pprof: 1" "$T/409.h"
wait $FIRST
check "the first CPU profile completed" bash -c "go tool pprof -raw '$T/first.pb.gz' >/dev/null 2>&1"

# ---------------------------------------------- port in use, bad address
MAIN_PORT=$PORT
start_target busy "MPROF_HTTP=127.0.0.1:$MAIN_PORT"
BUSY=$PID
sleep 0.5
check "port in use: one mprof message" \
    test "$(grep -c "^mprof: cannot serve /debug/pprof on 127.0.0.1:$MAIN_PORT: Address already in use" "$T/busy.err")" = 1
check "port in use: the program runs on" kill -0 "$BUSY"
stop_target busy "$BUSY"
check "port in use: the program exits normally" test "$STATUS" = 0

start_target bad MPROF_HTTP=not-an-address
BAD=$PID
check "bad address: one mprof message" test "$(grep -c '^mprof: cannot serve /debug/pprof on "not-an-address"' "$T/bad.err")" = 1
stop_target bad "$BAD"
check "bad address: the program exits normally" test "$STATUS" = 0

# ------------------------------------------------ a window with no bucket
# Sampling off: no bucket exists, before or after the window (qsort and
# bsearch once got a NULL base here, which a UBSan host aborts on).
start_target nobucket MPROF_HTTP=127.0.0.1:0 MPROF_RATE=0
require_server nobucket
NOBUCKET=$PID
for kind in heap allocs; do
    curl -s -D "$T/nobucket-$kind.h" -o "$T/nobucket-$kind.pb.gz" --max-time 20 \
        "http://127.0.0.1:$PORT/debug/pprof/$kind?seconds=1"
    check "$kind?seconds=1 with no bucket: 200" grep -q "^HTTP/1.1 200" "$T/nobucket-$kind.h"
    check "$kind?seconds=1 with no bucket: a profile pprof reads" \
        bash -c "go tool pprof -raw '$T/nobucket-$kind.pb.gz' >/dev/null 2>&1"
done
check "no bucket: the program runs on" kill -0 "$NOBUCKET"
stop_target nobucket "$NOBUCKET"
check "no bucket: the program exits normally" test "$STATUS" = 0

# ----------------------------------------------------------------- fork
start_target forked MPROF_HTTP=127.0.0.1:0 -- --fork-child
FORK_PARENT=$PID
FORK_PORT=$PORT
CHILD=$(sed -n 's/^child //p' "$T/forked.out")
kill_at_exit "$CHILD"
check "fork: the parent serves" test "$(status "http://127.0.0.1:$FORK_PORT/debug/pprof/cmdline")" = 200
check "fork: the child holds no socket" \
    test "$(ls -l /proc/"$CHILD"/fd 2>/dev/null | grep -c 'socket:')" = 0
check "fork: the child announced nothing" test "$(grep -c '^mprof: serving' "$T/forked.err")" = 1

# -------------------------------------------- exit with a profile running
curl -s -o /dev/null --max-time 30 "http://127.0.0.1:$FORK_PORT/debug/pprof/profile?seconds=20" &
CURL=$!
sleep 1
START=$(date +%s)
stop_target forked "$FORK_PARENT"
check "exit during a CPU profile: status 0" test "$STATUS" = 0
check "exit during a CPU profile: prompt" test $(( $(date +%s) - START )) -le 5
wait $CURL
for _ in $(seq 1 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
check "fork: the child stopped too" bash -c "! kill -0 $CHILD 2>/dev/null"
check "fork: the port is free after the parent exits" \
    test "$(status "http://127.0.0.1:$FORK_PORT/debug/pprof/" --max-time 2)" = 000

# ------------------------------------------------------------ main exit
P=$(progress main)
check "the profiled program kept running (progress $P)" test "${P:-0}" -gt 50
stop_target main "$MAIN"
check "the profiled program exits with status 0" test "$STATUS" = 0
check "no mprof warnings besides the announcement" \
    test "$(grep -c '^mprof:' "$T/main.err")" = 1
finish
