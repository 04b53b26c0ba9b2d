#!/bin/sh
# Every profile kind mprof writes, read by three readers that share no code
# with mprof's encoder, and mostly not with each other:
#   - google/pprof's profile.Parse and CheckValid (pprof_check.go, built
#     here offline against Debian's golang-github-google-pprof-dev),
#   - Datadog's pprof-format decoder in JavaScript (pprof_format_check.js,
#     vendored), with checks of its own and an encode/decode round trip,
#   - `go tool pprof -raw`, the reader users run.
# The first two print a summary of each profile (sample types, default,
# period, sample count, value sums, table sizes) and must agree exactly.
#
# What is read: a real program (readers_target.c) run by `mprof run` with
# every file option of the options table (so a new one is covered without
# editing this script), and serving /debug/pprof/ meanwhile; every kind
# listed on the index page (so every kind registered in src/profiles/) is
# fetched as it is now and, where it has one, as a ?seconds= delta; the
# heap dumps are converted with `mprof dump --pprof`.  Every kind must give
# a profile with samples, and no stack (there, in the text forms and in the
# trace) may show mprof's thread trampoline, mprof_thread_start.
#
# Usage: readers_check.sh MPROF_CLI READERS_TARGET
. "$(dirname "$0")/../lib/testlib.sh"
need_go
need_cmd node
need_cmd curl
CLI=$1
TARGET=$2
HERE=$(cd "$(dirname "$0")" && pwd)

# -------------------------------------------------------- the Go reader
GOPPROF=/usr/share/gocode/src/github.com/google/pprof/profile
[ -d "$GOPPROF" ] || die "$GOPPROF missing: make deps installs golang-github-google-pprof-dev"
mkdir -p "$T/gosrc"
cp "$HERE/pprof_check.go" "$T/gosrc/"
# GOPATH mode against the Debian package: no module, no download.
if ! (cd "$T/gosrc" && GO111MODULE=off GOPATH=/usr/share/gocode "$GO" build -o "$T/pprof_check" .) \
    >"$T/gobuild.err" 2>&1; then
    die "cannot build pprof_check.go offline: $(cat "$T/gobuild.err")"
fi

# -------------------------------------------------------- the profiles
mkdir -p "$T/exit" "$T/http" "$T/conv"
# Every FILE option of `mprof run`, from the options table.
set --
for flag in $("$CLI" help --markdown run | sed -n 's/^| `\(--[a-z-]*\) FILE` .*/\1/p'); do
    set -- "$@" "$flag" "$T/exit/${flag#--}.out"
done
[ $# -ge 16 ] || die "mprof help --markdown run lists only $(($# / 2)) file options"
echo "file options: $*"
# start NAME MPROF_RUN_OPTIONS...: the target under `mprof run`, serving;
# sets PID and BASE (its /debug/pprof URL).  stop NAME: stops it, checks it
# exited 0.
start() {
    _n=$1
    shift
    "$CLI" run "$@" --http 127.0.0.1:0 -- "$TARGET" --seconds 120 --stop-file "$T/$_n.stop" \
        >"$T/$_n.out" 2>"$T/$_n.err" &
    PID=$!
    kill_at_exit "$PID"
    for _ in $(seq 1 200); do
        grep -q '^ready' "$T/$_n.out" 2>/dev/null && break
        sleep 0.05
    done
    _port=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/$_n.err" | head -1)
    [ -n "$_port" ] || die "$_n: the target is not serving /debug/pprof: $(cat "$T/$_n.err")"
    BASE="http://127.0.0.1:$_port/debug/pprof"
}
stop() {
    touch "$T/$1.stop"
    wait "$PID"
    _st=$?
    [ "$_st" = 0 ] && pass "$1: the target exited 0" || fail "$1: the target exited $_st: $(cat "$T/$1.err")"
}

# --leaks: the target leaks on purpose, and the full check (rate 1) finds
# it whatever else runs (the sampled check cannot see past the trace's
# copies of every address: docs/leaks.md); --leaks-exitcode 0: it must
# still exit 0.
start all "$@" --block-rate 1 --mutex-fraction 1 --hz 250 --leaks --leaks-exitcode 0
curl -s --max-time 20 "$BASE/" >"$T/index.html" || die "no index page"
KINDS=$(sed -n "s/.*<a href='\([a-z0-9_.-]*\)?debug=1'>.*/\1/p" "$T/index.html")
echo "kinds on the index page:" $KINDS
for k in heap allocs peak lifetime profile block mutex threadcreate goroutine threads heapdump cmdline; do
    echo "$KINDS" | grep -qx "$k" || fail "the index page does not list $k"
done
for k in $KINDS; do
    case $k in
    cmdline) # text by design (Go's too)
        curl -s --max-time 20 "$BASE/cmdline" | grep -q readers_target &&
            pass "cmdline names the program" || fail "cmdline"
        continue ;;
    profile) # a window only, taken below without --cpu; --cpu holds it here
        code=$(curl -s --max-time 30 -o "$T/busy.txt" -w '%{http_code}' "$BASE/profile?seconds=1")
        if [ "$code" = 409 ] && grep -q "^Could not enable CPU profiling: cpu profiling already in use" "$T/busy.txt"; then
            pass "a second CPU profile is refused in Go's words"
        else fail "a second CPU profile: $code $(cat "$T/busy.txt")"; fi
        continue ;;
    esac
    curl -s -f --max-time 30 -o "$T/http/$k.out" "$BASE/$k" || fail "GET $k"
    # The delta form, where the kind has one (a 4xx otherwise).
    code=$(curl -s --max-time 30 -o "$T/http/$k.delta.out" -w '%{http_code}' "$BASE/$k?seconds=1")
    [ "$code" = 200 ] || rm -f "$T/http/$k.delta.out"
done
for form in goroutine?debug=1 goroutine?debug=2 heap?debug=1; do
    curl -s -f --max-time 30 -o "$T/text.$form" "$BASE/$form" || fail "GET $form"
done
ls "$T"/http/*.delta.out >/dev/null 2>&1 && pass "some kinds have a ?seconds= delta" ||
    fail "no kind served a ?seconds= delta"

stop all
# The CPU profile over HTTP, with no --cpu holding the profiler.
mkdir -p "$T/cpu_run"
cd "$T/cpu_run" || die "cd $T/cpu_run"
start cpu_run --hz 250
curl -s -f --max-time 30 -o "$T/http/profile.out" "$BASE/profile?seconds=1" ||
    fail "GET profile?seconds=1"
stop cpu_run
cd "$T" || die "cd $T"
for f in "$T"/exit/*.out; do
    [ -s "$f" ] && pass "exit file $(basename "$f") written" || fail "exit file $f missing"
done

# Heap dumps are their own format: converted, they are pprof too.
for d in "$T/exit/heapdump.out" "$T/http/heapdump.out"; do
    name=$(basename "$(dirname "$d")")
    if "$CLI" dump --pprof "$T/conv/$name-heapdump.pb.gz" "$d" >"$T/conv/$name.err" 2>&1; then
        pass "mprof dump --pprof $name heap dump"
    else fail "mprof dump --pprof $d: $(cat "$T/conv/$name.err")"; fi
done
rm -f "$T/exit/heapdump.out" "$T/http/heapdump.out"
# The trace is text by design.
if [ -f "$T/exit/trace.out" ]; then
    grep -q readers_allocate "$T/exit/trace.out" && pass "the trace names the allocating function" ||
        fail "the trace lacks readers_allocate"
    check_no_grep "the trace leaves mprof's thread trampoline out" mprof_thread_start "$T/exit/trace.out"
    rm -f "$T/exit/trace.out"
fi

# -------------------------------------------------------- the readers
FILES=$(ls "$T"/exit/*.out "$T"/http/*.out "$T"/conv/*.pb.gz)
n=$(echo "$FILES" | wc -l)
check_expr "at least 20 profiles to read ($n)" "$n >= 20"
# shellcheck disable=SC2086
"$T/pprof_check" $FILES >"$T/go.txt"
go_status=$?
# shellcheck disable=SC2086
node "$HERE/pprof_format_check.js" $FILES >"$T/js.txt" 2>&1
js_status=$?
for f in $FILES; do
    short=${f#"$T"/}
    g=$(grep -F "$f" "$T/go.txt")
    j=$(grep -F "$f" "$T/js.txt")
    case $g in "$f "*) pass "google/pprof Parse+CheckValid: $short" ;;
        *) fail "google/pprof: ${g:-no output for $f}" ;; esac
    case $j in "$f "*) pass "pprof-format decode: $short" ;;
        *) fail "pprof-format: ${j:-no output for $f}" ;; esac
    [ "$g" = "$j" ] && pass "the two readers agree on $short" ||
        fail "the readers disagree on $short:
    go: $g
    js: $j"
    case $g in *" samples=0 "*) fail "$short has no samples: $g" ;; esac
    pprof_raw "$f" "$T/raw.txt" && pass "go tool pprof -raw: $short" || fail "go tool pprof -raw $short"
    # mprof's thread trampoline is left out, as Go leaves out runtime.goexit.
    grep -q "mprof_thread_start" "$T/raw.txt" && fail "$short shows mprof_thread_start"
    case $short in exit/cpu.out | http/goroutine.out)
        grep -q "readers_worker" "$T/raw.txt" && grep -q "start_thread" "$T/raw.txt" &&
            pass "$short: worker stacks end with readers_worker, start_thread" ||
            fail "$short lacks readers_worker or start_thread" ;;
    esac
done
for form in goroutine?debug=1 goroutine?debug=2 heap?debug=1; do
    if grep -q "mprof_thread_start" "$T/text.$form" || ! grep -q "readers_worker" "$T/text.$form"; then
        fail "$form: mprof_thread_start shown, or readers_worker missing"
    else pass "$form: the trampoline is left out"; fi
done
[ "$go_status" = 0 ] || fail "pprof_check exited $go_status"
[ "$js_status" = 0 ] || fail "pprof_format_check.js exited $js_status: $(tail -5 "$T/js.txt")"
finish
