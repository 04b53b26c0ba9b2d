# Helpers for the live-profiling scripts (http_*.sh).  Sourced by bash:
# the hostile-client checks use bash's /dev/tcp.
#
# Sets LIB, TARGET (the test program), T (a private temp dir, removed at
# exit), a Go environment that works offline, and check helpers.  Every
# server is on 127.0.0.1 with a port chosen by the kernel (MPROF_HTTP=...:0),
# read back from the "mprof: serving" announcement: no port guessing, no
# collisions between tests running in parallel.
set -u
LIB=$1
TARGET=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/mprof-http.XXXXXX")
PIDS_TO_KILL=""
cleanup() {
    for p in $PIDS_TO_KILL; do kill -9 "$p" 2>/dev/null; done
    # MPROF_TEST_KEEP=1 keeps the files for a look after a failure.
    if [ "${MPROF_TEST_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

export HOME=$T/home GOCACHE=$T/gocache PPROF_TMPDIR=$T/pprof GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off
mkdir -p "$HOME"
FAILURES=0
CHECKS=0

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); CHECKS=$((CHECKS + 1)); }
pass() { echo "ok: $*"; CHECKS=$((CHECKS + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
    echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
    exit $?
}

command -v curl >/dev/null || { echo "FAIL: curl not found (run 'make deps')"; exit 1; }
command -v go >/dev/null || { echo "FAIL: go not found (run 'make deps')"; exit 1; }

# start_target NAME [VAR=VALUE...] [-- TARGET_ARGS...]: runs the test program
# under the profiler; sets PID, PORT (when serving) and files $T/NAME.out,
# $T/NAME.err; the program stops when $T/NAME.stop appears.
start_target() {
    local name=$1
    shift
    local envs=() args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then shift; args=("$@"); break; fi
        envs+=("$1")
        shift
    done
    env LD_PRELOAD="$LIB" MPROF_RATE=4096 "${envs[@]}" \
        "$TARGET" --seconds 200 --stop-file "$T/$name.stop" "${args[@]}" \
        >"$T/$name.out" 2>"$T/$name.err" &
    PID=$!
    PIDS_TO_KILL="$PIDS_TO_KILL $PID"
    PORT=""
    for _ in $(seq 1 100); do
        grep -q "^progress" "$T/$name.out" 2>/dev/null && break
        sleep 0.05
    done
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/$name.err" | head -1)
}

# require_server NAME: ends the test at once if the program is not serving:
# nothing below could pass, and waiting on each check would take minutes.
require_server() {
    if [ -z "$PORT" ]; then
        echo "FAIL: $1 is not serving /debug/pprof; its stderr:"
        cat "$T/$1.err"
        exit 1
    fi
}

# stop_target NAME PID: asks the program to stop, waits up to 20 s; the
# exit status is in STATUS (124 if it had to be killed).
stop_target() {
    touch "$T/$1.stop"
    STATUS=124
    for _ in $(seq 1 200); do
        if ! kill -0 "$2" 2>/dev/null; then
            wait "$2"
            STATUS=$?
            return
        fi
        sleep 0.1
    done
    kill -9 "$2" 2>/dev/null
    wait "$2" 2>/dev/null
}

# progress NAME: the last progress number the program printed.
progress() { sed -n 's/^progress //p' "$T/$1.out" | tail -1; }

# status URL [CURL_ARGS...]: prints the HTTP status code.
status() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@" "$url"
}

# pprof ARGS...: go tool pprof that cannot fall back on the binary: what it
# shows comes from the profile itself.
pprof() { PPROF_BINARY_PATH=/nonexistent go tool pprof "$@" 2>>"$T/pprof.err"; }
