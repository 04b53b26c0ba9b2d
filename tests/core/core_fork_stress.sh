#!/bin/sh
# fork_stress.c under the profiler: forks from many threads beside stdio,
# from a timer signal's handler, vfork and posix_spawn, each at the default
# rate, at rate 1 and with headers off, for SECONDS each, bounded in time.
# A hang fails with the stacks of every thread (run_watch).
#
# Usage: core_fork_stress.sh LIBMPROF FORK_STRESS [SECONDS]
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
PROG=$2
SECS=${3:-2}
for mode in threads signal vfork spawn; do
    for setting in default rate1 noheaders; do
        case $setting in
        default) env="" ;;
        rate1) env="MPROF_RATE=1" ;;
        noheaders) env="MPROF_HEADERS=0 MPROF_RATE=4096" ;;
        esac
        # shellcheck disable=SC2086
        run_watch $((SECS + 60)) env $env LD_PRELOAD="$LIB" "$PROG" "$mode" "$SECS" \
            >"$T/out" 2>"$T/err"
        rc=$?
        n=$(awk '$1 == "forks" {print $2}' "$T/out")
        if [ $rc -ne 0 ]; then
            fail "$mode $setting: status $rc"
            cat "$T/out" "$T/err" | tail -80
        elif [ "${n:-0}" -lt 1 ]; then
            fail "$mode $setting: no fork completed"
        else
            pass "$mode $setting: $n forks"
        fi
    done
done
finish
