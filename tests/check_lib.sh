# Checks shared by the test scripts of the contention, thread and CPU
# profilers (contention_lib.sh, cpu_lib.sh source this; POSIX sh).
#
# check_setup NAME makes the test's temporary directory $WORK (removed at
# exit unless MPROF_TEST_KEEP=1, or KEEP=1) and gives the real `go tool
# pprof` ($MPROF_GO, default go) the writable HOME and GOCACHE it wants,
# inside $WORK.  check_grep reads its pattern with the grep options in
# CHECK_GREP_OPTS (-q, regular expression, unless the sourcing library says
# otherwise: -qF for fixed strings).

check_setup() {
    GO=${MPROF_GO:-go}
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprof-$1-test.XXXXXX")
    if [ "${MPROF_TEST_KEEP:-${KEEP:-0}}" = 1 ]; then
        echo "keeping $WORK"
    else
        trap 'rm -rf "$WORK"' EXIT
    fi
    export HOME="$WORK/home" GOCACHE="$WORK/gocache" GOTOOLCHAIN=local GOFLAGS='' GOPROXY=off
    mkdir -p "$HOME" "$GOCACHE"
    FAILS=0
    command -v "$GO" >/dev/null 2>&1 ||
        { echo "FAIL: '$GO' not found: go tool pprof is needed"; exit 1; }
}

# check DESCRIPTION AWK-CONDITION: records a failure when the condition
# (an awk expression over numbers) is false.
check() {
    if awk "BEGIN { exit !($2) }"; then
        echo "ok:   $1"
    else
        echo "FAIL: $1   [$2]"
        FAILS=$((FAILS + 1))
    fi
}

# check_grep DESCRIPTION PATTERN FILE
check_grep() {
    if grep ${CHECK_GREP_OPTS:--q} -- "$2" "$3"; then
        echo "ok:   $1"
    else
        echo "FAIL: $1 (no '$2' in $3)"
        FAILS=$((FAILS + 1))
    fi
}

# check_no_grep DESCRIPTION PATTERN FILE
check_no_grep() {
    if grep ${CHECK_GREP_OPTS:--q} -- "$2" "$3"; then
        echo "FAIL: $1 ('$2' found in $3)"
        FAILS=$((FAILS + 1))
    else
        echo "ok:   $1"
    fi
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed; profiles and outputs are in $WORK"
        trap - EXIT
        exit 1
    fi
    echo "all checks passed"
}
