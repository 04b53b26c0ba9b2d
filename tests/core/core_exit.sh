#!/bin/sh
# Profiles of programs that leave through _exit or _Exit (interpose/exit.c,
# runtime/stop_signals.c): the program's status is kept and its heap
# profile written; a SIGTERM handler that calls _exit writes it too; a
# fork() child that calls _exit writes its own; a vfork() child that calls
# _exit on its parent's memory writes nothing, and the parent goes on to
# write a whole profile of its own at exit (had the child run the exit
# writers, the parent's would be missing: they run once); and dash, which
# leaves its subshells through _exit, runs a program under the library as
# it does without.
# Usage: core_exit.sh LIBMPROF EXIT_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2

run() { # NAME MODE: the target under the library; its status in $rc
    run_t env MPROF_RATE=1 MPROF_HEAP="$T/$1.%p.pb.gz" LD_PRELOAD="$LIB" "$PROG" "$2" \
        >"$T/$1.out" 2>"$T/$1.err"
    rc=$?
}

profile_has() { # WHAT FILE FUNC MIN_BYTES
    if [ ! -s "$2" ]; then fail "$1: no profile $2"; return; fi
    pprof_raw "$2" "$T/p.raw" || { fail "$1: pprof cannot read $2"; return; }
    n=$(pyq total "$T/p.raw" inuse_space "$3")
    check_expr "$1: the profile holds $3 ($n bytes, at least $4)" "$n >= $4"
}

nfiles() { ls "$T" | grep -c "^$1\..*\.pb\.gz$"; }

for mode in _exit:7 _Exit:8; do
    name=${mode%%:*}
    want=${mode##*:}
    run "$name" "$name"
    check "$name: the status the program gave ($rc)" test "$rc" -eq "$want"
    check "$name: one profile" test "$(nfiles "$name")" -eq 1
    profile_has "$name" "$(ls "$T/$name".*.pb.gz 2>/dev/null | head -1)" exit_keep 1048576
    check_grep "$name: said once where it wrote" "mprof: wrote heap profile" "$T/$name.err"
done

# A SIGTERM handler that calls _exit.
env MPROF_RATE=1 MPROF_HEAP="$T/handler.%p.pb.gz" LD_PRELOAD="$LIB" "$PROG" handler \
    >"$T/handler.out" 2>"$T/handler.err" &
pid=$!
kill_at_exit "$pid"
i=0
while ! grep -q ready "$T/handler.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "handler: the handler's status ($rc)" test "$rc" -eq 5
profile_has "handler" "$T/handler.$pid.pb.gz" exit_keep 1048576

# fork(): the child's _exit writes the child's profile, the parent's exit its own.
run fork fork
check "fork: the parent's status ($rc)" test "$rc" -eq 0
check "fork: two profiles" test "$(nfiles fork)" -eq 2
child=""
for f in "$T"/fork.*.pb.gz; do
    pprof_raw "$f" "$T/f.raw" || continue
    [ "$(pyq total "$T/f.raw" inuse_space child_keep)" -gt 0 ] && child=$f
done
check "fork: the child's profile holds child_keep" test -n "$child"

# vfork(): nothing from the child; the parent's profile whole, and written.
run vfork vfork
check "vfork: the parent's status ($rc)" test "$rc" -eq 0
cpid=$(sed -n 's/^child //p' "$T/vfork.out")
check "vfork: the child ran (pid '$cpid')" test -n "$cpid"
check "vfork: the child wrote no profile" test ! -e "$T/vfork.$cpid.pb.gz"
check "vfork: one profile, the parent's" test "$(nfiles vfork)" -eq 1
profile_has "vfork parent" "$(ls "$T"/vfork.*.pb.gz 2>/dev/null | head -1)" after_vfork 262144
profile_has "vfork parent" "$(ls "$T"/vfork.*.pb.gz 2>/dev/null | head -1)" exit_keep 1048576
check "vfork: one line on stderr" test "$(grep -c 'mprof: wrote heap profile' "$T/vfork.err")" -eq 1

# dash: a program it runs and its own subshells, which leave through _exit.
need_cmd dash
run_t env MPROF_RATE=1 MPROF_HEAP="$T/dash.%p.pb.gz" LD_PRELOAD="$LIB" \
    dash -c "'$PROG' _exit; echo status \$?; (exit 3); echo sub \$?; true" \
    >"$T/dash.out" 2>"$T/dash.err"
rc=$?
cat "$T/dash.out"
check "dash: exit status 0 ($rc)" test "$rc" -eq 0
check_grep "dash: the program's status" "status 7" "$T/dash.out"
check_grep "dash: the subshell's status" "sub 3" "$T/dash.out"
found=""
readable=0
for f in "$T"/dash.*.pb.gz; do
    pprof_raw "$f" "$T/d.raw" || continue
    readable=$((readable + 1))
    [ "$(pyq total "$T/d.raw" inuse_space exit_keep)" -ge 1048576 ] && found=$f
done
check "dash: the program's profile holds exit_keep" test -n "$found"
check "dash: every profile is readable ($readable of $(nfiles dash))" test "$readable" -eq "$(nfiles dash)"
check "dash: the shell, the program and the subshell each wrote one ($(nfiles dash))" \
    test "$(nfiles dash)" -eq 3
finish
