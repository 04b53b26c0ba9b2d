#!/bin/bash
# Heap dumps without HTTP on an unmodified program under LD_PRELOAD:
# MPROF_SIGNAL (by name and by number) and MPROF_INTERVAL write numbered,
# complete profiles that `go tool pprof` reads, named after MPROF_HEAP (or
# mprof.heap.%p in the directory the program started in), with no
# temporary file left; bad values give one message and change nothing.
#
# usage: http_dumps.sh LIBMPROF TEST_HTTP_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
TARGET=$2
need_go
need_cmd curl

# wait_file PATH: up to 10 s.
wait_file() {
    for _ in $(seq 1 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

valid_profile() { # valid_profile PATH: pprof reads it and it has samples
    pprof -raw "$1" >"$T/raw.txt" && grep -q "^Samples:" "$T/raw.txt"
}

# Until the first sampled block is live (the program allocates 9 MB/s):
# a dump taken before that is valid but shows nothing.
settle() { sleep 2.5; }

# ----------------------------------------------------- MPROF_SIGNAL=name
mkdir -p "$T/sig"
start_target sig MPROF_SIGNAL=SIGUSR2 "MPROF_HEAP=$T/sig/srv.%p.pb.gz"
SIG=$PID
settle
kill -USR2 "$SIG"
check "SIGUSR2 writes srv.PID.0001.pb.gz" wait_file "$T/sig/srv.$SIG.0001.pb.gz"
kill -USR2 "$SIG"
check "a second SIGUSR2 writes .0002" wait_file "$T/sig/srv.$SIG.0002.pb.gz"
check "dump 1 is a valid profile" valid_profile "$T/sig/srv.$SIG.0001.pb.gz"
check "dump 2 is a valid profile" valid_profile "$T/sig/srv.$SIG.0002.pb.gz"
pprof -top "$T/sig/srv.$SIG.0002.pb.gz" >"$T/sig.top"
check "the dump shows http_target_grow_heap" grep -q http_target_grow_heap "$T/sig.top"
check "announced on stderr" grep -q "^mprof: wrote heap profile $T/sig/srv.$SIG.0001.pb.gz (on SIGUSR2; view with: mprof top $T/sig/srv.$SIG.0001.pb.gz)\$" "$T/sig.err"
# A burst: coalesced into at least one more dump, never a crash.
for _ in $(seq 1 20); do kill -USR2 "$SIG"; done
check "a burst of signals gives another dump" wait_file "$T/sig/srv.$SIG.0003.pb.gz"
check "the program survives its signals" kill -0 "$SIG"
stop_target sig "$SIG"
check "the program exits with status 0" test "$STATUS" = 0
check "no temporary file left" test -z "$(ls "$T/sig" | grep tmp)"
check "MPROF_HEAP itself is still written at exit" valid_profile "$T/sig/srv.$SIG.pb.gz"

# --------------------------------------------------- MPROF_SIGNAL=number
mkdir -p "$T/num"
start_target num MPROF_SIGNAL=10 "MPROF_HEAP=$T/num/n.pb.gz"
NUM=$PID
settle
kill -USR1 "$NUM"
check "MPROF_SIGNAL=10: SIGUSR1 writes n.0001.pb.gz" wait_file "$T/num/n.0001.pb.gz"
check "and it is valid" valid_profile "$T/num/n.0001.pb.gz"
stop_target num "$NUM"

# -------------------------------------------- MPROF_INTERVAL, default name
# Started in $T/cwd; the program never changes directory, but the pattern
# is resolved there at start-up anyway.
mkdir -p "$T/cwd"
(cd "$T/cwd" && start_target interval MPROF_INTERVAL=1 && echo "$PID" >"$T/interval.pid")
INT=$(cat "$T/interval.pid")
kill_at_exit "$INT"
check "interval dump 1: mprof.heap.PID.0001.pb.gz" wait_file "$T/cwd/mprof.heap.$INT.0001.pb.gz"
check "interval dump 3 within a few seconds" wait_file "$T/cwd/mprof.heap.$INT.0003.pb.gz"
touch "$T/interval.stop"
for _ in $(seq 1 100); do kill -0 "$INT" 2>/dev/null || break; sleep 0.1; done
check "interval: the program stopped" bash -c "! kill -0 $INT 2>/dev/null"
for f in "$T"/cwd/mprof.heap.$INT.*.pb.gz; do
    check "$(basename "$f") is a valid profile" valid_profile "$f"
done
check "interval dumps say so on stderr" grep -q "(every 1 s; view with: mprof top [^ ]*)\$" "$T/interval.err"
check "no temporary file left" test -z "$(ls "$T/cwd" | grep tmp)"

# ------------------------------------------------------------ bad values
start_target bad MPROF_SIGNAL=SIGBOGUS MPROF_INTERVAL=soon "MPROF_HEAP=$T/bad.pb.gz"
BAD=$PID
sleep 0.5
check "bad MPROF_SIGNAL: one message" test "$(grep -c '^mprof: ignoring MPROF_SIGNAL="SIGBOGUS"' "$T/bad.err")" = 1
check "bad MPROF_INTERVAL: one message" test "$(grep -c '^mprof: ignoring MPROF_INTERVAL="soon"' "$T/bad.err")" = 1
check "bad values: the program runs on" kill -0 "$BAD"
stop_target bad "$BAD"
check "bad values: exit status 0" test "$STATUS" = 0
check "bad values: no dump written" test -z "$(ls "$T" | grep 'bad\.0')"

start_target kill MPROF_SIGNAL=SIGKILL
KILLER=$PID
check "MPROF_SIGNAL=SIGKILL refused" grep -q '^mprof: ignoring MPROF_SIGNAL="SIGKILL"' "$T/kill.err"
stop_target kill "$KILLER"
finish
