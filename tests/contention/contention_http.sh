#!/bin/sh
# The /debug/pprof entries of the contention, thread-creation and
# all-thread-stack profiles, on a program that contends and creates
# threads continuously (contention_target.c "serve"): listed on the index,
# served as pprof and as debug=1/debug=2 text, block and mutex also over a
# ?seconds= window; "threads" is the same as "goroutine".
#
# usage: contention_http.sh LIBMPROF TARGET
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2
need_cmd curl

env LD_PRELOAD="$LIB" MPROF_HTTP=127.0.0.1:0 MPROF_BLOCK_RATE=1 MPROF_MUTEX_FRACTION=1 \
    "$BIN" serve "$T/stop" >"$T/serve.out" 2>"$T/serve.err" &
PID=$!
kill_at_exit $PID
PORT=""
for _ in $(seq 1 100); do
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' \
        "$T/serve.err" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.05
done
[ -n "$PORT" ] || { echo "FAIL: not serving:"; cat "$T/serve.err"; exit 1; }
URL=http://127.0.0.1:$PORT/debug/pprof
sleep 1 # some contention first

get() { # NAME PATH
    curl -sS -m 30 -o "$T/$1" -w "%{http_code}" "$URL/$2" >"$T/$1.code" 2>&1 || true
}

get index ""
for p in block mutex threadcreate goroutine threads; do
    check_grep "index lists $p" "href='$p?debug=1'" "$T/index"
done

get block.pb block
pprof_lines "$T/block.txt" "$T/block.pb" -unit=ms
check_grep "block (pprof): the waiter's function" "waiter_blocks_here" "$T/block.txt"
get block.1 "block?debug=1"
check_grep "block?debug=1: Go's legacy header" "--- contention:" "$T/block.1"
check_grep "block?debug=1: symbolized record" "waiter_blocks_here" "$T/block.1"

get mutex.1 "mutex?debug=1"
check_grep "mutex?debug=1: header" "--- mutex:" "$T/mutex.1"
check_grep "mutex?debug=1: sampling period" "sampling period=1" "$T/mutex.1"
check_grep "mutex?debug=1: the holder's function" "holder_critical_section" "$T/mutex.1"

get mutex.window "mutex?seconds=1"
get mutex.all mutex
pprof_lines "$T/mutex.all.txt" "$T/mutex.all" -unit=ms
pprof_lines "$T/mutex.window.txt" "$T/mutex.window" -unit=ms
ALL=$(total_of "$T/mutex.all.txt")
WIN=$(total_of "$T/mutex.window.txt")
echo "mutex delay: 1 s window ${WIN} ms, cumulative ${ALL} ms right after it"
check_expr "mutex?seconds=1: a window's worth (some, and less than everything so far)" \
    "$WIN > 0 && $WIN < $ALL"
check_grep "mutex?seconds=1: the holder's function" "holder_critical_section" \
    "$T/mutex.window.txt"
get block.window "block?seconds=1"
pprof_lines "$T/block.window.txt" "$T/block.window" -unit=ms
check_grep "block?seconds=1: the waiter's function" "waiter_blocks_here" "$T/block.window.txt"

get tc.1 "threadcreate?debug=1"
check_grep "threadcreate?debug=1: header" "threadcreate profile: total" "$T/tc.1"
check_grep "threadcreate?debug=1: the creating function" "run_mutex" "$T/tc.1"
get tc.pb threadcreate
pprof_lines "$T/tc.txt" "$T/tc.pb"
check_grep "threadcreate (pprof)" "run_mutex" "$T/tc.txt"

get g.2 "goroutine?debug=2"
check_grep "goroutine?debug=2: thread headers" "thread $PID " "$T/g.2"
check_grep "goroutine?debug=2: the server's own thread" '"mprof-http"' "$T/g.2"
check_grep "goroutine?debug=2: the main thread's code" "run_mutex(...)" "$T/g.2"
get g.1 "threads?debug=1"
check_grep "threads?debug=1 (alias): count profile" "goroutine profile: total" "$T/g.1"
get g.pb goroutine
pprof_lines "$T/g.txt" "$T/g.pb"
check_grep "goroutine (pprof)" "Type: goroutine" "$T/g.txt"
get g.window "goroutine?seconds=1"
check_expr "goroutine?seconds=1 is refused (400, as in Go)" "$(cat "$T/g.window.code") == 400"

touch "$T/stop"
for _ in $(seq 1 200); do kill -0 $PID 2>/dev/null || break; sleep 0.05; done
if kill -0 $PID 2>/dev/null; then
    fail "the program did not stop"
else
    status=0
    wait $PID || status=$?
    if [ "$status" -eq 0 ]; then
        pass "the program exited cleanly"
    else
        fail "exit status $status"
    fi
fi
finish
