#!/bin/sh
# End to end with the real profiler: `mprof run` preloads libmprof.so, the
# program's exit status comes back unchanged, the heap and CPU profiles
# appear where asked, `mprof top` reads them, and (when Go is installed)
# reports them exactly as `go tool pprof -top` does.
#
# The profiled program is bash, not /bin/sh: Debian's sh (dash) leaves
# through _exit(), which skips the exit handlers that write the profiles.
#
# Usage: cli_run_profiler.sh MPROF LIBMPROF_SO
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
export MPROF_LIB="$2"
compared=0
unset MPROF_HEAP MPROF_CPU MPROF_HTTP MPROF_SIGNAL MPROF_INTERVAL

cd "$T" || exit 1

"$MPROF" run --rate 1 -- /bin/sh -c 'exit 7'
status=$?
[ "$status" -eq 7 ] || fail "mprof run -- /bin/sh -c 'exit 7' exited $status"

if ! BASH=$(command -v bash); then
    echo "bash not found: skipping the profile checks"
    finish
fi
rm -f mprof.heap.*.pb.gz

# Default: a heap profile in the current directory, named after the pid.
"$MPROF" run --rate 1 -- "$BASH" -c 'exit 7'
status=$?
[ "$status" -eq 7 ] || fail "mprof run -- bash -c 'exit 7' exited $status"
set -- mprof.heap.*.pb.gz
if [ ! -f "$1" ]; then
    fail "no default heap profile mprof.heap.<pid>.pb.gz in $T: $(ls "$T")"
else
    mv "$1" default-heap.pb.gz
    "$MPROF" top -n 0 default-heap.pb.gz >top.txt 2>top.err ||
        fail "mprof top on the default heap profile failed: $(cat top.err)"
    grep -q '^Type: inuse_space' top.txt || fail "heap profile report: $(cat top.txt)"
fi

# Explicit heap and CPU profiles from a program that burns some CPU and
# changes directory (relative paths are the caller's).
mkdir sub
# shellcheck disable=SC2016 # the loop is bash's to expand
"$MPROF" run --rate 4096 --heap "$T/heap.%p.pb.gz" --cpu cpu.pb.gz --hz 200 -- \
    "$BASH" -c 'cd sub; i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done'
status=$?
[ "$status" -eq 0 ] || fail "CPU-burning run exited $status"
[ -f cpu.pb.gz ] || fail "no CPU profile cpu.pb.gz where mprof ran: $(ls -R)"
set -- heap.*.pb.gz
if [ -f "$1" ]; then
    mv "$1" heap.pb.gz
else
    fail "no heap profile heap.<pid>.pb.gz: $(ls)"
fi
if [ -f cpu.pb.gz ]; then
    "$MPROF" top -n 0 cpu.pb.gz >cpu.txt 2>cpu.err || fail "mprof top cpu.pb.gz: $(cat cpu.err)"
    grep -q '^Type: cpu' cpu.txt || fail "CPU profile report: $(cat cpu.txt)"
fi

# Same reports as pprof on profiles from our own writer (drop_frames,
# inlined frames, unsymbolized frames of a stripped bash).
if command -v "$GO" >/dev/null 2>&1; then
    for file in default-heap.pb.gz heap.pb.gz cpu.pb.gz; do
        [ -f "$file" ] || continue
        for flags in "-n 0" "-n 10" "-n 0 --cum"; do
            # shellcheck disable=SC2086 # flags split on purpose
            pprof_flags=$(echo "-top $flags" | sed 's/-n /-nodecount=/; s/--cum/-cum/')
            # shellcheck disable=SC2086
            "$GO" tool pprof $pprof_flags "$file" 2>/dev/null | grep -v '^Time: ' >want.txt
            # shellcheck disable=SC2086
            "$MPROF" top $flags "$file" | grep -v '^Time: ' >got.txt
            if ! grep -q 'flat  flat%' want.txt; then
                echo "note: go tool pprof printed no report for $file; not compared"
            elif compared=$((compared + 1)) && ! cmp -s want.txt got.txt; then
                fail "mprof top $flags $file differs from go tool pprof $pprof_flags:" \
                    "$(diff want.txt got.txt | head -30)"
            fi
        done
    done
fi

# A misspelled setting: one line with the right name, said by the first
# profiled process only, not by each program it starts (bash runs two).
MPROF_RAET=1 "$MPROF" run --heap h.pb.gz -- "$BASH" -c '/bin/true; /bin/true; exit 0' 2>typo.err
check "a misspelled setting is named once, with its fix" \
    test "$(grep -c '^mprof: ignoring unknown setting MPROF_RAET: did you mean MPROF_RATE?' typo.err)" = 1

echo "$compared reports compared with go tool pprof"
finish
