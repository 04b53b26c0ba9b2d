#!/bin/bash
# Accuracy of the unsampled estimates at the default rate: BINARY LIBMPROF.
# Each site's estimate must be within 5% of its true total (about 4 standard
# errors for the smallest-sample site; see accuracy_target.c), and freed
# sites must show no bytes in use.
. "$(dirname "$0")/../lib/testlib.sh"
BIN=$1 LIB=$2
need_go
OUT=$(env -u MPROF_RATE LD_PRELOAD=$LIB MPROF_HEAP="$T/heap.pb.gz" "$BIN" 2>"$T/stderr") ||
    { echo "FAIL: target exited $?"; cat "$T/stderr"; exit 1; }
MIXED=$(awk '/mixed_total/ {print $2}' <<<"$OUT")

pprof -raw "$T/heap.pb.gz" | grep -q "^Period: 524288$" || fail "period is not the default rate"

# value SAMPLE_INDEX FUNCTION: the flat value in bytes pprof reports
value() {
    pprof -top -sample_index="$1" -unit=B -nodefraction=0 "$T/heap.pb.gz" |
        awk -v f="$2" '$6 == f { sub(/B$/, "", $1); print $1; found = 1 } END { if (!found) print 0 }'
}
within() { # name got want pct
    awk -v g="$2" -v w="$3" -v p="$4" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; exit !(d <= p / 100) }'
}
check_site() { # function true_alloc true_inuse
    local a i
    a=$(value alloc_space "$1")
    i=$(value inuse_space "$1")
    local err
    err=$(awk -v g="$a" -v w="$2" 'BEGIN { printf "%+.2f%%", (g - w) * 100 / w }')
    if within "$1" "$a" "$2" 5; then pass "$1 alloc_space $a vs $2 ($err)"; else fail "$1 alloc_space $a vs true $2 ($err)"; fi
    if [ "$3" = 0 ]; then
        [ "$i" = 0 ] && pass "$1 inuse_space 0" || fail "$1 freed but shows $i bytes in use"
    else
        err=$(awk -v g="$i" -v w="$3" 'BEGIN { printf "%+.2f%%", (g - w) * 100 / w }')
        if within "$1" "$i" "$3" 5; then pass "$1 inuse_space $i vs $3 ($err)"; else fail "$1 inuse_space $i vs true $3 ($err)"; fi
    fi
}
check_site small_blocks $((4 << 30)) 0
check_site large_blocks $((4 << 30)) 0
check_site mixed_blocks "$MIXED" 0
check_site retained $((1 << 30)) $((1 << 30))
finish
