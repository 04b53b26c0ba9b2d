#!/bin/sh
# mprof report in a real browser (issue 15, item 4): Debian's chromium,
# headless, opens the page from a file:// path and the page's self-test
# (#selftest=NAME, web/report.html) says what it drew.  Checked:
#
#  - the page is one file and asks for nothing outside it (no http:// or
#    https://, no src=/href= to anything, the CSP that forbids requests);
#  - the flame graph drew the known hot function's frame (its pixels read
#    back from the canvas are a frame's colour, not the background), for a
#    heap profile, a peak profile and a CPU profile;
#  - a search for it finds it, and sums it to its share of the profile;
#  - the top table has rows;
#  - the heap profile's timeline has as many points as the profile carries
#    (mprof top --timeline counts them) and the chart drew each of them.
#
# Usage: report_browser.sh MPROF LIBMPROF_SO REPORT_TARGET ALLOC_SIZES
#  - a difference (mprof report --base): the grown site red, the shrunk
#    one blue (ALLOC_SIZES: cli_alloc_sizes, two sites whose sizes swap);
# MPROF_REPORT_SCREENSHOT=FILE.png also writes a screenshot (docs/).
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
export MPROF_LIB="$2"
TARGET=$3
unset MPROF_HEAP MPROF_CPU MPROF_HTTP MPROF_SIGNAL MPROF_INTERVAL MPROF_PEAK
need_cmd chromium
cd "$T" || exit 1

# One chromium at a time per test, with a profile directory of its own (a
# shared one would collide with another test's chromium).
browse() { # URL -> the DOM after the page's scripts ran, on stdout
    run_t chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/chrome" --virtual-time-budget=20000 --dump-dom "$1" 2>>"$T/chromium.err"
}
selftest() { # HTML NAME [PROFILE [TYPE]] -> the page's self-test JSON, in HTML.json
    browse "file://$T/$1#selftest=$2${3:+&profile=$3}${4:+&type=$4}" >"$1.dom"
    sed -n 's/.*<pre id="selftest"[^>]*>\([^<]*\)<\/pre>.*/\1/p' "$1.dom" >"$1.json"
    [ -s "$1.json" ] || fail "$1: no self-test result in the DOM chromium dumped: $(head -c 300 "$1.dom"; tail -5 "$T/chromium.err")"
}
# A field of the self-test JSON, by a Python expression on r.
field() { "$PYTHON" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

run_t "$MPROF" run --rate 4096 --heap heap.pb.gz --peak peak.pb.gz --cpu cpu.pb.gz --hz 200 -- \
    "$TARGET" 600 || fail "the target under mprof run failed"
for f in heap.pb.gz peak.pb.gz cpu.pb.gz; do
    [ -s "$f" ] || die "no $f written: $(ls)"
done

check "mprof report heap.pb.gz --peak peak.pb.gz" \
    "$MPROF" report heap.pb.gz --peak peak.pb.gz -o heap.html
check "mprof report cpu.pb.gz (default output name)" "$MPROF" report cpu.pb.gz
[ -s cpu.html ] || fail "mprof report cpu.pb.gz wrote no cpu.html: $(ls)"

for h in heap.html cpu.html; do
    check_no_grep "$h asks for nothing over http" "http://" "$h"
    check_no_grep "$h asks for nothing over https" "https://" "$h"
    check_no_grep "$h loads no script from elsewhere" "<script src" "$h"
    check_no_grep "$h links nothing" "<link" "$h"
    check_grep "$h forbids requests" "default-src 'none'" "$h"
done

# The heap at exit: report_hot_site holds it all.
selftest heap.html report_hot_site
if [ -s heap.html.json ]; then
    check_expr "heap: report_hot_site's frame drawn ($(field heap.html.json 'r["frame"]'))" \
        "$(field heap.html.json '1 if r["frame"] and r["frame"]["width"] > 50 else 0') == 1"
    check_expr "heap: its pixel is a frame's colour, not the white background" \
        "$(field heap.html.json '1 if r["frame"] and r["frame"]["pixel"][3] == 255 and r["frame"]["pixel"][:3] != [255,255,255] else 0') == 1"
    check_expr "heap: search finds it ($(field heap.html.json 'r["searchinfo"]'))" \
        "$(field heap.html.json 'r["search"]["frames"]') >= 1"
    check_expr "heap: and sums it to most of the heap" \
        "$(field heap.html.json 'r["search"]["share"]') > 0.9"
    check_expr "heap: the top table has rows" "$(field heap.html.json 'r["top_rows"]') >= 2"
    check_expr "heap: the default sample type is inuse_space, of 4" \
        "$(field heap.html.json '1 if len(r["types"]) == 4 else 0') == 1"
    check_expr "heap: drawn in under 5 s ($(field heap.html.json 'r["ready_ms"]') ms)" \
        "$(field heap.html.json 'r["ready_ms"]') < 5000"
fi

# The peak profile, the page's second: the hot site held 80% of the bytes
# then (4 KiB of every 5).
cp heap.html peak-view.html
selftest peak-view.html report_hot_site 1
if [ -s peak-view.html.json ]; then
    check_expr "peak: the page switched to the peak profile ($(field peak-view.html.json 'r["profile"]'))" \
        "$(field peak-view.html.json '1 if r["profile"] == "peak.pb.gz" else 0') == 1"
    check_expr "peak: report_hot_site's frame drawn" \
        "$(field peak-view.html.json '1 if r["frame"] and r["frame"]["width"] > 50 else 0') == 1"
    check_expr "peak: search sums it to about 80% ($(field peak-view.html.json 'r["searchinfo"]'))" \
        "$(field peak-view.html.json 'r["search"]["share"]') > 0.7 && $(field peak-view.html.json 'r["search"]["share"]') < 0.9"
fi

# Every other kind mprof run writes makes a page that draws (the target
# is single-threaded: the lock profiles have no samples, and draw empty).
run_t "$MPROF" run --rate 4096 --heap h2.pb.gz --lifetime lifetime.pb.gz --threadcreate tc.pb.gz \
    --block block.pb.gz --mutex mutex.pb.gz -- "$TARGET" 100 || fail "the target with every kind failed"
for kind in lifetime tc block mutex; do
    if [ ! -s $kind.pb.gz ]; then
        fail "no $kind.pb.gz written"
        continue
    fi
    check "mprof report $kind.pb.gz" "$MPROF" report $kind.pb.gz
    selftest $kind.html main
    check_expr "$kind: the page drew ($(head -c 200 $kind.html.json))" \
        "$(field $kind.html.json '1 if r["types"] and r["ready_ms"] >= 0 else 0') == 1"
done
# Its default type (short-lived blocks) has none here: freed_objects has.
selftest lifetime.html report_hot_site 0 freed_objects
check_expr "lifetime: freed_objects chosen, report_hot_site's frame drawn ($(field lifetime.html.json 'r["type"], r["frame"]'))" \
    "$(field lifetime.html.json '1 if r["type"] == "freed_objects" and r["frame"] and r["frame"]["width"] > 50 else 0') == 1"

# The timeline: as many points as the profile carries, each one drawn, in
# the heap profile (mprof run's default of 1024 points is not reached in
# 0.6 s at one point per 10 ms, so nothing was decimated).
"$MPROF" top --timeline heap.pb.gz >timeline.txt 2>&1 || fail "mprof top --timeline: $(cat timeline.txt)"
points=$(sed -n 's/^Timeline: \([0-9]*\) points over.*/\1/p' timeline.txt)
check_expr "the heap profile carries a timeline of 20 points or more ($(grep Timeline timeline.txt))" \
    "${points:-0} >= 20"
check_grep "mprof top --timeline draws a sparkline" "▁" timeline.txt
if [ -s heap.html.json ]; then
    check_expr "heap: the page's timeline has the profile's $points points" \
        "$(field heap.html.json 'r["timeline_points"]') == ${points:-0}"
    check_expr "heap: and the chart drew each of them" \
        "$(field heap.html.json 'r["timeline_svg_points"]') == ${points:-0}"
fi
# A week-long process keeps a bounded ring: 16 points here, decimated
# several times over the run and still spanning all of it, the peak kept.
MPROF_TIMELINE=16 run_t "$MPROF" run --rate 4096 --heap small.pb.gz -- "$TARGET" 600 ||
    fail "the target with MPROF_TIMELINE=16 failed"
"$MPROF" top --timeline small.pb.gz >small.txt 2>&1 || fail "mprof top --timeline small: $(cat small.txt)"
line=$(grep '^Timeline:' small.txt)
n16=$(echo "$line" | sed -n 's/^Timeline: \([0-9]*\) points over \([0-9.]*\)\(m*s\).*/\1/p')
span=$(echo "$line" | sed -n 's/^Timeline: [0-9]* points over \([0-9.]*\)ms.*/\1/p')
check_expr "MPROF_TIMELINE=16: at most 16 points, and more than 8 ($line)" \
    "${n16:-0} <= 16 && ${n16:-0} > 8"
check_expr "MPROF_TIMELINE=16: the points still span the whole run" "${span:-0} >= 550"
check_grep_re "MPROF_TIMELINE=16: the peak (about 19MB) survives the decimation" \
    'peak 1[5-9]\.[0-9]*MB\|peak 2[0-3]\.[0-9]*MB' small.txt
MPROF_TIMELINE=0 run_t "$MPROF" run --rate 4096 --heap none.pb.gz -- "$TARGET" 100 ||
    fail "the target with MPROF_TIMELINE=0 failed"
"$MPROF" top --timeline none.pb.gz >none.txt 2>&1
check_grep "MPROF_TIMELINE=0: no timeline" "Timeline: none" none.txt
# The timeline's comment keeps the profile a pprof profile.
if command -v "$GO" >/dev/null 2>&1; then
    check "go tool pprof reads the heap profile with its timeline" \
        "$GO" tool pprof -top heap.pb.gz
fi

# The CPU profile: the busy loops are main's.
selftest cpu.html main
if [ -s cpu.html.json ]; then
    check_expr "cpu: main's frame drawn ($(field cpu.html.json 'r["frame"]'))" \
        "$(field cpu.html.json '1 if r["frame"] and r["frame"]["width"] > 50 and r["frame"]["pixel"][:3] != [255,255,255] else 0') == 1"
    check_expr "cpu: search finds main with most of the time" \
        "$(field cpu.html.json 'r["search"]["share"]') > 0.5"
fi

if [ -n "${MPROF_REPORT_SCREENSHOT:-}" ]; then
    run_t chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/chrome" --virtual-time-budget=20000 --window-size=1200,1100 \
        --screenshot="$MPROF_REPORT_SCREENSHOT" "file://$T/heap.html" 2>>"$T/chromium.err"
fi
# A difference: grow_site 1000 -> 3000 blocks, shrink_site 3000 -> 1000.
ALLOC=$4
run_t "$MPROF" run --rate 1 --heap old.pb.gz -- "$ALLOC" 1000 3000 >/dev/null 2>&1
run_t "$MPROF" run --rate 1 --heap new.pb.gz -- "$ALLOC" 3000 1000 >/dev/null 2>&1
check "mprof report --base old.pb.gz new.pb.gz" "$MPROF" report --base old.pb.gz new.pb.gz -o diff.html
for site in grow_site shrink_site; do
    selftest diff.html $site "" inuse_space
    cp diff.html.json $site.json 2>/dev/null
done
if [ -s grow_site.json ] && [ -s shrink_site.json ]; then
    check_expr "diff: grow_site grew ($(field grow_site.json 'r["frame"] and r["frame"]["value"]'))" \
        "$(field grow_site.json '1 if r["frame"] and r["frame"]["value"] > 0 else 0') == 1"
    check_expr "diff: grow_site is red ($(field grow_site.json 'r["frame"] and r["frame"]["pixel"]'))" \
        "$(field grow_site.json '1 if r["frame"] and r["frame"]["pixel"][0] > r["frame"]["pixel"][2] + 40 else 0') == 1"
    check_expr "diff: shrink_site shrank ($(field shrink_site.json 'r["frame"] and r["frame"]["value"]'))" \
        "$(field shrink_site.json '1 if r["frame"] and r["frame"]["value"] < 0 else 0') == 1"
    check_expr "diff: shrink_site is blue ($(field shrink_site.json 'r["frame"] and r["frame"]["pixel"]'))" \
        "$(field shrink_site.json '1 if r["frame"] and r["frame"]["pixel"][2] > r["frame"]["pixel"][0] + 40 else 0') == 1"
else
    fail "diff: the page's self-test said nothing"
fi
finish
