#!/bin/bash
# Malformed and hostile clients against /debug/pprof inside a running
# program: garbage bytes, huge and numerous headers, slowloris
# connections, a flood of idle connections, 50 concurrent clients, clients
# that leave mid-profile.  Throughout, the server keeps answering within a
# second or two, and the profiled program keeps printing progress.  All
# traffic goes to 127.0.0.1; every loop is bounded.
#
# usage: http_hostile.sh LIBMPROF TEST_HTTP_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
TARGET=$2
need_go
need_cmd curl

start_target main MPROF_HTTP=127.0.0.1:0
require_server main
MAIN=$PID
BASE=http://127.0.0.1:$PORT/debug/pprof
check "server announced" test -n "$PORT"
P0=$(progress main)
# Descriptors of the program before the attack; compared at the end.
FDS0=$(ls /proc/$MAIN/fd | wc -l)

# answers_quickly WHAT: the index comes back 200 within 2 s.
answers_quickly() {
    check "still answering: $1" \
        test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/")" = 200
}

# raw BYTES_FILE: sends the file on a fresh connection, prints the status
# line of the answer (empty if the server just closed).
raw() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return
    cat "$1" >&3 2>/dev/null
    timeout 8 head -c 200 <&3 | head -1 | tr -d '\r'
    exec 3<&- 3>&-
}

# ------------------------------------------------------------- garbage
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n' >"$T/tls"
check "TLS hello: 400" test "$(raw "$T/tls")" = "HTTP/1.1 400 Bad Request"
for i in 1 2 3 4 5; do
    head -c 3000 /dev/urandom >"$T/junk"
    printf '\r\n\r\n' >>"$T/junk"
    raw "$T/junk" >/dev/null
done
answers_quickly "after random bytes"
printf 'GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n' >"$T/twohosts"
check "two Host headers: 400" test "$(raw "$T/twohosts")" = "HTTP/1.1 400 Bad Request"
printf 'GET /debug/pprof/ HTTP/9.9\r\n\r\n' >"$T/version"
check "HTTP/9.9: 505" test "$(raw "$T/version")" = "HTTP/1.1 505 HTTP Version Not Supported"
printf 'GET /debug/pprof/heap%%00 HTTP/1.1\r\n\r\n' >"$T/nul"
check "%00 in the path: 400" test "$(raw "$T/nul")" = "HTTP/1.1 400 Bad Request"

# ------------------------------------------------------ oversized heads
BIG=$(head -c 20000 /dev/zero | tr '\0' x)
check "20 KB header: 431" test "$(status "$BASE/" -H "X-Big: $BIG")" = 431
HDRS=()
for i in $(seq 1 100); do HDRS+=(-H "X-Many-$i: v"); done
check "100 headers: 431" test "$(status "$BASE/" "${HDRS[@]}")" = 431
LONG=$(head -c 10000 /dev/zero | tr '\0' a)
CODE=$(status "$BASE/$LONG")
check "10 KB URL: 414 or 431 (got $CODE)" test "$CODE" = 431 -o "$CODE" = 414
{ printf 'GET /debug/pprof/ HTTP/1.1\r\nX: '; head -c 1000000 /dev/zero | tr '\0' y; } >"$T/megahead"
CODE=$(raw "$T/megahead")
check "1 MB without a line end: 431 (got '$CODE')" test "$CODE" = "HTTP/1.1 431 Request Header Fields Too Large"
answers_quickly "after oversized heads"

# ----------------------------------------------------------- slowloris
# Ten clients each send a byte every half second and never finish their
# head: each is cut off at the 5 s head deadline (408), however long it
# keeps dribbling.  Meanwhile the server answers others at once.
slow_client() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return
    local start=$(date +%s%N)
    (
        printf 'GET /debug/pprof/ HTTP/1.1\r\n'
        for _ in $(seq 1 30); do printf 'X'; sleep 0.5; done
    ) >&3 2>/dev/null &
    local writer=$!
    timeout 20 cat <&3 >"$T/slow.$1"
    echo $(( ($(date +%s%N) - start) / 1000000 )) >"$T/slow.$1.ms"
    kill $writer 2>/dev/null
    wait $writer 2>/dev/null
    exec 3<&- 3>&-
}
SLOW=()
for i in $(seq 1 10); do slow_client "$i" & SLOW+=($!); done
sleep 1
answers_quickly "with 10 slowloris clients connected"
wait "${SLOW[@]}"
CUT=0
for i in $(seq 1 10); do
    ms=$(cat "$T/slow.$i.ms" 2>/dev/null || echo 99999)
    [ "$ms" -ge 4000 ] && [ "$ms" -le 9000 ] && CUT=$((CUT + 1))
done
check "slowloris clients cut off after about 5 s ($CUT of 10)" test "$CUT" = 10
check "slowloris clients told 408" grep -q "^HTTP/1.1 408" "$T/slow.1"

# ------------------------------------------------- idle connection flood
# 100 connections that say nothing: more than the 64 slots.  The oldest
# idle ones are evicted to make room, so a real client still gets in.
IDLE=()
for i in $(seq 1 100); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" && IDLE+=("$fd")
done
answers_quickly "with 100 idle connections open"
for fd in "${IDLE[@]}"; do exec {fd}<&-; done

# -------------------------------------------------- 50 concurrent clients
rm -f "$T"/conc.*
CLIENTS=()
for i in $(seq 1 50); do
    case $((i % 4)) in
        0) path=heap ;;
        1) path=cmdline ;;
        2) path="heap?debug=1" ;;
        3) path="" ;;
    esac
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$BASE/$path" >"$T/conc.$i" &
    CLIENTS+=($!)
done
wait "${CLIENTS[@]}"
OK=$(cat "$T"/conc.* | grep -c '^200$')
check "50 concurrent clients all served ($OK of 50)" test "$OK" = 50

# ------------------------------------------------- leaving mid-profile
# Clients that give up during a CPU profile or a delta window: the
# profile is cancelled at once (the next one is not refused with 409),
# and no descriptor or file stays behind.
for i in 1 2 3; do
    curl -s -o /dev/null --max-time 1 "$BASE/profile?seconds=30"
    curl -s -o /dev/null --max-time 1 "$BASE/heap?seconds=30"
done
sleep 0.3
check "CPU profile after abandoned ones: 200" test "$(status "$BASE/profile?seconds=1")" = 200
# A client that stops reading a large answer and closes: no SIGPIPE.
for i in 1 2 3; do
    curl -s --max-time 5 "$BASE/heap?debug=1" | head -c 10 >/dev/null
done
sleep 0.5
FDS1=$(ls /proc/$MAIN/fd | wc -l)
check "no descriptors left behind ($FDS0 before, $FDS1 after)" test "$FDS1" = "$FDS0"
check "no memfd left behind" test "$(ls -l /proc/$MAIN/fd | grep -c memfd)" = 0

# -------------------------------------------------------------- verdict
P1=$(progress main)
check "the program kept running under attack (progress $P0 -> $P1)" test "$P1" -gt $((P0 + 50))
check "the program is alive" kill -0 "$MAIN"
stop_target main "$MAIN"
check "the program exits with status 0" test "$STATUS" = 0
finish
