#!/bin/sh
# All-thread stacks (stacks_target.c): a thread parked in read() inside
# parked_in_known_function appears, by name, in mprof_stack(.., 1), in the
# debug=2 text and in the goroutine count profile; four identical pool
# workers count 4; mprof_stack(.., 0) shows the caller; a thread that
# blocks the signal and one stopped by ptrace are reported without hanging
# the collector; a thread in nanosleep is never interrupted; the parked
# read() survives the signals (SA_RESTART).
#
# usage: stacks_all.sh TARGET TARGET_SOURCE
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
BIN=$1
SRC=$2

timeout 120 "$BIN" "$T" >"$T/out.txt" 2>"$T/err.txt" || {
    echo "FAIL: $BIN exited $?"
    cat "$T/out.txt" "$T/err.txt"
    exit 1
}
cat "$T/out.txt"
PARKED_LINE=$(line_of "$SRC" parked_read)
CALLER_LINE=$(line_of "$SRC" stack_caller)

check_grep "the program finished (threads released)" "done" "$T/out.txt"
check_grep "truncation to a tiny buffer is safe and NUL-terminated" "tiny 15 ok" "$T/out.txt"
check_no_grep "the parked read() never failed" "parked: read returned" "$T/err.txt"
check_grep "the sleeper's nanosleep was never interrupted" "sleeper rc=0" "$T/out.txt"

# mprof_stack(buf, len, 0): this thread only, starting at the caller.
check_grep "self: the calling function, at its line" \
    "stack_caller_function(...)" "$T/self.txt"
check_grep "self: its file and line" "stacks_target.c:$CALLER_LINE" "$T/self.txt"
check_expr "self: only one thread" "$(grep -c '^thread ' "$T/self.txt") == 1"
check_expr "self: the caller is the first frame" \
    "\"$(sed -n 2p "$T/self.txt")\" == \"stack_caller_function(...)\""

# mprof_stack(buf, len, 1) and the debug=2 text.
for f in all.txt goroutine.2.txt; do
    check_grep "$f: the parked thread by name" '"parked" [sleeping, in read]:' "$T/$f"
    check_grep "$f: parked in its function" "parked_in_known_function(...)" "$T/$f"
    check_grep "$f: at the read() line" "stacks_target.c:$PARKED_LINE" "$T/$f"
    check_grep "$f: the thread that blocks the signal is listed" '"sigblocker"' "$T/$f"
    check_grep "$f: ... with its stack, read from outside" "sigblocker_waits(...)" "$T/$f"
    check_grep "$f: the sleeper, read without interrupting it" "sleeper_in_nanosleep(...)" \
        "$T/$f"
    check_expr "$f: every thread listed (main + 8)" "$(grep -c '^thread ' "$T/$f") == 9"
done
if grep -q "ptrace_stop yes" "$T/out.txt"; then
    check_grep "the stopped thread is listed with its state" '"traced" [tracing stop' \
        "$T/all.txt"
    check_grep "... and its stack read once it failed to answer" "traced_thread_waits(...)" \
        "$T/all.txt"
    ALL_MS=$(awk '/^all_ms/ { print $2 }' "$T/out.txt")
    check_expr "collection with a stopped thread bounded (${ALL_MS} ms < 2000)" "$ALL_MS < 2000"
else
    echo "skip: ptrace is not allowed here: no stopped-thread check"
fi

# The count profile, read by pprof.
pprof_lines "$T/g.txt" "$T/goroutine.pb.gz"
"$GO" tool pprof -tags "$T/goroutine.pb.gz" >"$T/g.tags" 2>&1
check_grep "pprof: type goroutine" "Type: goroutine" "$T/g.txt"
P=$(awk '$6 == "parked_in_known_function" { print $4; exit }' "$T/g.txt")
W=$(awk '$6 == "pool_worker_waits" { print $4; exit }' "$T/g.txt")
check_expr "pprof: one thread in parked_in_known_function" "${P:-0} == 1"
check_expr "pprof: four identical pool workers counted 4" "${W:-0} == 4"
check_expr "pprof: nine threads in all" "$(total_of "$T/g.txt") == 9"
check_grep "pprof: thread names as labels" "parked" "$T/g.tags"
check_expr "pprof: the pool label counts 4" \
    "$(awk '$NF == "pool" { print $1; exit }' "$T/g.tags") == 4"
check_grep "debug=1 text header" "goroutine profile: total 9" "$T/goroutine.1.txt"
check_grep "debug=1 label line" '# labels: {"thread":"pool"}' "$T/goroutine.1.txt"
finish
