#!/bin/sh
# Profiles on a stop signal (src/runtime/stop_signals.c): a program whose
# SIGTERM, SIGINT, SIGHUP and SIGQUIT have their default action writes its
# exit profiles when one comes and dies of it with the usual status; one
# with its own handler stays in charge and writes them at its exit, once; a
# forked child writes its own; threads allocating meanwhile do not stop
# it; a child that empties its environment still writes (settings are read
# at start); and a real server (Debian's python3 http.server) under `mprof run`,
# stopped with SIGTERM as systemd stops it, leaves a readable profile.
# Usage: core_stop_signals.sh LIBMPROF STOP_TARGET MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2
MPROF=$3

# A shell starts background commands with SIGINT and SIGQUIT ignored, and
# an ignored signal is left alone (nohup's SIGHUP too): give the target the
# default actions, as a terminal or a service manager does.
DEFAULTS='import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])'

# start NAME MODE: the target under the library (rate 1: its blocks are
# all in the profile), its pid in $pid once it said "ready" ("child N").
start() {
    env MPROF_RATE=1 MPROF_HEAP="$T/$1.%p.pb.gz" LD_PRELOAD="$LIB" \
        /usr/bin/python3 -c "$DEFAULTS" "$PROG" "$2" >"$T/$1.out" 2>"$T/$1.err" &
    pid=$!
    i=0
    while ! grep -q "ready\|child" "$T/$1.out" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.05; i=$((i + 1))
    done
}

profile_has() { # WHAT FILE FUNC
    if [ ! -s "$2" ]; then fail "$1: no profile $2"; return; fi
    pprof_raw "$2" "$T/p.raw" || { fail "$1: pprof cannot read $2"; return; }
    n=$(pyq total "$T/p.raw" inuse_space "$3")
    check_expr "$1: the profile holds $3 ($n bytes)" "$n > 0"
}

for sig in TERM INT HUP QUIT; do
    start "$sig" wait
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    num=$(kill -l "$sig" 2>/dev/null || echo 0)
    [ "$sig" = TERM ] && num=15; [ "$sig" = INT ] && num=2; [ "$sig" = HUP ] && num=1; [ "$sig" = QUIT ] && num=3
    check "SIG$sig: dies of the signal (status $rc)" test "$rc" -eq $((128 + num))
    profile_has "SIG$sig" "$T/$sig.$pid.pb.gz" stop_keep
    check "SIG$sig: one line on stderr" test "$(grep -c 'mprof: wrote heap profile' "$T/$sig.err")" -eq 1
done

start own own
kill -TERM "$pid"
wait "$pid"
rc=$?
check "own handler: the program's exit status ($rc)" test "$rc" -eq 3
profile_has "own handler" "$T/own.$pid.pb.gz" stop_keep
check "own handler: written once" test "$(grep -c 'mprof: wrote heap profile' "$T/own.err")" -eq 1

start threads threads
sleep 0.3
kill -TERM "$pid"
run_watch 30 sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.05; done"
wait "$pid"
rc=$?
check "threads allocating: dies of SIGTERM ($rc)" test "$rc" -eq 143
profile_has "threads allocating" "$T/threads.$pid.pb.gz" stop_keep

start fork fork
child=$(sed -n 's/^child //p' "$T/fork.out" | head -1)
kill -TERM "$child"
wait "$pid"
check_grep "forked child: died of SIGTERM" "child status 143" "$T/fork.out"
profile_has "forked child" "$T/fork.$child.pb.gz" child_keep

# Settings are read at start: a child that empties its environment still
# writes its own profile where the parent was told to.
env MPROF_RATE=1 MPROF_HEAP="$T/env.%p.pb.gz" LD_PRELOAD="$LIB" "$PROG" clearenv >"$T/env.out" 2>"$T/env.err"
check "clearenv: the program ran" test $? -eq 0
child=$(sed -n 's/^child //p' "$T/env.out")
profile_has "a child that called clearenv()" "$T/env.$child.pb.gz" child_keep

# An ignored signal stays ignored (nohup): SIGINT to a background job.
env MPROF_HEAP="$T/ign.%p.pb.gz" LD_PRELOAD="$LIB" "$PROG" wait >"$T/ign.out" 2>&1 &
ipid=$!
sleep 0.3
kill -INT "$ipid"
sleep 0.3
check "an ignored SIGINT stays ignored" kill -0 "$ipid"
kill -KILL "$ipid"
wait "$ipid" 2>/dev/null

# A real server, stopped as a service manager stops it.
env PYTHONDONTWRITEBYTECODE=1 "$MPROF" run --heap "$T/srv.%p.pb.gz" -- \
    /usr/bin/python3 -u -m http.server --bind 127.0.0.1 0 >"$T/srv.out" 2>"$T/srv.err" &
spid=$!
i=0
while ! grep -q "Serving HTTP" "$T/srv.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/srv.out")
check "python3 http.server answers" sh -c "curl -sf -o /dev/null http://127.0.0.1:$port/"
kill -TERM "$spid"
wait "$spid"
rc=$?
check "python3 http.server: dies of SIGTERM through mprof run ($rc)" test "$rc" -eq 143
if [ -s "$T/srv.$spid.pb.gz" ]; then
    check "python3 http.server: its profile is read by pprof" pprof_raw "$T/srv.$spid.pb.gz" "$T/srv.raw"
else
    fail "python3 http.server: no profile $T/srv.$spid.pb.gz"
fi
check_grep "python3 http.server: said where the profile went" "mprof: wrote heap profile" "$T/srv.err"
finish
