#!/bin/bash
# mprof report's page: its size and the time headless chromium takes to
# draw it, for synthetic heap profiles of 10,000 and 100,000 samples
# (bench/report_profile.py), in two shapes: "typical" (samples drawn from
# 5,000 stacks, a few dominating, as in real programs) and "unique" (every
# sample its own stack: the worst case, over a million call tree nodes
# for 100,000 samples).
#
# The time is the page's own: performance.now() when the flame graph is
# drawn, from the start of navigation (reading the file, decoding and
# inflating its data and building the tree included), and when the top
# table follows; read over the DevTools protocol (bench/report_open.py),
# in real time.  The median of ROUNDS runs.
#
# Target: a 100,000-sample typical profile drawn in under a second on an
# unloaded machine.  This machine is shared: the load average is printed
# with the figures, which scale with it.
set -u
BUILD=$1
MPROF=$BUILD/mprof
DIR=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-5}
T=$(mktemp -d "${TMPDIR:-/tmp}/mprof-report-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
command -v chromium >/dev/null || { echo "report_bench: chromium not installed (make deps)"; exit 1; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# drawn_ms and table_ms count from the start of navigation; script_ms is
# the page's script alone (decode, inflate, build, draw): drawn less the
# moment the script started, which under load is mostly chromium's.
printf '%-8s %8s %10s %10s %9s %9s %9s %9s\n' shape samples profile page nodes drawn_ms table_ms script_ms
for shape in typical unique; do
    for n in 10000 100000; do
        p=$T/$shape$n.pb.gz
        python3 "$DIR/report_profile.py" "$n" "$p" "$shape" || exit 1
        "$MPROF" report "$p" -o "$T/$shape$n.html" 2>/dev/null || { echo "mprof report failed"; exit 1; }
        drawn=() table=() script=() nodes=0
        for ((r = 0; r < ROUNDS; r++)); do
            out=$(python3 "$DIR/report_open.py" chromium "$T/$shape$n.html" none) || { echo "$out"; exit 1; }
            read -r d t s nodes < <(echo "$out" | python3 -c \
                'import json,sys; r=json.load(sys.stdin); p=r["phases_ms"]; print(p["drawn"], p["table"], p["drawn"] - p["start"], r["nodes"])')
            drawn+=("$d") table+=("$t") script+=("$s")
        done
        med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
        printf '%-8s %8d %10d %10d %9d %9s %9s %9s\n' "$shape" "$n" "$(stat -c %s "$p")" \
            "$(stat -c %s "$T/$shape$n.html")" "$nodes" "$(med "${drawn[@]}")" "$(med "${table[@]}")" \
            "$(med "${script[@]}")"
    done
done
