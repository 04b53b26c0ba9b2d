#!/bin/bash
# Faults around a profiled program, one scenario per CTest test
# (docs/reliability.md lists them with what mprof promises).  For each: the
# host keeps running and exits as it would without mprof, mprof says one
# line on stderr (what went wrong and what to do), and no torn file is left:
# nothing at the final name unless it is a whole profile `mprof top` reads,
# and no temporary file beside it.
#
# usage: faults.sh SCENARIO LIBMPROF MPROF_CLI FAULT_HOST FAULT_LIB HTTP_TARGET
#   SCENARIO: disk_full fd_limit address_limit malloc_null dir_removed
#             dlopen_storm fork_write thread_exit_cpu signal_storm http_flood
. "$(dirname "$0")/../lib/testlib.sh"
SCENARIO=$1
LIB=$2
CLI=$3
HOST=$4
FAULT_LIB=$5
TARGET=$6
[ -f "$LIB" ] || die "$LIB missing: run make first"

# host NAME [ulimit args --] VAR=VALUE... -- HOST_ARGS...: runs the host
# under the preload (bounded, a hang prints its stacks); its output in
# $T/NAME.out and .err, its status in RC.
host() {
    _name=$1
    shift
    _limits=""
    if [ "${1:-}" = ulimit ]; then
        shift
        while [ "$1" != -- ]; do _limits="$_limits $1"; shift; done
        shift
    fi
    _env=()
    while [ "$1" != -- ]; do _env+=("$1"); shift; done
    shift
    (
        # shellcheck disable=SC2086
        [ -z "$_limits" ] || ulimit $_limits || exit 99
        cd "$T" && exec timeout -k 5 60 env LD_PRELOAD="$LIB" "${_env[@]}" "$HOST" "$@"
    ) >"$T/$_name.out" 2>"$T/$_name.err"
    RC=$?
}

# kept_running NAME: exit 0 and the host's own "host ok".
kept_running() {
    if [ "$RC" = 0 ] && grep -q '^host ok$' "$T/$1.out"; then
        pass "$1: the host kept running and exited 0"
    else
        fail "$1: the host ended with status $RC; its output:"
        tail -n 20 "$T/$1.out" "$T/$1.err"
    fi
}

# says_once NAME REGEX: exactly one line of mprof's on stderr, matching REGEX.
says_once() {
    _n=$(grep -c '^mprof:' "$T/$1.err")
    if [ "$_n" = 1 ] && grep -q "^mprof: .*$2" "$T/$1.err"; then
        pass "$1: mprof said one line: $(grep '^mprof:' "$T/$1.err" | cut -c1-150)"
    else
        fail "$1: wanted one mprof line matching '$2', got $_n:"
        grep '^mprof:' "$T/$1.err" | head -10
    fi
}

# not_torn NAME PATH: PATH is absent or a whole profile; no PATH.tmp.* left.
not_torn() {
    if [ -e "$2" ] && ! "$CLI" top "$2" >"$T/top.out" 2>&1; then
        fail "$1: $2 is torn: $(head -2 "$T/top.out")"
    else
        pass "$1: $( [ -e "$2" ] && echo "$2 is a whole profile" || echo "no file at $2")"
    fi
    # shellcheck disable=SC2012
    _left=$(ls -d "$2".tmp.* 2>/dev/null | head -3)
    check "$1: no temporary file left beside $(basename "$2") ${_left}" test -z "$_left"
}

# whole NAME PATH: PATH exists and mprof top reads it.
whole() {
    if [ -f "$2" ] && "$CLI" top "$2" >"$T/top.out" 2>&1; then
        pass "$1: $(basename "$2") written whole ($(stat -c %s "$2") bytes)"
    else
        fail "$1: $2 missing or unreadable: $(head -2 "$T/top.out" 2>/dev/null)"
    fi
}

# Each write mprof makes must succeed here: the only mprof lines are "wrote".
only_wrote() {
    if grep '^mprof:' "$T/$1.err" | grep -vq '^mprof: wrote '; then
        fail "$1: mprof complained:"
        grep '^mprof:' "$T/$1.err" | grep -v '^mprof: wrote ' | head -5
    else
        pass "$1: mprof said nothing but where it wrote"
    fi
}

# started NAME REGEX: waits (5 s at most) for a line matching REGEX in
# $T/NAME.out; the port its server announced in $T/NAME.err into PORT.
started() {
    for _ in $(seq 1 100); do
        grep -q "$2" "$T/$1.out" 2>/dev/null && break
        sleep 0.05
    done
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/$1.err" |
        head -1)
}

# mode_env MODE: the settings of a mode into MODE_ENV (an array).
mode_env() {
    case $1 in
    default) MODE_ENV=() ;;
    rate1) MODE_ENV=(MPROF_RATE=1) ;;
    noheaders) MODE_ENV=(MPROF_RATE=1 MPROF_HEADERS=0) ;;
    esac
}

case $SCENARIO in
disk_full)
    # A full file system, three ways: a private tmpfs filled to the last
    # byte (in a mount namespace of this test), a device that always says
    # ENOSPC (/dev/full: written in place, never replaced by a regular
    # file), and the host's own `ulimit -f`, whose SIGXFSZ would kill the
    # host if mprof let it through.
    # (The symbol cache, whose copy of libc's debug info cannot be kept
    # under 1 KiB either, is off: its own notice is symbol_cache.sh's.)
    host fsize ulimit -f 1 -- MPROF_RATE=1 MPROF_SYMBOL_CACHE=off MPROF_HEAP="$T/fsize.pb.gz" -- \
        write "$T/fsize-api.pb.gz"
    kept_running fsize
    check_grep "fsize: the explicit write returned EFBIG" "write: -27" "$T/fsize.out"
    says_once fsize "cannot write heap profile .*File too large.*ulimit -f"
    not_torn fsize "$T/fsize.pb.gz"
    not_torn fsize "$T/fsize-api.pb.gz"

    # /dev/stdout redirected to a file by the shell: the profile is
    # appended to that file, which is not replaced (the host's own output
    # around it stays in it).
    (cd "$T" && exec timeout -k 5 60 env LD_PRELOAD="$LIB" MPROF_HEAP=/dev/stdout "$HOST" \
        write "$T/stdout-api.pb.gz") >"$T/stdout.file" 2>"$T/stdout.err"
    check "/dev/stdout: the redirected file keeps the host's output" grep -aq '^host ok$' "$T/stdout.file"
    check "/dev/stdout: and holds the profile after it" \
        sh -c "tail -n +3 '$T/stdout.file' | head -c 2 | od -An -tx1 | grep -q '1f 8b'"

    # The HTTP server's answers are files too (a memfd): under ulimit -f
    # the heap profile is refused with 500 and the error, the host runs on.
    (
        ulimit -f 1
        exec env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HTTP=127.0.0.1:0 "$TARGET" --seconds 200 \
            --stop-file "$T/fhttp.stop"
    ) >"$T/fhttp.out" 2>"$T/fhttp.err" &
    FPID=$!
    kill_at_exit "$FPID"
    started fhttp '^progress'
    curl -s -o "$T/fhttp.body" -w '%{http_code}' --max-time 20 \
        "http://127.0.0.1:$PORT/debug/pprof/heap" >"$T/fhttp.code"
    check "fsize over HTTP: the heap profile refused with 500 ($(cat "$T/fhttp.code"))" \
        test "$(cat "$T/fhttp.code")" = 500
    check_grep "fsize over HTTP: the answer names the error" "File too large" "$T/fhttp.body"
    check "fsize over HTTP: the CPU profile still served" \
        test "$(status "http://127.0.0.1:$PORT/debug/pprof/profile?seconds=1")" = 200
    stop_target fhttp "$FPID"
    check "fsize over HTTP: the program ran on and exits 0" test "$STATUS" = 0

    if [ "$(id -u)" = 0 ]; then
        NS="unshare -m"
    else
        NS="unshare -r -m"
    fi
    mkdir -p "$T/small"
    if $NS true 2>/dev/null; then
        # The namespace sees the tmpfs; this script reads what it left in
        # $T/ns.* (the tmpfs is gone with the namespace).
        $NS bash -c '
            T=$1 LIB=$2 HOST=$3 CLI=$4
            mount -t tmpfs -o size=64k tmpfs "$T/small" || { echo "mount failed" >"$T/ns.skip"; exit 0; }
            dd if=/dev/zero of="$T/small/fill" bs=4k 2>/dev/null
            cd "$T" && timeout -k 5 60 env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HEAP="$T/small/h.pb.gz" \
                "$HOST" write "$T/small/api.pb.gz" >"$T/ns.out" 2>"$T/ns.err"
            echo $? >"$T/ns.rc"
            ls -a "$T/small" >"$T/ns.ls"
            # Room for one profile again: the same process writes it whole.
            rm "$T/small/fill"
            cd "$T" && timeout -k 5 60 env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HEAP="$T/small/h.pb.gz" \
                "$HOST" write "$T/small/api.pb.gz" >"$T/ns2.out" 2>"$T/ns2.err"
            "$CLI" top "$T/small/h.pb.gz" >"$T/ns2.top" 2>&1 && echo whole >"$T/ns2.whole"
            # /dev/full, as a node of our own when we are root: if mprof ever
            # renamed over it again, the machine would keep its own.
            if [ "$(id -u)" = 0 ] && mknod "$T/small/full" c 1 7 2>/dev/null; then
                FULL=$T/small/full
            else
                FULL=/dev/full
            fi
            cd "$T" && timeout -k 5 60 env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HEAP="$FULL" \
                "$HOST" write "$T/small/api2.pb.gz" >"$T/full.out" 2>"$T/full.err"
            echo $? >"$T/full.rc"
            stat -c %F "$FULL" >"$T/full.type"
        ' sh "$T" "$LIB" "$HOST" "$CLI"
    else
        echo "no mount namespace here ($NS refused): the tmpfs part is left out" >"$T/ns.skip"
    fi
    if [ -f "$T/ns.skip" ]; then
        echo "note: $(cat "$T/ns.skip")"
    else
        RC=$(cat "$T/ns.rc")
        kept_running ns
        check_grep "tmpfs full: the explicit write returned ENOSPC" "write: -28" "$T/ns.out"
        says_once ns "cannot write heap profile .*No space left on device.*free space"
        check "tmpfs full: nothing but the filler in the folder ($(tr '\n' ' ' <"$T/ns.ls"))" \
            test "$(grep -cv '^\.\.\?$' "$T/ns.ls")" = 1
        check "tmpfs with room again: the profile is written whole" test -f "$T/ns2.whole"
        RC=$(cat "$T/full.rc")
        kept_running full
        says_once full "cannot write heap profile .*No space left on device"
        check "/dev/full is still a device ($(cat "$T/full.type"))" \
            test "$(cat "$T/full.type")" = "character special file"
    fi
    ;;

fd_limit)
    # Every descriptor taken by the host: the profile cannot be opened.
    # (With MPROF_HTTP the exit write succeeds: the server closes its
    # sockets first.)
    host fds ulimit -n 64 -- MPROF_HEAP="$T/fds.pb.gz" -- fds
    kept_running fds
    check_grep "fds: the explicit write returned EMFILE" "explicit write: -24" "$T/fds.out"
    says_once fds "cannot write heap profile .*Too many open files.*raise ulimit -n"
    not_torn fds "$T/fds.pb.gz"
    not_torn fds "$T/fds-explicit.pb.gz"
    # The HTTP server meanwhile: accept fails with EMFILE while the host
    # holds every descriptor; the server waits (no busy loop: its process
    # uses well under a second of CPU in 3 s) and serves the client that
    # waited in the backlog once they are back.
    (
        ulimit -n 64
        cd "$T" && exec timeout -k 5 60 env LD_PRELOAD="$LIB" MPROF_HTTP=127.0.0.1:0 "$HOST" fdshold 3
    ) >"$T/hold.out" 2>"$T/hold.err" &
    HOLD=$!
    kill_at_exit "$HOLD"
    started hold '^holding'
    HPORT=$PORT
    HPID=$(pgrep -P "$HOLD" || echo "$HOLD")
    T0=$(awk '{ print $14 + $15 }' "/proc/$HPID/stat")
    CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HPORT/debug/pprof/cmdline")
    T1=$(awk '{ print $14 + $15 }' "/proc/$HPID/stat" 2>/dev/null || echo "$T0")
    wait "$HOLD"
    RC=$?
    kept_running hold
    check "hold: the client that waited is served once descriptors are back ($CODE)" test "$CODE" = 200
    check_grep "hold: it was answered after the release" released "$T/hold.out"
    check "hold: no busy loop on EMFILE ($((T1 - T0)) ticks of CPU while held)" test $((T1 - T0)) -lt 100
    check "hold: mprof said nothing but where it serves" \
        test "$(grep '^mprof:' "$T/hold.err" | grep -cv 'serving')" = 0
    ;;

address_limit)
    # An address space too small for mprof's threads (their stacks): the
    # CPU profiler and the HTTP server each say so once, the heap profile
    # is still written.  (The stack limit too, which sizes each thread's
    # stack: 8 MiB, Debian's default, whatever the machine running this.)
    host tight ulimit -v 16000 -s 8192 -- MPROF_RATE=1 MPROF_HEAP="$T/tight.pb.gz" \
        MPROF_CPU="$T/tight-cpu.pb.gz" MPROF_HTTP=127.0.0.1:0 -- write "$T/tight-api.pb.gz"
    kept_running tight
    check "tight: one line for the CPU profiler" \
        test "$(grep -c '^mprof: CPU profiler not started.*ulimit -v' "$T/tight.err")" = 1
    check "tight: one line for the HTTP server" \
        test "$(grep -c '^mprof: cannot start the /debug/pprof server thread.*ulimit -v' "$T/tight.err")" = 1
    check "tight: nothing else but where it wrote" \
        test "$(grep '^mprof:' "$T/tight.err" | grep -cv 'CPU profiler not started\|server thread\|^mprof: wrote ')" = 0
    whole tight "$T/tight.pb.gz"
    not_torn tight "$T/tight-cpu.pb.gz"
    ;;

malloc_null)
    # The host's impossible requests get NULL and ENOMEM from every entry
    # point, and under ulimit -v the host runs out of memory three times
    # over; at the default rate, rate 1 and without headers.
    for mode in default rate1 noheaders; do
        mode_env $mode
        host "nomem-$mode" ulimit -v 400000 -- "${MODE_ENV[@]}" MPROF_HEAP="$T/nomem-$mode.pb.gz" -- nomem
        kept_running "nomem-$mode"
        only_wrote "nomem-$mode"
        whole "nomem-$mode" "$T/nomem-$mode.pb.gz"
    done
    ;;

dir_removed)
    # The output folder removed while the program runs: at exit, one line.
    mkdir -p "$T/out"
    host rmdir MPROF_HEAP="$T/out/h.pb.gz" MPROF_CPU="$T/out/c.pb.gz" -- rmdir "$T/out"
    kept_running rmdir
    check "rmdir: one line per profile, saying the folder is gone" \
        test "$(grep -c '^mprof: cannot write .*No such file or directory.*the folder is gone' "$T/rmdir.err")" = 2
    check "rmdir: nothing else" test "$(grep -c '^mprof:' "$T/rmdir.err")" = 2
    check "rmdir: the folder was not made again" test ! -e "$T/out"
    # Periodic snapshots into it meanwhile: said once, not every second.
    mkdir -p "$T/out"
    host interval MPROF_HEAP="$T/out/h.pb.gz" MPROF_INTERVAL=1 -- rmdir "$T/out" 3.5
    kept_running interval
    check "interval: the snapshots' failure said once" \
        test "$(grep -c '^mprof: cannot write heap profile .*further failures are not reported' "$T/interval.err")" = 1
    check "interval: and the exit file's, nothing else" \
        test "$(grep -c '^mprof:' "$T/interval.err")" = 2
    ;;

dlopen_storm)
    # Two threads dlopen and dlclose a library (allocating from it) while
    # the main thread writes the heap profile again and again: the
    # symbolizer's view of the mappings changes under it.
    for mode in default rate1; do
        mode_env $mode
        host "dl-$mode" "${MODE_ENV[@]}" MPROF_HEAP="$T/dl-$mode-exit.pb.gz" -- \
            dlstorm "$FAULT_LIB" "$T/dl-$mode.pb.gz" 3
        kept_running "dl-$mode"
        only_wrote "dl-$mode"
        whole "dl-$mode" "$T/dl-$mode.pb.gz"
        whole "dl-$mode" "$T/dl-$mode-exit.pb.gz"
        not_torn "dl-$mode" "$T/dl-$mode.pb.gz"
    done
    ;;

fork_write)
    # fork() while another thread writes profiles: every child allocates
    # and exits (a deadlock is a hang, reported with the stacks).
    for mode in default rate1 noheaders; do
        mode_env $mode
        host "fork-$mode" "${MODE_ENV[@]}" -- forkwrite "$T/fork-$mode.pb.gz" 150
        kept_running "fork-$mode"
        only_wrote "fork-$mode"
        whole "fork-$mode" "$T/fork-$mode.pb.gz"
        not_torn "fork-$mode" "$T/fork-$mode.pb.gz"
    done
    ;;

thread_exit_cpu)
    # Waves of threads that start, burn CPU for 20 ms and exit (joined or
    # detached) during a CPU profile at a high rate.
    host cputhreads MPROF_CPU="$T/cpu.pb.gz" MPROF_CPU_HZ=1000 -- cputhreads 3
    kept_running cputhreads
    only_wrote cputhreads
    whole cputhreads "$T/cpu.pb.gz"
    check_grep "cputhreads: the busy threads are in the profile" busy_thread "$T/top.out"
    ;;

signal_storm)
    # kill, pthread_kill and sigqueue at every thread, no SA_RESTART, while
    # threads allocate, one writes profiles, and the CPU profiler runs.
    host signals MPROF_RATE=1 MPROF_CPU="$T/sig-cpu.pb.gz" MPROF_HEAP="$T/sig-exit.pb.gz" -- \
        signals "$T/sig.pb.gz" 3
    kept_running signals
    only_wrote signals
    whole signals "$T/sig.pb.gz"
    whole signals "$T/sig-exit.pb.gz"
    whole signals "$T/sig-cpu.pb.gz"
    ;;

http_flood)
    # Thousands of connections at the /debug/pprof server: 1,000 held open
    # at once (past the 64 slots: the oldest idle ones are evicted), then
    # 3,000 requests one after another; the program's descriptors are the
    # same before and after, every request answered, the program runs on.
    # Slowloris and the other hostile clients: tests/http/http_hostile.sh.
    need_cmd curl
    ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    start_target flood MPROF_HTTP=127.0.0.1:0
    require_server flood
    FLOOD=$PID
    sleep 0.3
    FDS0=$(ls /proc/$FLOOD/fd | wc -l)
    P0=$(progress flood)
    "$PYTHON" - "$PORT" >"$T/flood.py.out" 2>&1 <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
def get(path="/debug/pprof/cmdline"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() + b"\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.split(b"\r\n", 1)[0].decode()
held = []
try:
    for i in range(1000):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
except OSError as e:
    print("could open only", len(held), e)
print("held", len(held))
# With 1,000 idle connections open, a real client still gets in.
print("while held:", get())
for s in held:
    s.close()
ok = 0
for i in range(3000):
    if get("/debug/pprof/cmdline" if i % 10 else "/debug/pprof/heap") == "HTTP/1.1 200 OK":
        ok += 1
print("sequential ok", ok)
EOF
    cat "$T/flood.py.out"
    check_grep "flood: 1,000 connections held at once" "held 1000" "$T/flood.py.out"
    check_grep "flood: a client served while 1,000 are held" "while held: HTTP/1.1 200 OK" "$T/flood.py.out"
    check_grep "flood: 3,000 sequential requests all answered" "sequential ok 3000" "$T/flood.py.out"
    sleep 0.5
    FDS1=$(ls /proc/$FLOOD/fd | wc -l)
    check "flood: descriptors flat ($FDS0 before, $FDS1 after)" test "$FDS1" = "$FDS0"
    P1=$(progress flood)
    check "flood: the program kept running (progress $P0 -> $P1)" test "$P1" -gt "$P0"
    stop_target flood "$FLOOD"
    check "flood: the program exits with status 0" test "$STATUS" = 0
    check "flood: mprof said nothing but where it serves" \
        test "$(grep '^mprof:' "$T/flood.err" | grep -cv 'serving\|wrote')" = 0
    ;;

*)
    die "unknown scenario $SCENARIO"
    ;;
esac
finish
