#!/bin/sh
# mprof's messages, one situation each, with the real library: every one
# starts with "mprof:" and says what to do next (issue 16's list of
# messages that misled).
#
# Usage: cli_messages.sh MPROF LIBMPROF MESSAGES_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
need_cmd curl
need_go
MPROF=$1
LIB=$2
TARGET=$3
export MPROF_LIB="$LIB"
unset MPROF_HEAP MPROF_CPU MPROF_HTTP

# run NAME STATUS COMMAND...: COMMAND's stderr into $T/NAME.err, its status
# checked.
run() {
    _name=$1 _want=$2
    shift 2
    run_t "$@" >"$T/$_name.out" 2>"$T/$_name.err"
    _st=$?
    [ "$_st" = "$_want" ] && pass "$_name: exit $_want" ||
        fail "$_name: exit $_st, want $_want: $(cat "$T/$_name.err")"
}
# says NAME TEXT: $T/NAME.err has TEXT on a line starting "mprof: ".
says() {
    if grep "^mprof: " "$T/$1.err" | grep -qF -- "$2"; then pass "$1: says '$2'"
    else fail "$1: no 'mprof: ...$2' line in: $(cat "$T/$1.err")"; fi
}
# every_line_prefixed NAME: every line mprof printed there is "mprof: ...".
every_line_prefixed() {
    if grep -v "^mprof: " "$T/$1.err" | grep -q .; then fail "$1: a line without mprof: $(cat "$T/$1.err")"
    else pass "$1: every line starts with mprof:"; fi
}

# --- an unwritable --heap: refused at start, naming the option typed
run heap_missing_dir 2 "$MPROF" run --heap "$T/no/such/h.pb.gz" -- "$TARGET" burn
says heap_missing_dir "--heap $T/no/such/h.pb.gz: cannot write there"
says heap_missing_dir "mkdir -p $T/no/such"
check_no_grep "heap_missing_dir: names --heap, the option typed, not MPROF_HEAP" "MPROF_HEAP" "$T/heap_missing_dir.err"
touch "$T/plainfile"
run cpu_not_folder 2 "$MPROF" run --cpu "$T/plainfile/c.pb.gz" -- "$TARGET" burn
says cpu_not_folder "--cpu $T/plainfile/c.pb.gz: cannot write there: $T/plainfile is not a folder"
# Without mprof run the library says it at exit, naming both ways to set it.
run heap_env 0 env LD_PRELOAD="$LIB" MPROF_HEAP="$T/no/h.pb.gz" "$TARGET" burn
says heap_env "set MPROF_HEAP or mprof run's --heap to a folder that stays"
every_line_prefixed heap_env

# --- a missing library: exit 1, what it is, where it was looked for, the fix
mkdir -p "$T/bin"
cp "$MPROF" "$T/bin/mprof"
run no_library 1 env -u MPROF_LIB "$T/bin/mprof" run -- "$TARGET" burn
says no_library "libmprof.so, the library mprof run preloads into it, is missing (looked for $T/bin/libmprof.so"
says no_library "set MPROF_LIB=/path/to/libmprof.so"
every_line_prefixed no_library

# --- the CPU profile's line names both readers
run cpu_wrote 0 "$MPROF" run --cpu "$T/cpu.pb.gz" -- "$TARGET" burn
says cpu_wrote "wrote CPU profile to $T/cpu.pb.gz (view with: go tool pprof -top $T/cpu.pb.gz, or mprof top $T/cpu.pb.gz)"
run top_cpu 0 "$MPROF" top "$T/cpu.pb.gz"
check_grep "mprof top reads the CPU profile" messages_burn "$T/top_cpu.out"

# --- a program with its own SIGPROF handler: one line, no "File exists"
env LD_PRELOAD="$LIB" MPROF_HTTP=127.0.0.1:0 "$TARGET" sigprof "$T/stop" >"$T/sigprof.out" 2>"$T/sigprof.err" &
PID=$!
kill_at_exit "$PID"
for _ in $(seq 1 200); do
    grep -q ready "$T/sigprof.out" 2>/dev/null && grep -q serving "$T/sigprof.err" && break
    sleep 0.05
done
PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/sigprof.err")
if [ -n "$PORT" ]; then
    for i in 1 2; do
        code=$(curl -s --max-time 20 -o "$T/sigprof.body" -w '%{http_code}' \
            "http://127.0.0.1:$PORT/debug/pprof/profile?seconds=1")
        [ "$code" = 409 ] && pass "profile request $i with a foreign SIGPROF handler: 409" ||
            fail "profile request $i: $code"
    done
    check_grep "the 409 says why and what to do" \
        "Could not enable CPU profiling: the program has its own SIGPROF handler, which mprof neither replaces nor chains; turn off" \
        "$T/sigprof.body"
else
    fail "the sigprof target does not serve: $(cat "$T/sigprof.err")"
fi
touch "$T/stop"
wait "$PID"
says sigprof "CPU profiling not started: the program has its own SIGPROF handler"
says sigprof "to profile CPU, turn off whatever in the program uses SIGPROF"
n=$(grep -c "SIGPROF" "$T/sigprof.err")
check_expr "the SIGPROF conflict is said once ($n)" "$n == 1"
check_no_grep "no 'File exists'" "File exists" "$T/sigprof.err"
every_line_prefixed sigprof

# --- files that are not pprof protobuf, named with what reads them:
# gperftools' own CPU and heap profiles, and mprof's heap dump
GPERF=$(ls /usr/lib/*/libprofiler.so.0 2>/dev/null | head -1)
TCMALLOC=$(ls /usr/lib/*/libtcmalloc.so.4 2>/dev/null | head -1)
[ -n "$GPERF" ] && [ -n "$TCMALLOC" ] || die "gperftools missing: make deps installs libgoogle-perftools-dev"
env CPUPROFILE="$T/gperf.prof" LD_PRELOAD="$GPERF" "$TARGET" burn >/dev/null 2>&1
env HEAPPROFILE="$T/gperfheap" LD_PRELOAD="$TCMALLOC" "$TARGET" burn >/dev/null 2>&1
run top_gperf_cpu 1 "$MPROF" top "$T/gperf.prof"
says top_gperf_cpu "a gperftools CPU profile (the legacy binary format of CPUPROFILE and ProfilerStart, one sample every 10000 us), not pprof protobuf"
says top_gperf_cpu "read it with pprof or go tool pprof, which open the binary (go tool pprof -top PROGRAM FILE)"
if PPROF_TMPDIR="$T" "$GO" tool pprof -top "$TARGET" "$T/gperf.prof" 2>&1 | grep -q messages_burn; then
    pass "go tool pprof reads the gperftools CPU profile, as the message says"
else fail "go tool pprof does not read $T/gperf.prof"; fi
heap=$(ls "$T"/gperfheap.*.heap 2>/dev/null | head -1)
run top_gperf_heap 1 "$MPROF" top "$heap"
says top_gperf_heap "a legacy text heap profile (gperftools' HEAPPROFILE, or a /debug/pprof/heap?debug=1 page), not pprof protobuf: go tool pprof reads it"
run heapdump 0 "$MPROF" run --heapdump "$T/h.dump" -- "$TARGET" burn
run top_dump 1 "$MPROF" top "$T/h.dump"
says top_dump "an mprof heap dump, not a pprof profile: read it with mprof dump FILE"

# --- a heap dump's malloc figures are glibc's mallinfo2: said so, and left
# out when another allocator is behind mprof (jemalloc's "in use 0 B")
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1)
[ -n "$JEMALLOC" ] || die "jemalloc missing: make deps installs libjemalloc2"
"$MPROF" dump "$T/h.dump" >"$T/glibc_dump.txt" 2>&1
check_grep "glibc's malloc: its statistics are named as glibc's" "(malloc: glibc's own statistics, from mallinfo2)" "$T/glibc_dump.txt"
check_grep "glibc's malloc: the figures are there" "malloc: in use" "$T/glibc_dump.txt"
run jemalloc_dump 0 env LD_PRELOAD="$JEMALLOC" "$MPROF" run --heapdump "$T/je.dump" -- "$TARGET" burn
"$MPROF" dump "$T/je.dump" >"$T/je_dump.txt" 2>&1
check_grep "jemalloc: the dump says why there are no malloc figures" "malloc: not glibc's (another allocator was behind mprof), so no malloc statistics" "$T/je_dump.txt"
check_no_grep "jemalloc: no glibc figures shown as the heap's" "malloc: in use" "$T/je_dump.txt"
check_grep "jemalloc: the process figures stay" "process: VmRSS" "$T/je_dump.txt"

# --- a yes/no setting takes the usual words, and refuses others in words
run itimer_yes 0 env LD_PRELOAD="$LIB" MPROF_CPU_ITIMER=yes MPROF_CPU="$T/itimer.pb.gz" "$TARGET" burn
check_no_grep "itimer_yes: MPROF_CPU_ITIMER=yes is accepted" "ignoring" "$T/itimer_yes.err"
zcat "$T/itimer.pb.gz" | grep -aq "MPROF_CPU_ITIMER=yes, so the process-wide setitimer" && pass "itimer_yes: the profile says it used setitimer" ||
    fail "itimer_yes: MPROF_CPU_ITIMER=yes did not switch to setitimer"
run itimer_bad 0 env LD_PRELOAD="$LIB" MPROF_CPU_ITIMER=maybe "$TARGET" burn
says itimer_bad 'ignoring MPROF_CPU_ITIMER="maybe": expected yes or no (also true/false, on/off, 1/0); using the default (no)'

finish
