# Shared helpers for the shell-driven tests.  Source it; it sets up a temp
# dir ($T, removed at exit) and a Go environment that works offline.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/mprof-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export HOME=${HOME:-$T}
[ -w "$HOME" ] || export HOME=$T
export GOCACHE=$T/gocache GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off
FAILURES=0

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }
need_go() {
    command -v go >/dev/null || { echo "FAIL: go not found (run 'make deps' to install golang-go)"; exit 1; }
}
# line_of FILE MARKER: the line number of "LINE:MARKER" in FILE
line_of() { grep -n "LINE:$2\b" "$1" | head -1 | cut -d: -f1; }
# pprof ARGS...: go tool pprof with no binary lookup possible
pprof() { PPROF_BINARY_PATH=/nonexistent go tool pprof "$@" 2>"$T/pprof.err"; }
finish() {
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}
