# shellcheck shell=sh
# The one shell library of the tests.  Every tests/AREA/*.sh sources it:
#
#     . "$(dirname "$0")/../lib/testlib.sh"
#
# It is POSIX sh (dash runs most scripts; bash the few that need /dev/tcp
# or arrays), sets -u (never -e: a script that wants -e sets it itself) and
# gives each script:
#
#   T                    a private temporary directory, removed at exit
#                        unless MPROF_TEST_KEEP=1 (then its path is printed)
#   HOME, GOCACHE, ...   a Go environment of its own inside $T, offline
#                        (GOPROXY=off, GOTOOLCHAIN=local), so that `go tool
#                        pprof` writes nothing outside $T; a GOCACHE set
#                        before sourcing is kept (a script that builds Go
#                        code keeps the user's build cache that way)
#   GO, PYTHON           $MPROF_TEST_GO (default go), $MPROF_TEST_PYTHON (default
#                        python3): CMake passes the ones it found
#   TESTLIB_DIR          tests/lib, for the helpers that live next to it
#
# Checks are counted; a script ends with `finish`, whose exit status is 1
# when any check failed, so that a failing check always fails the test.
#
#   pass MSG | fail MSG             one check's outcome, printed as "ok: MSG"
#                                   or "FAIL: MSG"
#   die MSG                         a failure after which nothing can be
#                                   checked: fail, then finish
#   check DESC COMMAND...           passes when COMMAND succeeds
#   check_expr DESC AWK-EXPR        passes when the awk expression over
#                                   numbers is true ("$X >= 0.9 * $Y")
#   check_grep DESC STRING FILE     FILE contains the fixed STRING
#   check_no_grep DESC STRING FILE  ... does not
#   check_grep_re DESC REGEX FILE   FILE has a line matching REGEX (grep BRE)
#   finish                          prints the count, exits 0 or 1
#
#   need_go, need_cmd NAME          fail at once when a tool is missing
#   run_t COMMAND...                COMMAND under `timeout` ($MPROF_TEST_TIMEOUT
#                                   seconds, default 90): a hang is a failure,
#                                   not a stuck ctest
#   run_watch SECS COMMAND...       COMMAND bounded by SECS; a hang prints the
#                                   stacks of all its threads (and children's)
#                                   with gdb, then kills them: status 124
#   kill_at_exit PID                a background program killed at exit
#   line_of FILE NAME               the line of the "LINE:NAME" marker in FILE
#   same_as_pprof MPROF PROFILE FOCUS...
#                                   mprof top --tags and --tag FOCUS print
#                                   what go tool pprof -tags and -tagfocus do
#   free_port                       a TCP port of 127.0.0.1 free now (the
#                                   kernel's pick), for servers that need one
#                                   named in advance (redis, nginx)
#
# Running profiled programs: put `timeout` outside the preload, as
# `timeout N env LD_PRELOAD="$LIB" PROG`, never LD_PRELOAD around timeout:
# timeout would be profiled too, and as the first process of the tree it
# would write its own (empty) profile to FILE while the program's went to
# FILE.<pid>.
#
# The pprof helpers are listed where they are defined, below.

set -u

TESTLIB_DIR=$(cd "$(dirname "$0")/../lib" && pwd)
# The cleanup removes its own copy of the path, whatever a script does to T.
TESTLIB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mprof-test-$(basename "$0" .sh).XXXXXX")
T=$TESTLIB_TMP
FAILURES=0
PASSES=0
TESTLIB_PIDS=""

testlib_cleanup() {
    for _p in $TESTLIB_PIDS; do
        kill -9 "$_p" 2>/dev/null || :
    done
    if [ "${MPROF_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $TESTLIB_TMP"
    else
        rm -rf "$TESTLIB_TMP"
    fi
}
trap testlib_cleanup EXIT

export HOME="$T/home" GOCACHE="${GOCACHE:-$T/gocache}" PPROF_TMPDIR="$T/pprof"
export GOFLAGS='' GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off
mkdir -p "$HOME" "$GOCACHE"
GO=${MPROF_TEST_GO:-go}
PYTHON=${MPROF_TEST_PYTHON:-python3}

# ------------------------------------------------------------ checks

pass() {
    echo "ok: $*"
    PASSES=$((PASSES + 1))
}

fail() {
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

die() {
    fail "$@"
    finish
}

check() {
    _what=$1
    shift
    if "$@"; then pass "$_what"; else fail "$_what"; fi
}

check_expr() {
    if awk "BEGIN { exit !($2) }"; then pass "$1"; else fail "$1   [$2]"; fi
}

check_grep() {
    if grep -qF -- "$2" "$3"; then pass "$1"; else fail "$1 (no '$2' in $3)"; fi
}

check_no_grep() {
    if grep -qF -- "$2" "$3"; then fail "$1 ('$2' found in $3)"; else pass "$1"; fi
}

check_grep_re() {
    if grep -q -- "$2" "$3"; then pass "$1"; else fail "$1 (no line matching '$2' in $3)"; fi
}

finish() {
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed, $PASSES passed" \
            "(MPROF_TEST_KEEP=1 keeps the files of a run)"
        exit 1
    fi
    echo "all checks passed ($PASSES)"
    exit 0
}

# ------------------------------------------------------------ tools, programs

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "FAIL: $1 not found (make deps installs it)"
        exit 1
    }
}

need_go() {
    command -v "$GO" >/dev/null 2>&1 || {
        echo "FAIL: '$GO' not found: go tool pprof is needed (make deps installs golang-go)"
        exit 1
    }
}

run_t() { timeout -k 5 "${MPROF_TEST_TIMEOUT:-90}" "$@"; }

# run_watch SECONDS COMMAND...: COMMAND in the background, waited for at
# most SECONDS.  A hang is reported with the stacks of every thread of the
# command and of each process below it (gdb), then they are killed and the
# status is 124, as timeout's.  Otherwise COMMAND's own status.
run_watch() {
    watch_secs=$1; shift
    "$@" &
    watch_pid=$!
    watch_waited=0
    while kill -0 "$watch_pid" 2>/dev/null && [ "$watch_waited" -lt $((watch_secs * 10)) ]; do
        sleep 0.1
        watch_waited=$((watch_waited + 1))
    done
    if kill -0 "$watch_pid" 2>/dev/null; then
        echo "HANG: $* still running after ${watch_secs}s; the stacks of its threads:"
        watch_all="$watch_pid $(pgrep -P "$watch_pid" | tr '\n' ' ')"
        for p in $watch_all; do
            echo "--- process $p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
            timeout 30 gdb -q -batch -p "$p" -ex 'thread apply all bt 30' 2>/dev/null |
                grep -E '^(Thread|#)' | head -200
        done
        for p in $watch_all; do kill -9 "$p" 2>/dev/null; done
        wait "$watch_pid" 2>/dev/null
        return 124
    fi
    wait "$watch_pid"
}

kill_at_exit() { TESTLIB_PIDS="$TESTLIB_PIDS $1"; }

line_of() { grep -n "LINE:$2\b" "$1" | head -1 | cut -d: -f1; }

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ------------------------------------------------------------ go tool pprof
#
#   pprof ARGS...                  go tool pprof with no binary to fall back
#                                  on (PPROF_BINARY_PATH leads nowhere): what
#                                  it shows comes from the profile itself; its
#                                  stderr is appended to $T/pprof.err
#   pprof_raw FILE OUT             `pprof -raw FILE` into OUT; 0 when pprof
#                                  read it, else its complaint is printed
#   pyq ARGS...                    tests/lib/pprof_raw.py on -raw output
#   pprof_lines OUT PROFILE ARGS   every node with -lines into OUT
#   flat_at TOP FUNCTION LINE      flat value of FUNCTION at LINE in a
#                                  pprof_lines output (unit removed), 0 if none
#   total_of TOP                   the total every percentage refers to
#   pprof_top OUT PROFILE ARGS     every node, values in ms, into OUT
#   cum_ms TOP FUNCTION, flat_ms TOP FUNCTION
#                                  FUNCTION's cum or flat ms in a pprof_top
#                                  output, 0 if absent
#   shown_ms TOP                   total of the samples kept by the filters
#   total_ms TOP                   "Total samples = X": every sample
# The last six run "$GO" tool pprof as a user would (the binary may be
# found); each returns 1, with pprof's complaint printed, when it fails.

pprof() { PPROF_BINARY_PATH=/nonexistent "$GO" tool pprof "$@" 2>>"$T/pprof.err"; }

pprof_raw() {
    if PPROF_BINARY_PATH=/nonexistent "$GO" tool pprof -raw "$1" >"$2" 2>"$2.err" &&
        grep -q '^Samples:' "$2"; then
        return 0
    fi
    echo "  go tool pprof -raw $1:"
    sed 's/^/    /' "$2.err" | head -5
    return 1
}

pyq() { "$PYTHON" "$TESTLIB_DIR/pprof_raw.py" "$@"; }

pprof_lines() {
    _out=$1
    _prof=$2
    shift 2
    "$GO" tool pprof -top -lines -nodecount=100000 -nodefraction=0 -edgefraction=0 \
        "$@" "$_prof" >"$_out" 2>"$_out.err" || { cat "$_out.err"; return 1; }
}

flat_at() {
    awk -v f="$2" -v l=":$3" '$6 == f && substr($7, length($7) - length(l) + 1) == l {
            v = $1; sub(/[a-z]+$/, "", v); print v; found = 1; exit }
         END { if (!found) print 0 }' "$1"
}

total_of() {
    awk '/^Showing nodes accounting for/ {
            for (i = 1; i <= NF; i++)
                if ($i == "of") { v = $(i + 1); sub(/[a-z]+$/, "", v); print v; exit } }' "$1"
}

pprof_top() {
    _out=$1
    _prof=$2
    shift 2
    "$GO" tool pprof -top -unit=ms -nodecount=100000 -nodefraction=0 -edgefraction=0 "$@" \
        "$_prof" >"$_out" 2>"$_out.err" || { cat "$_out.err"; return 1; }
}

cum_ms() {
    awk -v f="$2" '$6 == f { v = $4; sub(/ms$/, "", v); print v; found = 1; exit }
                   END { if (!found) print 0 }' "$1"
}

flat_ms() {
    awk -v f="$2" '$6 == f { v = $1; sub(/ms$/, "", v); print v; found = 1; exit }
                   END { if (!found) print 0 }' "$1"
}

shown_ms() {
    awk '/^Showing nodes accounting for/ { v = $5; sub(/,$/, "", v); sub(/ms$/, "", v); print v; found = 1; exit }
         END { if (!found) print 0 }' "$1"
}

total_ms() {
    awk '/Total samples = / { for (i = 1; i <= NF; i++) if ($i == "=") { v = $(i + 1); sub(/ms$/, "", v); print v; exit } }' "$1"
}

# same_as_pprof MPROF PROFILE FOCUS...: `mprof top --tags` prints what
# `go tool pprof -tags` prints, and `mprof top -n 0 --tag FOCUS` what
# `go tool pprof -top -nodecount=0 -tagfocus=FOCUS` prints (the "Time:"
# line aside), for each FOCUS: one check each.
same_as_pprof() {
    _mprof=$1
    _prof=$2
    shift 2
    "$GO" tool pprof -tags "$_prof" >"$T/same.want" 2>>"$T/pprof.err"
    "$_mprof" top --tags "$_prof" >"$T/same.got" 2>>"$T/mprof.err"
    if cmp -s "$T/same.want" "$T/same.got"; then
        pass "mprof top --tags prints what go tool pprof -tags prints"
    else
        fail "mprof top --tags differs from go tool pprof -tags:"
        diff "$T/same.want" "$T/same.got" | head -20
    fi
    for _focus in "$@"; do
        "$GO" tool pprof -top -nodecount=0 "-tagfocus=$_focus" "$_prof" 2>>"$T/pprof.err" |
            grep -v '^Time: ' >"$T/same.want"
        "$_mprof" top -n 0 --tag "$_focus" "$_prof" 2>>"$T/mprof.err" | grep -v '^Time: ' >"$T/same.got"
        if grep -q '^ *flat  flat%' "$T/same.want" && cmp -s "$T/same.want" "$T/same.got"; then
            pass "mprof top --tag $_focus prints what pprof -top -tagfocus=$_focus prints"
        else
            fail "mprof top --tag $_focus differs from pprof -top -tagfocus=$_focus:"
            diff "$T/same.want" "$T/same.got" | head -20
        fi
    done
}

# ------------------------------------------------------------ a profiled server
#
# For a program that serves /debug/pprof on 127.0.0.1 with a port chosen by
# the kernel (MPROF_HTTP=127.0.0.1:0), read back from the "mprof: serving"
# announcement: no port guessing, no collisions between tests running in
# parallel.  The script sets LIB (libmprof.so) and TARGET (a program that
# takes --seconds N --stop-file FILE and prints "progress N" lines, as
# tests/http/test_http_target.c does).
#
#   start_target NAME [VAR=VALUE...] [-- TARGET_ARGS...]
#        runs TARGET under LD_PRELOAD=$LIB (MPROF_RATE=4096 unless given) in
#        the background; sets PID, PORT (empty when not serving) and the
#        files $T/NAME.out, $T/NAME.err; it stops when $T/NAME.stop appears
#   require_server NAME     ends the test at once if NAME is not serving:
#                           nothing below could pass, and waiting on each
#                           check would take minutes
#   stop_target NAME PID    asks it to stop, waits up to 20 s; its exit
#                           status in STATUS (124 if it had to be killed)
#   progress NAME           the last progress number it printed
#   status URL [CURL_ARGS]  the HTTP status code of URL

start_target() {
    _name=$1
    shift
    # "$@" becomes VAR=VALUE... TARGET --seconds 200 --stop-file F TARGET_ARGS...
    _n=$#
    _seen=0
    while [ "$_n" -gt 0 ]; do
        _a=$1
        shift
        _n=$((_n - 1))
        if [ "$_seen" = 0 ] && [ "$_a" = -- ]; then
            set -- "$@" "$TARGET" --seconds 200 --stop-file "$T/$_name.stop"
            _seen=1
        else
            set -- "$@" "$_a"
        fi
    done
    if [ "$_seen" = 0 ]; then
        set -- "$@" "$TARGET" --seconds 200 --stop-file "$T/$_name.stop"
    fi
    env LD_PRELOAD="$LIB" MPROF_RATE=4096 "$@" >"$T/$_name.out" 2>"$T/$_name.err" &
    PID=$!
    kill_at_exit "$PID"
    PORT=""
    for _ in $(seq 1 100); do
        grep -q "^progress" "$T/$_name.out" 2>/dev/null && break
        sleep 0.05
    done
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' \
        "$T/$_name.err" | head -1)
}

require_server() {
    if [ -z "$PORT" ]; then
        echo "FAIL: $1 is not serving /debug/pprof; its stderr:"
        cat "$T/$1.err"
        exit 1
    fi
}

stop_target() {
    touch "$T/$1.stop"
    STATUS=124
    for _ in $(seq 1 200); do
        if ! kill -0 "$2" 2>/dev/null; then
            wait "$2"
            STATUS=$?
            return 0
        fi
        sleep 0.1
    done
    kill -9 "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    return 0
}

progress() { sed -n 's/^progress //p' "$T/$1.out" | tail -1; }

status() {
    _url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@" "$_url"
}
