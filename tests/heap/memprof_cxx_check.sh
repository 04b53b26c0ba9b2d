#!/bin/bash
# The C++ memory-profiler test: BINARY LIBMPROF SOURCE.  Run unmodified under
# LD_PRELOAD at rate 1; the binary is deleted before pprof reads the profile.
. "$(dirname "$0")/../lib/testlib.sh"
BIN=$1 LIB=$2 SRC=$3
need_go
cp "$BIN" "$T/target"
cd "$T"
OUT=$(LD_PRELOAD=$LIB MPROF_RATE=1 MPROF_HEAP="$T/heap.pb.gz" ./target 2>"$T/stderr") ||
    { echo "FAIL: target exited $?"; cat "$T/stderr"; exit 1; }
[ "$OUT" = "100000 16" ] || fail "program output changed under the profiler: '$OUT'"
rm -f "$T/target"
F=$(basename "$SRC")
LNEW=$(line_of "$SRC" new) LARR=$(line_of "$SRC" newarray) LVEC=$(line_of "$SRC" vector)
LKEPT=$(line_of "$SRC" kept)

ALLOC=$(pprof -text -lines -sample_index=alloc_space -unit=B -nodefraction=0 "$T/heap.pb.gz") ||
    { echo "FAIL: pprof: $(cat "$T/pprof.err")"; exit 1; }
# new and new[]: the flat bytes are at the user's line itself.
grep -qE "^ *64000B .* make_records(\(\))? .*$F:$LNEW\b" <<<"$ALLOC" || fail "new Record not charged to $F:$LNEW"
grep -qE "^ *409600B .* make_arrays(\(\))? .*$F:$LARR\b" <<<"$ALLOC" || fail "new[] not charged to $F:$LARR"
# Container growth: the bytes are allocated inside std::vector's code (an
# inlined or out-of-line template), and reach the user's line as cum.
grep -qE " 1048572B .* grow_vector(\(\))? .*$F:$LVEC\b" <<<"$ALLOC" || fail "vector growth not charged (cum) to $F:$LVEC"
# No allocator or profiler frame anywhere in the report.
grep -qE "operator new|\bmalloc\b|\bmprof_|sample_alloc" <<<"$ALLOC" && fail "allocator or profiler frames in the report"

INUSE=$(pprof -text -lines -sample_index=inuse_space -unit=B -nodefraction=0 "$T/heap.pb.gz")
grep -qE "^ *1024B .* keep_records(\(\))? .*$F:$LKEPT\b" <<<"$INUSE" || fail "kept records not in use at $F:$LKEPT"
grep -qE "make_records|make_arrays|grow_vector" <<<"$INUSE" && fail "freed allocations shown in use"

# C++ names: demangled in the function name, mangled in system_name.
RAW=$(pprof -raw "$T/heap.pb.gz")
grep -q "_Z11grow_vectorv\|grow_vector" <<<"$RAW" || fail "grow_vector missing from the raw profile"

[ "$FAILURES" -ne 0 ] && { echo "--- alloc_space:"; echo "$ALLOC"; echo "--- inuse_space:"; echo "$INUSE"; }
finish
