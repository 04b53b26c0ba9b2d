#!/bin/bash
# `make demo`: profile the bundled example (examples/leaky_cache.c) with
# `mprof run`, show its top allocation sites with `mprof top` (and with
# go tool pprof when Go is installed), then set the profile's sampled
# estimates beside the program's own count of what it allocated, with the
# error expected at that sampling rate; and once more at rate 1, where
# every allocation is recorded and the figures are exact.
#   examples/demo.sh BUILD [REQUESTS]
set -eu
BUILD=${1:-build}
REQUESTS=${2:-20000}
RATE=524288 # MPROF_RATE's default (src/shared/options.def), passed explicitly
PROFILE=$BUILD/demo.heap.pb.gz
EXACT=$BUILD/demo.rate1.pb.gz
PROG=$BUILD/examples/leaky_cache
TRUTH=$BUILD/demo.truth.txt

# The program prints its served line, then its truth (leaky_cache.c).
run_prog() { # RATE PROFILE
    echo "\$ $BUILD/mprof run --rate $1 --heap $2 -- $PROG $REQUESTS"
    "$BUILD/mprof" run --rate "$1" --heap "$2" -- "$PROG" "$REQUESTS" "$1" >"$TRUTH.$1"
    grep -v '^truth \|^the truth\|^profile' "$TRUTH.$1"
}

# The estimate, table: the profile's flat bytes per function of the
# example against the truth, in MB as pprof prints them (2^20 bytes).
compare() { # RATE PROFILE
    "$BUILD/mprof" top -n 0 --sample-index inuse_space "$2" >"$TRUTH.inuse"
    "$BUILD/mprof" top -n 0 --sample-index alloc_space "$2" >"$TRUTH.alloc"
    awk -v rate="$1" '
        function bytes(v,   n) {       # "21.52MB", "468.75kB", "0"
            n = v + 0
            if (v ~ /kB$/) n *= 1024; else if (v ~ /MB$/) n *= 1048576
            else if (v ~ /GB$/) n *= 1073741824
            return n
        }
        function site(name) {          # a top row names libc strdup __GI___strdup
            if (name ~ /strdup/) return "strdup"
            return name
        }
        function mb(b) { return sprintf("%.2f", b / 1048576) }
        function err(sd, b) {
            if (rate == 1) return "exact"
            return sprintf("+-%.2f", sd / 1048576) (b > 0 ? sprintf(" (%.0f%%)", 100 * sd / b) : "")
        }
        function row(name, t1, e1, x1, t2, e2, x2) {
            printf "%-16s %8s %8s  %-14s   %8s %8s  %s\n", name, t1, e1, x1, t2, e2, x2
        }
        FNR == 1 { file++ }            # 1: the truth, 2: in use, 3: allocated
        file == 1 && $1 == "truth" {
            order[++n] = $2; true_in[$2] = $4; sd_in[$2] = $6; true_al[$2] = $8; sd_al[$2] = $10; next
        }
        file == 2 && $1 ~ /^[0-9.]+[kMG]?B?$/ && NF >= 6 { est_in[site($6)] += bytes($1) }
        file == 3 && $1 ~ /^[0-9.]+[kMG]?B?$/ && NF >= 6 { est_al[site($6)] += bytes($1) }
        END {
            printf "%-21s%-36s%s\n", "", "in use at exit", "allocated in total"
            row("MB", "true", "estimate", "expected error", "true", "estimate", "expected error")
            for (i = 1; i <= n; i++) {
                s = order[i]
                row(s, mb(true_in[s]), mb(est_in[s]), err(sd_in[s], true_in[s]),
                    mb(true_al[s]), mb(est_al[s]), err(sd_al[s], true_al[s]))
                Tin += true_in[s]; Ein += est_in[s]; Vin += sd_in[s] ^ 2
                Tal += true_al[s]; Eal += est_al[s]; Val += sd_al[s] ^ 2
            }
            row("all four", mb(Tin), mb(Ein), err(sqrt(Vin), Tin), mb(Tal), mb(Eal), err(sqrt(Val), Tal))
        }' "$TRUTH.$1" "$TRUTH.inuse" "$TRUTH.alloc"
}

run_prog "$RATE" "$PROFILE"
echo
echo "\$ $BUILD/mprof top -n 8 $PROFILE                  # memory still in use at exit"
"$BUILD/mprof" top -n 8 "$PROFILE"
echo
echo "\$ $BUILD/mprof top -n 8 --sample-index alloc_space $PROFILE   # everything allocated"
"$BUILD/mprof" top -n 8 --sample-index alloc_space "$PROFILE"
if command -v go >/dev/null; then
    echo
    echo "\$ go tool pprof -top -lines $PROFILE"
    go tool pprof -top -lines -nodecount=8 "$PROFILE" 2>/dev/null
fi

cat <<EOF

These figures are estimates from a sample. As Go's heap profiler, mprof
records on average one allocation per $RATE bytes allocated (a Poisson
process along the bytes: a block of s bytes is sampled with probability
1 - exp(-s/$RATE)) and scales each sample up by the inverse of that, so
a site's estimate is right on average but spreads from run to run. Its
expected error is one standard deviation, sqrt(sum of s^2 q/(1-q)) over
the site's blocks with q = exp(-s/$RATE): about sqrt(bytes x $RATE) for
blocks much smaller than the rate; two thirds of runs fall within it, 95%
within twice it (derived in examples/leaky_cache.c). The program counted
its own allocations; the profile's estimates beside them, per function
(MB as pprof prints them: 2^20 bytes):

EOF
compare "$RATE" "$PROFILE"

cat <<EOF

With --rate 1 every allocation is recorded and the profile is exact (at a
cost: every allocation then pays for a stack walk):

EOF
run_prog 1 "$EXACT" 2>/dev/null
echo
compare 1 "$EXACT"
rm -f "$TRUTH".*
