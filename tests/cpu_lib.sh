# Helpers for the CPU profiler test scripts (sourced, POSIX sh).
#
# Profiles are read with the real `go tool pprof` ($MPROF_GO, default go),
# which wants a writable HOME and GOCACHE: both go to the test's own
# temporary directory, removed at exit unless KEEP=1.

set -eu

. "$(dirname "$0")/check_lib.sh"
check_setup cpu

# pprof_top OUT PROFILE [pprof options...]: every node, values in ms.
pprof_top() {
    _out=$1
    _prof=$2
    shift 2
    "$GO" tool pprof -top -unit=ms -nodecount=100000 -nodefraction=0 -edgefraction=0 "$@" \
        "$_prof" >"$_out" 2>"$_out.err" || { cat "$_out.err"; return 1; }
}

# cum_ms TOP FUNCTION: cumulative ms of FUNCTION in a pprof_top output, 0 if absent.
cum_ms() {
    awk -v f="$2" '$6 == f { v = $4; sub(/ms$/, "", v); print v; found = 1; exit }
                   END { if (!found) print 0 }' "$1"
}

# flat_ms TOP FUNCTION
flat_ms() {
    awk -v f="$2" '$6 == f { v = $1; sub(/ms$/, "", v); print v; found = 1; exit }
                   END { if (!found) print 0 }' "$1"
}

# shown_ms TOP: total of the samples kept by the filters.
shown_ms() {
    awk '/^Showing nodes accounting for/ { v = $5; sub(/,$/, "", v); sub(/ms$/, "", v); print v; found = 1; exit }
         END { if (!found) print 0 }' "$1"
}

# total_ms TOP: "Total samples = X" (every sample of the profile).
total_ms() {
    awk '/Total samples = / { for (i = 1; i <= NF; i++) if ($i == "=") { v = $(i + 1); sub(/ms$/, "", v); print v; exit } }' "$1"
}

