#!/bin/sh
# Fork under LD_PRELOAD: parent and every child write their own valid heap
# profile.  Usage: core_fork.sh LIBMPROF TEST_FORK
#  1. MPROF_HEAP=DIR/heap.%p.pb.gz: one file per process, named by pid;
#  2. MPROF_HEAP=DIR/heap.pb.gz (no %p): the parent writes DIR/heap.pb.gz,
#     each child DIR/heap.pb.gz.<pid>.
# Each profile is read by `go tool pprof -raw`; a child's shows child_work
# with exactly its 1000 x 1 KiB (rate 1), the parent's shows parent_keep
# and no child_work; no temporary file is left behind.
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2
MODE=${3:-fork}
PATTERNS='heap.%p.pb.gz heap.pb.gz'
[ "$MODE" = exec ] && PATTERNS='heap.pb.gz'

check_profile() { # FILE ROLE
    f=$1; role=$2
    if [ ! -s "$f" ]; then fail "$role: no profile $f"; return; fi
    if ! pprof_raw "$f" "$f.raw"; then fail "$role: go tool pprof cannot read $f"; return; fi
    child=$(pyq total "$f.raw" alloc_space child_work)
    parent=$(pyq total "$f.raw" inuse_space parent_keep)
    if [ "$role" = parent ]; then
        [ "$parent" = 32768 ] || fail "$role $f: parent_keep in use $parent bytes, want 32768"
        [ "$child" = 0 ] || fail "$role $f: child_work shows $child bytes in the parent"
    else
        [ "$child" = 1024000 ] || fail "$role $f: child_work allocated $child bytes, want 1024000"
        inuse=$(pyq total "$f.raw" inuse_space child_work)
        [ "$inuse" = 1024000 ] || fail "$role $f: child_work in use $inuse bytes, want 1024000"
        # A forked child inherits the parent's heap: parent_keep is still
        # there.  An exec'd one starts afresh.
        want_parent=32768
        [ "$MODE" = exec ] && want_parent=0
        [ "$parent" = "$want_parent" ] || fail "$role $f: parent_keep shows $parent bytes, want $want_parent"
    fi
}

for pattern in $PATTERNS; do
    D="$T/run.$(echo "$pattern" | tr -d '%')"
    mkdir -p "$D"
    if ! run_t env MPROF_RATE=1 MPROF_HEAP="$D/$pattern" LD_PRELOAD="$LIB" "$PROG" "$MODE" >"$D/out" 2>"$D/err"; then
        fail "[$pattern] test_fork failed (status $?)"; cat "$D/err"; continue
    fi
    ppid=$(awk '$1 == "parent" {print $2}' "$D/out")
    kids=$(awk '$1 == "child" {print $2}' "$D/out")
    nkids=$(echo $kids | wc -w)
    [ "$nkids" = 5 ] || fail "[$pattern] $nkids children reported, want 5"
    if [ "$pattern" = 'heap.%p.pb.gz' ]; then
        check_profile "$D/heap.$ppid.pb.gz" parent
        for k in $kids; do check_profile "$D/heap.$k.pb.gz" "child $k"; done
        want=$((nkids + 1))
    else
        check_profile "$D/heap.pb.gz" parent
        for k in $kids; do check_profile "$D/heap.pb.gz.$k" "child $k"; done
        want=$((nkids + 1))
        claims=$(grep -c "mprof: wrote heap profile to $D/heap.pb.gz " "$D/err")
        [ "$claims" = 1 ] || fail "[$pattern] $claims processes wrote $D/heap.pb.gz (each overwriting the last), want only the parent"
    fi
    got=$(ls "$D" | grep -v '\.raw' | grep -c 'heap\.')
    [ "$got" = "$want" ] || { fail "[$pattern] $got profile files, want $want"; ls -la "$D"; }
    if ls "$D" | grep -q 'tmp'; then fail "[$pattern] temporary files left: $(ls "$D" | grep tmp)"; fi
    nwrote=$(grep -c 'mprof: wrote heap profile' "$D/err")
    [ "$nwrote" = "$want" ] || fail "[$pattern] $nwrote 'wrote heap profile' messages, want $want"
    if grep '^mprof:' "$D/err" | grep -v 'wrote heap profile' >/dev/null; then
        fail "[$pattern] mprof warnings:"; grep '^mprof:' "$D/err" | grep -v 'wrote heap profile'
    fi
    pass "[$pattern] parent $ppid and children $(echo $kids) checked"
done
finish
