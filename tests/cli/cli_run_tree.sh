#!/bin/sh
# mprof run of a program that starts many processes (issue 16, item 4):
# shell scripts (dash and bash) starting N children, with the real library.
#
#  - one line on stderr for the whole run, naming the count, the directory,
#    every pid whose file was written, and how to read them (one, or all
#    merged with mprof top), and exactly the files it names on disk;
#  - the run log (MPROF_RUN_LOG, a nameless file in $TMPDIR) leaves nothing
#    behind, and a process that outlives the top one prints its own line;
#  - --only NAME profiles only the processes of that program, --only-top
#    only the top one (and what it execs in its place): the others write
#    nothing, and their children are still checked;
#  - a process tree not under mprof run keeps one line per process;
#  - the exit status passes through.
#
# Usage: cli_run_tree.sh MPROF LIBMPROF_SO CLI_ALLOC_SIZES
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
LIB=$2
PROG=$3
export MPROF_LIB="$LIB"
unset MPROF_HEAP MPROF_CPU MPROF_HTTP MPROF_SIGNAL MPROF_INTERVAL MPROF_RUN_LOG MPROF_ROOT_PID
BASH=$(command -v bash) || die "bash not found"
N=4
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"

# The script: N children, each an allocating program, then status 3.
cat >"$T/kids.sh" <<EOF
i=0
while [ \$i -lt $N ]; do
    "$PROG" 100 10 >/dev/null
    i=\$((i + 1))
done
exit 3
EOF

# run NAME SHELL [MPROF RUN OPTIONS]: the script under mprof run, profiles
# in $T/NAME, stderr in $T/NAME.err.
run() {
    name=$1
    shell=$2
    shift 2
    mkdir -p "$T/$name"
    run_t "$MPROF" run --rate 4096 --heap "$T/$name/h.%p.pb.gz" "$@" -- "$shell" "$T/kids.sh" \
        >/dev/null 2>"$T/$name.err"
    check "$name: the exit status passes through" [ $? -eq 3 ]
    ls "$T/$name" | grep -c '\.pb\.gz$' >"$T/$name.count"
}

# summary_ok NAME COUNT: one mprof line, naming COUNT profiles and the pid
# of each file on disk.
summary_ok() {
    name=$1
    count=$2
    check "$name: $count profiles written" [ "$(cat "$T/$name.count")" = "$count" ]
    check "$name: one mprof line" [ "$(grep -c '^mprof:' "$T/$name.err")" = 1 ]
    check_grep "$name: the line counts them" "mprof: $count heap profiles in $T/$name (pids" \
        "$T/$name.err"
    check_grep "$name: the line says how to merge them" \
        "all merged: mprof top $T/$name/h.*.pb.gz" "$T/$name.err"
    for f in "$T/$name"/h.*.pb.gz; do
        pid=${f##*/h.}
        pid=${pid%.pb.gz}
        grep -q "pids.* $pid[ )]\|pids $pid[ )]" "$T/$name.err" ||
            fail "$name: the line does not name pid $pid"
    done
    check "$name: no run log left in \$TMPDIR" [ -z "$(ls "$TMPDIR")" ]
}

# dash: the root leaves through _exit and writes no profile of its own,
# but still prints the summary.
run dash /bin/sh
summary_ok dash $N
# bash: the root's own profile too.
run bash "$BASH"
summary_ok bash $((N + 1))

# --only: the children alone; every file is the program's.
run only "$BASH" --only "${PROG##*/}"
summary_ok only $N
for f in "$T/only"/h.*.pb.gz; do
    "$MPROF" top "$f" | head -1 >"$T/only.file"
    check_grep "--only: $f is ${PROG##*/}'s" "File: ${PROG##*/}" "$T/only.file"
done
# A program with a version in its name matches its name without it: an
# exec'd copy named NAME3.11 is matched by --only NAME3.
cp "$PROG" "$T/allocsz3.11"
cat >"$T/exec.sh" <<EOF
exec "$T/allocsz3.11" 100 10
EOF
mkdir -p "$T/ver"
run_t "$MPROF" run --rate 4096 --heap "$T/ver/h.%p.pb.gz" --only allocsz3 -- "$BASH" \
    "$T/exec.sh" >/dev/null 2>"$T/ver.err"
check "--only NAME matches NAME.VERSION" [ "$(ls "$T/ver" | grep -c 'pb.gz$')" = 1 ]
check_grep "--only, one file: the usual line" "mprof: wrote heap profile to $T/ver/h." "$T/ver.err"
# No process matches: nothing written, nothing said.
run none "$BASH" --only no-such-program
check "--only no match: no profile" [ "$(cat "$T/none.count")" = 0 ]
check "--only no match: no mprof line" [ "$(grep -c '^mprof:' "$T/none.err")" = 0 ]

# --only-top: the shell alone; a script that execs its program profiles
# the program (same pid: still the top process).
run top "$BASH" --only-top
check "--only-top: one profile" [ "$(cat "$T/top.count")" = 1 ]
check_grep "--only-top: the usual line for one file" "mprof: wrote heap profile to $T/top/h." \
    "$T/top.err"
mkdir -p "$T/topexec"
run_t "$MPROF" run --rate 4096 --heap "$T/topexec/h.%p.pb.gz" --only-top -- "$BASH" \
    "$T/exec.sh" >/dev/null 2>"$T/topexec.err"
check "--only-top, exec: one profile" [ "$(ls "$T/topexec" | grep -c 'pb.gz$')" = 1 ]
"$MPROF" top "$T"/topexec/h.*.pb.gz | head -1 >"$T/topexec.file"
check_grep "--only-top, exec: the exec'd program's" "File: allocsz3.11" "$T/topexec.file"

# A process that outlives the top one (it waits for the top's end, so the
# order is certain) finds the run summarized and prints its own line.
cat >"$T/late.sh" <<EOF
( while kill -0 \$\$ 2>/dev/null; do sleep 0.1; done; exec "$PROG" 100 10 >/dev/null ) &
"$PROG" 100 10 >/dev/null
"$PROG" 100 10 >/dev/null
EOF
mkdir -p "$T/late"
# (--only: the waiting loop's sleeps are not profiled; the top shell is
# not either, and still prints the summary.)
run_t "$MPROF" run --rate 4096 --heap "$T/late/h.%p.pb.gz" --only "${PROG##*/}" -- "$BASH" \
    "$T/late.sh" 2>"$T/late.err"
check_grep "late: the run's summary" "mprof: 2 heap profiles in $T/late (pids" "$T/late.err"
i=0
while ! grep -q "^mprof: wrote heap profile to $T/late/h." "$T/late.err" && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
check_grep "late: the late process prints its own line" "mprof: wrote heap profile to $T/late/h." \
    "$T/late.err"
check "late: its file is there" [ "$(ls "$T/late" | grep -c 'pb.gz$')" = 3 ]
check "the run log is never a file left behind" [ -z "$(ls "$TMPDIR")" ]

# Not under mprof run: each process says what it wrote, as before.
mkdir -p "$T/plain"
LD_PRELOAD="$LIB" MPROF_RATE=4096 MPROF_HEAP="$T/plain/h.%p.pb.gz" run_t "$BASH" "$T/kids.sh" \
    >/dev/null 2>"$T/plain.err"
check "without mprof run: a line per process" \
    [ "$(grep -c '^mprof: wrote heap profile' "$T/plain.err")" = $((N + 1)) ]
finish
