# Helpers for the contention, thread-creation and thread-stack tests
# (tests/contention_*.sh, threads_*.sh, stacks_*.sh).  Sourced by sh.
#
# Profiles are read with the real `go tool pprof` ($MPROF_GO, default go),
# which wants a writable HOME and GOCACHE: both live in the test's own
# temporary directory $WORK, removed at exit unless MPROF_TEST_KEEP=1.
#
# Programs run under `timeout` are started as `timeout N env LD_PRELOAD=...
# PROG`, never with LD_PRELOAD around timeout itself: timeout would be
# profiled too, and as the first process of the tree it would write its own
# (empty) profile to FILE while the program's went to FILE.<pid>.

set -eu

CHECK_GREP_OPTS=-qF # patterns here are fixed strings
. "$(dirname "$0")/check_lib.sh"
check_setup sync

# line_of FILE NAME: the line number of the "LINE:NAME" marker in FILE.
line_of() {
    grep -n "LINE:$2\b" "$1" | head -1 | cut -d: -f1
}

# pprof_lines OUT PROFILE [pprof options...]: every node with -lines, values
# in ms for time-valued profiles.
pprof_lines() {
    _out=$1
    _prof=$2
    shift 2
    "$GO" tool pprof -top -lines -nodecount=100000 -nodefraction=0 -edgefraction=0 \
        "$@" "$_prof" >"$_out" 2>"$_out.err" || { cat "$_out.err"; return 1; }
}

# flat_at TOP FUNCTION LINE: flat value (unit suffix removed) of FUNCTION at
# source line LINE in a pprof_lines output; 0 if absent.
flat_at() {
    awk -v f="$2" -v l=":$3" '$6 == f && substr($7, length($7) - length(l) + 1) == l {
            v = $1; sub(/[a-z]+$/, "", v); print v; found = 1; exit }
         END { if (!found) print 0 }' "$1"
}

# total_of TOP: the total every percentage refers to.
total_of() {
    awk '/^Showing nodes accounting for/ {
            for (i = 1; i <= NF; i++)
                if ($i == "of") { v = $(i + 1); sub(/[a-z]+$/, "", v); print v; exit } }' "$1"
}

