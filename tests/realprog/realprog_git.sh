#!/bin/sh
# Debian's git (a program nobody here wrote, which runs git and sh
# subprocesses of its own) on a scripted session in a temporary repository:
# init, 300 files, commits, log, diff, gc, fsck.  Run plain, then with every
# process under LD_PRELOAD=libmprof.so (MPROF_HEAP with %p), and under
# `mprof run`.  Checks:
#  - the session prints the same output (commit ids included: dates and
#    identities are fixed) and exits with the same status;
#  - every process wrote a profile and `go tool pprof -raw` reads each; no
#    temporary file is left;
#  - named locations in libc lie inside their symbols;
#  - with MODE "nopid": MPROF_HEAP without %p: the top process writes
#    FILE, each process it starts (fork, fork+exec) FILE.<pid>; none
#    overwrites another's profile.
# Usage: realprog_git.sh LIBMPROF MPROF_CLI [nopid]
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
CLI=$2
MODE=${3:-main}
GIT=${MPROF_REALPROG_GIT:-/usr/bin/git}
[ -x "$GIT" ] || { echo "FAIL: $GIT not found (make deps installs git)"; exit 1; }
LIBC=$(readlink -f "$(ldd "$GIT" | awk '/libc.so.6/ {print $3}')")

cat >"$T/session.sh" <<'SH'
set -e
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=C \
    GIT_COMMITTER_EMAIL=c@example.com GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' \
    GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
    LC_ALL=C TZ=UTC
G=$1
cd "$2"
$G init -q -b main repo
cd repo
mkdir d0 d1 d2 d3 d4 d5 d6 d7 d8 d9
awk 'BEGIN { for (i = 0; i < 300; i++) { f = "d" (i % 10) "/f" i ".txt";
             for (j = i; j <= i + 200; j++) print j > f; close(f) } }'
$G add -A
$G commit -q -m 'first: 300 files'
sed -i 's/^1/one/' d1/*.txt
$G commit -q -a -m 'second: edits'
$G rm -q -r d9
$G commit -q -m 'third: remove d9'
$G log --stat --format='%H %s' | head -40
$G diff --stat HEAD~2 HEAD | tail -3
$G gc -q --aggressive
$G fsck --no-progress
$G count-objects -v | grep -v size
$G rev-parse HEAD
$G status --short | wc -l
SH

mkdir -p "$T/plain" "$T/preload" "$T/run" "$T/nop"
run_t env -u LD_PRELOAD sh "$T/session.sh" "$GIT" "$T/plain" >"$T/plain.out" 2>"$T/plain.err"
plain_rc=$?
[ "$plain_rc" = 0 ] || { fail "plain session failed ($plain_rc)"; cat "$T/plain.err"; }
grep -q '^[0-9a-f]\{40\} third: remove d9$' "$T/plain.out" || fail "unexpected plain output"

same() { # NAME RC
    [ "$2" = "$plain_rc" ] || fail "$1: exit status $2, without mprof $plain_rc"
    cmp -s "$T/plain.out" "$T/$1.out" || { fail "$1: output differs"; diff "$T/plain.out" "$T/$1.out" | head; }
    # mprof's own lines: one per process, or mprof run's one summary.
    grep -v -e '^mprof: wrote heap profile' -e '^mprof: [0-9]* heap profiles in ' "$T/$1.err" |
        cmp -s "$T/plain.err" - ||
        { fail "$1: stderr differs"; grep -v '^mprof: wrote heap profile' "$T/$1.err" | diff "$T/plain.err" - | head; }
}

if [ "$MODE" = main ]; then
# 1. Every process preloaded, one profile per pid.
mkdir -p "$T/prof"
run_t env MPROF_HEAP="$T/prof/git.%p.pb.gz" LD_PRELOAD="$LIB" sh "$T/session.sh" "$GIT" "$T/preload" \
    >"$T/preload.out" 2>"$T/preload.err"
same preload $?
nfiles=$(ls "$T/prof" | grep -c '\.pb\.gz$')
[ "$nfiles" -ge 20 ] || fail "preload: only $nfiles profiles for the whole session"
ls "$T/prof" | grep -v '\.pb\.gz$' | grep . && fail "preload: stray files (temporary?) left"
# One pprof run reads (and merges) them all; on failure, find the culprits.
if pprof -raw "$T"/prof/*.pb.gz >"$T/all.raw" 2>"$T/all.err" && grep -q '^Samples:' "$T/all.raw"; then
    pass "preload: $nfiles profiles, all read by go tool pprof"
else
    for f in "$T"/prof/*.pb.gz; do
        pprof_raw "$f" "$f.raw" || fail "preload: go tool pprof rejects $(basename "$f")"
    done
fi
# The biggest one (git gc's pack-objects, or the first commit): libc names.
big=$(ls -S "$T"/prof/*.pb.gz | head -1)
pprof_raw "$big" "$big.raw" || fail "preload: go tool pprof rejects $big"
if out=$(pyq check-symbols "$big.raw" libc.so.6 "$LIBC"); then
    pass "preload: $(basename "$big"): $(echo "$out" | tail -1)"
else
    fail "preload: misnamed frames in libc:"; echo "$out" | head -20
fi

# 2. Under mprof run (the default rate, a file per process).
mkdir -p "$T/runprof"
run_t "$CLI" run --heap "$T/runprof/git.%p.pb.gz" -- sh "$T/session.sh" "$GIT" "$T/run" \
    >"$T/run.out" 2>"$T/run.err"
same run $?
n=$(ls "$T/runprof" | grep -c '\.pb\.gz$')
[ "$n" -ge 20 ] || fail "mprof run: only $n profiles"
# One line for the whole session, counting every file it wrote.
check "mprof run: one mprof line for $n processes" [ "$(grep -c '^mprof:' "$T/run.err")" = 1 ]
check_grep "mprof run: the line counts the files" "mprof: $n heap profiles in $T/runprof " \
    "$T/run.err"
f=$(ls -S "$T"/runprof/*.pb.gz | head -1)
pprof_raw "$f" "$f.raw" && pass "mprof run: $n profiles, the biggest read by go tool pprof" ||
    fail "mprof run: go tool pprof rejects $f"

fi

if [ "$MODE" = nopid ]; then
# 3. No %p: the top process writes FILE, the processes below it FILE.<pid>.
mkdir -p "$T/nopprof"
run_t env MPROF_HEAP="$T/nopprof/git.pb.gz" LD_PRELOAD="$LIB" sh "$T/session.sh" "$GIT" "$T/nop" \
    >"$T/nop.out" 2>"$T/nop.err"
same nop $?
claims=$(grep -c "^mprof: wrote heap profile to $T/nopprof/git.pb.gz " "$T/nop.err")
# (The top process is sh, which leaves with _exit and writes nothing.)
[ "$claims" -le 1 ] || fail "without %p: $claims processes wrote $T/nopprof/git.pb.gz, each overwriting the last; only the top process may (the others FILE.<pid>)"
n=$(ls "$T/nopprof" | grep -c '^git\.pb\.gz\.[0-9]*$')
[ "$n" -ge 10 ] || fail "without %p: $n files git.pb.gz.<pid>, want one per process below the top one"
fi
finish
