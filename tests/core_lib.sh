# Helpers for the core and real-program shell tests.  Source it.  Sets up a
# temp dir $T (removed at exit), a private Go environment (HOME, GOCACHE:
# `go tool pprof` works offline, writes nothing outside $T), and:
#   fail MSG / pass MSG / finish      count and report checks
#   pprof ARGS...                     go tool pprof, no binary lookup possible
#   pprof_raw FILE OUT                `go tool pprof -raw` into OUT, or fail
#   pyq ARGS...                       core_pprof.py (parses -raw output)
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/mprof-core.XXXXXX")
trap 'rm -rf "$T"' EXIT
export HOME="$T/home" GOCACHE="$T/gocache" GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off
mkdir -p "$HOME"
GO=${MPROF_GO:-go}
PYTHON=${MPROF_PYTHON:-python3}
CORE_DIR=$(cd "$(dirname "$0")" && pwd)
FAILURES=0

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }
finish() {
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
need_go() {
    command -v "$GO" >/dev/null 2>&1 || { echo "FAIL: go not found (make deps installs golang-go)"; exit 1; }
}
pprof() { PPROF_BINARY_PATH=/nonexistent "$GO" tool pprof "$@"; }
# pprof_raw FILE OUT: 0 when go tool pprof accepts FILE
pprof_raw() {
    if pprof -raw "$1" >"$2" 2>"$2.err" && grep -q '^Samples:' "$2"; then
        return 0
    fi
    echo "  go tool pprof -raw $1:"; sed 's/^/    /' "$2.err" | head -5
    return 1
}
pyq() { "$PYTHON" "$CORE_DIR/core_pprof.py" "$@"; }
# timeout for every program run: a hang is a failure, not a stuck ctest
run_t() { timeout -k 5 "${CORE_TIMEOUT:-90}" "$@"; }
