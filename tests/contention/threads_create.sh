#!/bin/sh
# Thread-creation profile: 7 threads created at site A and 3 at site B
# (threads_target.c) give counts 7 and 3 at those two lines, and nothing
# else; under LD_PRELOAD, and in a program linked with libmprof.a.
#
# usage: threads_create.sh LIBMPROF TARGET TARGET_STATIC TARGET_SOURCE
. "$(dirname "$0")/../lib/testlib.sh"
set -e
need_go
LIB=$1
BIN=$2
STATIC=$3
SRC=$4
A_LINE=$(line_of "$SRC" site_a)
B_LINE=$(line_of "$SRC" site_b)

check_profile() { # NAME PROFILE
    pprof_lines "$T/$1.txt" "$2"
    A=$(flat_at "$T/$1.txt" create_from_site_a "$A_LINE")
    B=$(flat_at "$T/$1.txt" create_from_site_b "$B_LINE")
    TOTAL=$(total_of "$T/$1.txt")
    echo "$1: site A (line $A_LINE) $A, site B (line $B_LINE) $B, total $TOTAL"
    check_expr "$1: 7 threads from site A" "$A == 7"
    check_expr "$1: 3 threads from site B" "$B == 3"
    check_expr "$1: no other thread creation" "$TOTAL == 10"
    check_grep "$1: sample type threadcreate" "Type: threadcreate" "$T/$1.txt"
}

timeout 120 env LD_PRELOAD="$LIB" MPROF_THREADCREATE="$T/preload.pb.gz" "$BIN" \
    >"$T/preload.out" 2>&1 || { echo "FAIL: $BIN exited $?"; cat "$T/preload.out"; exit 1; }
check_profile preload "$T/preload.pb.gz"

timeout 120 env MPROF_THREADCREATE="$T/static.pb.gz" "$STATIC" >"$T/static.out" 2>&1 ||
    { echo "FAIL: $STATIC exited $?"; cat "$T/static.out"; exit 1; }
check_profile static "$T/static.pb.gz"
finish
