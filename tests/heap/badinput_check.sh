#!/bin/bash
# Bad settings never harm the host: BINARY LIBMPROF.  A bad MPROF_* value or
# an unwritable output path gives exactly one "mprof:" line on stderr that
# names the problem, the program's output and exit status are unchanged,
# and no partial file is left behind.
. "$(dirname "$0")/../lib/testlib.sh"
BIN=$1 LIB=$2

# run_case NAME EXPECTED_STDERR_REGEX ENV...
run_case() {
    local name=$1 re=$2; shift 2
    local out rc
    out=$(env "$@" LD_PRELOAD=$LIB "$BIN" 1000 2>"$T/err.$name")
    rc=$?
    [ "$rc" = 0 ] || fail "$name: exit status $rc, expected 0"
    [ "$out" = "$EXPECTED" ] || fail "$name: output changed: '$out'"
    local n
    n=$(grep -c '^mprof: ' "$T/err.$name")
    [ "$n" = 1 ] || fail "$name: expected one mprof: line, got $n: $(cat "$T/err.$name")"
    grep -qE "$re" "$T/err.$name" || fail "$name: message does not match '$re': $(cat "$T/err.$name")"
    pass "$name: $(head -1 "$T/err.$name")"
}

EXPECTED=$("$BIN" 1000)
run_case rate_not_a_number 'MPROF_RATE="abc"' MPROF_RATE=abc
run_case rate_negative 'MPROF_RATE="-5"' MPROF_RATE=-5
run_case rate_trailing_garbage 'MPROF_RATE="512k"' MPROF_RATE=512k
run_case heap_unwritable 'cannot write heap profile to /nonexistent/dir/h\.pb\.gz' MPROF_HEAP=/nonexistent/dir/h.pb.gz
mkdir -p "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" != 0 ]; then
    run_case heap_readonly_dir 'cannot write heap profile' MPROF_HEAP="$T/ro/h.pb.gz"
fi
ls "$T/ro" | grep -q . && fail "files left in the read-only directory"

# A good run announces the profile once and leaves exactly one file.
out=$(LD_PRELOAD=$LIB MPROF_HEAP="$T/good.%p.pb.gz" "$BIN" 1000 2>"$T/err.good")
[ "$out" = "$EXPECTED" ] || fail "good run: output changed"
[ "$(ls "$T"/good.*.pb.gz 2>/dev/null | wc -l)" = 1 ] || fail "good run: expected one profile file"
ls "$T"/*.tmp.* >/dev/null 2>&1 && fail "temporary file left behind"
[ "$(grep -c '^mprof: wrote heap profile' "$T/err.good")" = 1 ] || fail "good run: announcement missing"
finish
