#!/bin/bash
# TestMemoryProfiler, ported: MODE api|preload, BINARY, LIBMPROF, SOURCE.
# The binary is copied to a temp dir, run, and deleted before pprof reads
# the profile: the profile must stand alone (self-symbolized).
. "$(dirname "$0")/../lib/testlib.sh"
MODE=$1 BIN=$2 LIB=$3 SRC=$4
need_go
cp "$BIN" "$T/target"
cd "$T"
case $MODE in
api) ./target "$T/heap.pb.gz" || { echo "FAIL: target exited $?"; exit 1; } ;;
preload)
    LD_PRELOAD=$LIB MPROF_RATE=1 MPROF_HEAP="$T/heap.%p.pb.gz" ./target 2>"$T/stderr" ||
        { echo "FAIL: target exited $?"; cat "$T/stderr"; exit 1; }
    mv "$T"/heap.*.pb.gz "$T/heap.pb.gz" 2>/dev/null ||
        { echo "FAIL: no profile written"; cat "$T/stderr"; exit 1; }
    # Announced once, with the path and how to view it.
    [ "$(grep -c 'mprof: wrote heap profile to' "$T/stderr")" = 1 ] || fail "exit announcement missing or repeated: $(cat "$T/stderr")"
    grep -q 'go tool pprof' "$T/stderr" || fail "announcement does not say how to view the profile"
    ;;
esac
rm -f "$T/target"
ls "$T"/*.tmp.* >/dev/null 2>&1 && fail "temporary file left behind"

L1=$(line_of "$SRC" transient1m) L2=$(line_of "$SRC" transient2m) L3=$(line_of "$SRC" persistent1k)
F=$(basename "$SRC")

# check OUTPUT "regex..." : each regex matches exactly one line
expect() {
    local out=$1; shift
    for re in "$@"; do
        local n
        n=$(grep -cE "$re" <<<"$out")
        [ "$n" = 1 ] || fail "[$MODE] expected exactly one line matching '$re', got $n"
    done
}
reject() {
    local out=$1; shift
    for re in "$@"; do
        grep -qE "$re" <<<"$out" && fail "[$MODE] line matching '$re' must not appear"
    done
}

ALLOC=$(pprof -text -lines -sample_index=alloc_space -unit=B -nodefraction=0 "$T/heap.pb.gz") ||
    { echo "FAIL: pprof failed: $(cat "$T/pprof.err")"; exit 1; }
expect "$ALLOC" \
    "^ *1048576B .* allocate_transient_1m .*$F:$L1\b" \
    "^ *2097152B .* allocate_transient_2m .*$F:$L2\b" \
    "^ *1024B .* allocate_persistent_1k .*$F:$L3\b"
reject "$ALLOC" "\bmalloc\b" " mprof_" "sample_alloc"

INUSE=$(pprof -text -lines -sample_index=inuse_space -unit=B -nodefraction=0 "$T/heap.pb.gz") ||
    { echo "FAIL: pprof failed: $(cat "$T/pprof.err")"; exit 1; }
expect "$INUSE" "^ *1024B .* allocate_persistent_1k .*$F:$L3\b"
reject "$INUSE" "allocate_transient_1m" "allocate_transient_2m"

OBJ=$(pprof -text -lines -sample_index=alloc_objects -nodefraction=0 "$T/heap.pb.gz")
expect "$OBJ" "^ *1024 .* allocate_transient_1m " "^ *32 .* allocate_persistent_1k "

# The raw profile: four sample types, period type space/bytes, period 1,
# a numeric "bytes" label, mappings flagged as symbolized.
RAW=$(pprof -raw "$T/heap.pb.gz")
grep -q "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" <<<"$RAW" || fail "sample types"
grep -qE "PeriodType: space bytes" <<<"$RAW" || fail "period type"
grep -qE "^Period: 1$" <<<"$RAW" || fail "period = rate 1"
grep -qE "bytes:\[1024 bytes\]" <<<"$RAW" || fail "bytes label"

[ "$FAILURES" -ne 0 ] && { echo "--- alloc_space:"; echo "$ALLOC"; echo "--- inuse_space:"; echo "$INUSE"; }
finish
