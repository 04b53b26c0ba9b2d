#!/bin/sh
# What the README says of glibc's corruption checks under mprof: plain and
# with MPROF_HEADERS=0 glibc aborts on the damaged freed block; with headers
# (rate 1: every block sampled) the damage lands beside glibc's pointers
# and it does not.  If the last ever changes, the README must too.
# Usage: core_glibc_checks.sh LIBMPROF GLIBC_CHECKS
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
PROG=$2
"$PROG" >/dev/null 2>"$T/plain.err"
check "plain: glibc aborts" test $? -eq 134
env MPROF_HEADERS=0 MPROF_RATE=1 LD_PRELOAD="$LIB" "$PROG" >/dev/null 2>"$T/table.err"
check "MPROF_HEADERS=0: glibc still aborts" test $? -eq 134
env MPROF_RATE=1 LD_PRELOAD="$LIB" "$PROG" >"$T/header.out" 2>"$T/header.err"
check "headers: glibc does not see the damage (documented in the README)" test $? -eq 0
finish
