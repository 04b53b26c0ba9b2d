#!/bin/sh
# The lifetime profile (docs/peak.md, "Lifetimes"): churn_site's 2,000,000
# blocks freed at once rank first by short-lived objects, with an estimate
# within 12% of the true count at the default rate; slow_site's blocks,
# kept 1.2 s, are measured but never short-lived, their mean lifetime about
# 1.2 s; through MPROF_LIFETIME and mprof run --lifetime, and a threshold
# set with --short-lived.
# Usage: lifetime_check.sh LIBMPROF LIFETIME_TARGET MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2
MPROF=$3

env MPROF_LIFETIME="$T/life.pb.gz" LD_PRELOAD="$LIB" "$PROG" >"$T/out" 2>"$T/err" ||
    fail "the program failed"
check_grep "one line on stderr for the lifetime file" "wrote lifetime profile" "$T/err"
pprof_raw "$T/life.pb.gz" "$T/life.raw" || die "pprof cannot read the lifetime profile"
short=$(pyq total "$T/life.raw" short_lived_objects churn_site)
check_expr "churn_site: short-lived objects within 12% of 2,000,000 ($short)" \
    "$short >= 0.88 * 2000000 && $short <= 1.12 * 2000000"
slow_short=$(pyq total "$T/life.raw" short_lived_objects slow_site)
slow_freed=$(pyq total "$T/life.raw" freed_objects slow_site)
slow_life=$(pyq total "$T/life.raw" lifetime slow_site)
check_expr "slow_site: never short-lived ($slow_short)" "$slow_short == 0"
check_expr "slow_site: its frees measured ($slow_freed, true 64)" "$slow_freed >= 54 && $slow_freed <= 74"
check_expr "slow_site: mean lifetime about 1.2 s ($slow_life / $slow_freed ns)" \
    "$slow_freed > 0 && $slow_life / $slow_freed >= 1.1e9 && $slow_life / $slow_freed <= 2.0e9"
"$MPROF" top --sample-index short_lived_objects "$T/life.pb.gz" >"$T/top" 2>&1
first=$(awk '/flat%/ {getline; print $NF; exit}' "$T/top")
check "mprof top: churn_site ranks first by short-lived objects ($first)" \
    sh -c "grep -A1 'flat%' '$T/top' | grep -q churn_site"

# mprof run, with a threshold of 2 s: slow_site's blocks become short-lived.
"$MPROF" run --lifetime "$T/run.pb.gz" --short-lived 2000000 -- "$PROG" >/dev/null 2>"$T/run.err" ||
    fail "mprof run --lifetime failed"
pprof_raw "$T/run.pb.gz" "$T/run.raw" || die "pprof cannot read mprof run's lifetime profile"
s2=$(pyq total "$T/run.raw" short_lived_objects slow_site)
check_expr "--short-lived 2000000: slow_site's blocks count as short-lived ($s2)" "$s2 >= 54"
check_grep "the threshold is in the comment" "freed within 2000000 us" "$T/run.raw"
finish
