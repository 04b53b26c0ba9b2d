#!/bin/bash
# Allocation tracing end to end (MPROF_TRACE=alloc, src/trace.c): an
# unmodified program under LD_PRELOAD with MPROF_RATE=1.
#
#  - one object: its tracealloc record names the allocating function and
#    file:line, its tracefree record the freeing one, in that order;
#  - the default destination is stderr; bad settings warn and run on;
#  - a burst from several threads into a tiny queue: drops are reported, and
#    printed + dropped accounts for every sampled event (nothing vanishes);
#  - a library loaded with dlopen after start-up is symbolized;
#  - a forked child traces into its own file.
#
# usage: trace_check.sh LIBMPROF TRACE_TARGET TRACE_DL_LIB
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
TARGET=$2
DLLIB=$3
SRC=$(dirname "$0")/trace_target.c
DLSRC=$(dirname "$0")/trace_dl_lib.c

# record FILE HEADER: the record whose first line is exactly HEADER, up to
# the blank line that ends it.
record() {
    awk -v h="$2" '$0 == h { on = 1 } on && $0 == "" { exit } on { print }' "$1"
}

run() { # run NAME ENV... -- ARGS...: the target with the profiler
    local name=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    # timeout outside the preload: a profiled timeout would be the root
    # process, and the target, exec'd by it, would write FILE.<pid>.
    timeout 120 env LD_PRELOAD="$LIB" MPROF_RATE=1 "${envs[@]}" "$TARGET" "$@" \
        >"$T/$name.out" 2>"$T/$name.err"
}

ALLOC_LINE=$(line_of "$SRC" trace_alloc)
FREE_LINE=$(line_of "$SRC" trace_free)
CHILD_LINE=$(line_of "$SRC" trace_child)
DL_LINE=$(line_of "$DLSRC" trace_dl)

# ------------------------------------------------------------ one object
run one MPROF_TRACE=alloc MPROF_TRACE_FILE="$T/one.trace" -- one
check "one: exit 0" test $? -eq 0
ADDR=$(sed -n 's/^object \(0x[0-9a-f]*\)$/\1/p' "$T/one.out")
check "one: printed its object" test -n "$ADDR"
record "$T/one.trace" "tracealloc($ADDR, 4242)" >"$T/one.alloc"
record "$T/one.trace" "tracefree($ADDR, 4242)" >"$T/one.free"
check "tracealloc($ADDR, 4242) present" test -s "$T/one.alloc"
check "tracefree($ADDR, 4242) present" test -s "$T/one.free"
check "tracealloc: thread line" bash -c "sed -n 2p '$T/one.alloc' | grep -qE '^thread [0-9]+:$'"
check "tracealloc: first frame trace_alloc_site at trace_target.c:$ALLOC_LINE" \
    bash -c "sed -n '3p' '$T/one.alloc' | grep -qx trace_alloc_site &&
             sed -n '4p' '$T/one.alloc' | grep -qE '^	/.*trace_target\.c:$ALLOC_LINE$'"
check "tracealloc: called from main" grep -qx main "$T/one.alloc"
check "tracefree: first frame trace_free_site at trace_target.c:$FREE_LINE" \
    bash -c "sed -n '3p' '$T/one.free' | grep -qx trace_free_site &&
             sed -n '4p' '$T/one.free' | grep -qE '^	/.*trace_target\.c:$FREE_LINE$'"
check "no profiler or allocator frames in the stacks" \
    bash -c "! grep -qE '^(malloc|free|mprof_|record_sample|__libc_malloc)' '$T/one.alloc' '$T/one.free'"
A=$(grep -nxF "tracealloc($ADDR, 4242)" "$T/one.trace" | cut -d: -f1)
F=$(grep -nxF "tracefree($ADDR, 4242)" "$T/one.trace" | cut -d: -f1)
check "the allocation is printed before its free" test "${A:-0}" -lt "${F:-0}"
check "nothing on stderr" test ! -s "$T/one.err"

# ------------------------------------------------------------ stderr
run stderr MPROF_TRACE=alloc -- one
ADDR=$(sed -n 's/^object \(0x[0-9a-f]*\)$/\1/p' "$T/stderr.out")
check "default destination is stderr" grep -qxF "tracealloc($ADDR, 4242)" "$T/stderr.err"
check "stderr: the free too" grep -qxF "tracefree($ADDR, 4242)" "$T/stderr.err"

# ------------------------------------------------------------ bad settings
run bad MPROF_TRACE=gc -- one
check "MPROF_TRACE=gc: runs, exit 0" test $? -eq 0
check "MPROF_TRACE=gc: one warning" grep -q '^mprof: ignoring MPROF_TRACE="gc"' "$T/bad.err"
check "MPROF_TRACE=gc: no trace" bash -c "! grep -q tracealloc '$T/bad.err'"
run nofile MPROF_TRACE=alloc MPROF_TRACE_FILE=/nonexistent/dir/trace -- one
check "unwritable MPROF_TRACE_FILE: runs, exit 0" test $? -eq 0
check "unwritable MPROF_TRACE_FILE: says so" grep -q '^mprof: trace: cannot open /nonexistent/dir/trace' "$T/nofile.err"
run badbuf MPROF_TRACE=alloc MPROF_TRACE_BUFFER=12abc MPROF_TRACE_FILE="$T/badbuf.trace" -- one
check "bad MPROF_TRACE_BUFFER: warning, default used, trace written" \
    bash -c "grep -q 'ignoring MPROF_TRACE_BUFFER' '$T/badbuf.err' && grep -q '^tracealloc(' '$T/badbuf.trace'"

# A program with its own getenv (bash's knows nothing before its main runs):
# the settings are read from the real environment, and bash is unharmed.
timeout 60 env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_TRACE=alloc MPROF_TRACE_FILE="$T/bash.trace" \
    bash -c 'x=$(echo hello); test "$x" = hello' >"$T/bash.out" 2>"$T/bash.err"
check "bash traced: exit 0" test $? -eq 0
check "bash traced: allocations in the trace" grep -q '^tracealloc(0x' "$T/bash.trace"

# ------------------------------------------------------------ burst, drops
START=$(date +%s%N)
run burst MPROF_TRACE=alloc MPROF_TRACE_BUFFER=64 MPROF_TRACE_FILE="$T/burst.trace" -- burst 4
STATUS=$?
END=$(date +%s%N)
check "burst: 4 threads x 20000 malloc/free with a 64-record queue: exit 0" test $STATUS -eq 0
echo "burst took $(((END - START) / 1000000)) ms"
RECORDS=$(grep -cE '^trace(alloc|free)\(' "$T/burst.trace")
DROPPED=$(sed -n 's/^mprof: trace: \([0-9]*\) records dropped.*/\1/p' "$T/burst.trace" |
    awk '{ s += $1 } END { print s + 0 }')
echo "burst: $RECORDS records printed, $DROPPED dropped"
check "burst: drops reported as 'mprof: trace: N records dropped'" test "$DROPPED" -gt 0
# 160000 events from the threads, plus the few of start-up and
# pthread_create; none may go unaccounted for.
TOTAL=$((RECORDS + DROPPED))
check "burst: printed + dropped = every event ($TOTAL, expected 160000..162000)" \
    test "$TOTAL" -ge 160000 -a "$TOTAL" -le 162000

# ------------------------------------------------------------ dlopen
run dlopen MPROF_TRACE=alloc MPROF_TRACE_FILE="$T/dlopen.trace" -- dlopen "$DLLIB"
ADDR=$(sed -n 's/^object \(0x[0-9a-f]*\)$/\1/p' "$T/dlopen.out")
record "$T/dlopen.trace" "tracealloc($ADDR, 3333)" >"$T/dlopen.alloc"
check "dlopen: a library loaded after start-up is symbolized (trace_dl_lib.c:$DL_LINE)" \
    bash -c "sed -n '3p' '$T/dlopen.alloc' | grep -qx trace_dl_alloc &&
             sed -n '4p' '$T/dlopen.alloc' | grep -qE '^	/.*trace_dl_lib\.c:$DL_LINE$'"

# ------------------------------------------------------------ fork
run fork MPROF_TRACE=alloc MPROF_TRACE_FILE="$T/fork.trace" -- fork
check "fork: exit 0" test $? -eq 0
PADDR=$(sed -n 's/^object \(0x[0-9a-f]*\)$/\1/p' "$T/fork.out")
CHILD=$(sed -n 's/^child \([0-9]*\) object .*/\1/p' "$T/fork.out")
CADDR=$(sed -n 's/^child [0-9]* object \(0x[0-9a-f]*\)$/\1/p' "$T/fork.out")
check "fork: parent's allocation and free in the parent's file" \
    bash -c "grep -qxF 'tracealloc($PADDR, 1111)' '$T/fork.trace' && grep -qxF 'tracefree($PADDR, 1111)' '$T/fork.trace'"
check "fork: the child writes its own file, fork.trace.$CHILD" test -s "$T/fork.trace.$CHILD"
record "$T/fork.trace.$CHILD" "tracealloc($CADDR, 2222)" >"$T/fork.child"
check "fork: child's allocation at trace_child_site, trace_target.c:$CHILD_LINE" \
    bash -c "sed -n '3p' '$T/fork.child' | grep -qx trace_child_site &&
             sed -n '4p' '$T/fork.child' | grep -qE '^	/.*trace_target\.c:$CHILD_LINE$'"
check "fork: child's free in its file" grep -qxF "tracefree($CADDR, 2222)" "$T/fork.trace.$CHILD"
check "fork: the child's events are not in the parent's file" \
    bash -c "! grep -qF '2222)' '$T/fork.trace'"
check "fork: the parent's pre-fork records are not repeated by the child" \
    bash -c "! grep -qF 'tracealloc($PADDR, 1111)' '$T/fork.trace.$CHILD'"

finish
