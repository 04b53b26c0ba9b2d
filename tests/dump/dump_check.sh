#!/bin/bash
# Heap dumps end to end (mprof_write_heap_dump, /debug/pprof/heapdump,
# MPROF_HEAPDUMP; `mprof dump`): a program whose live heap is known, every
# allocation sampled.
#
#  - the dump lists exactly the 10 blocks of 4096 bytes the program keeps at
#    dump_keep_blocks, at the addresses it printed;
#  - `mprof dump --pprof` read by `go tool pprof -top` matches the heap
#    profile written at the same moment, value for value;
#  - the HTTP endpoint serves the same, and is on the index;
#  - corrupt, truncated or foreign files give "mprof: ..." and exit 1.
#
# usage: dump_check.sh LIBMPROF DUMP_TARGET MPROF_CLI
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
TARGET=$2
MPROF=$3
SRC=$(dirname "$0")/dump_target.c

KEEP_LINE=$(line_of "$SRC" dump_keep)

# ------------------------------------------------------------ API dump
timeout 120 "$TARGET" write "$T/heap.dump" "$T/heap.pb.gz" >"$T/write.out" 2>"$T/write.err"
check "dump_target write: exit 0" test $? -eq 0
PID=$(sed -n 's/^dump_target pid \([0-9]*\)$/\1/p' "$T/write.out")
sed -n 's/^kept \(0x[0-9a-f]*\)$/\1/p' "$T/write.out" | sort >"$T/kept"
check "the program kept 10 blocks" test "$(wc -l <"$T/kept")" -eq 10

"$MPROF" dump "$T/heap.dump" >"$T/dump.txt" 2>"$T/dump.err"
check "mprof dump: exit 0" test $? -eq 0
check "header: the writer's pid" grep -qE "^  process    $PID  /" "$T/dump.txt"
check "header: every allocation sampled" grep -q "^  sampling   every allocation (rate 1)" "$T/dump.txt"
check "memory statistics: VmRSS" grep -qE '^  process: VmRSS +[0-9.]+ [KMG]iB' "$T/dump.txt"
check "memory statistics: malloc in use" grep -qE '^  malloc: in use ' "$T/dump.txt"
# Live objects of the known site: exactly the printed addresses.
awk '/^Live sampled objects/ { on = 1; next } /^Mappings/ { on = 0 }
     on && $4 == "dump_keep_blocks" { print $1, $2 }' "$T/dump.txt" >"$T/listed"
sed 's/^0x0*/0x/' "$T/listed" | awk '{ print $1 }' | sort >"$T/listed.addr"
check "dump lists 10 live objects at dump_keep_blocks" test "$(wc -l <"$T/listed")" -eq 10
check "their addresses are those the program printed" cmp -s "$T/kept" "$T/listed.addr"
check "each of 4096 bytes" bash -c "awk '\$2 != 4096 { bad = 1 } END { exit bad }' '$T/listed'"
check "their bucket: in use 10 objects, 40960 bytes, at dump_target.c:$KEEP_LINE" \
    bash -c "grep -B6 -E 'dump_keep_blocks  /.*dump_target\.c:$KEEP_LINE$' '$T/dump.txt' |
             grep -qE '^  in use +10 objects +40960 bytes'"
check "no live object of the freed churn" bash -c "! awk '\$4 == \"dump_churn\"' '$T/dump.txt' | grep -q ."

# ------------------------------------------------------------ conversion
"$MPROF" dump --pprof "$T/conv.pb.gz" "$T/heap.dump" 2>"$T/conv.err"
check "mprof dump --pprof: exit 0" test $? -eq 0
for index in inuse_space inuse_objects alloc_space alloc_objects; do
    pprof -top -nodecount=1000 -sample_index=$index "$T/conv.pb.gz" >"$T/conv.$index" 2>&1
    pprof -top -nodecount=1000 -sample_index=$index "$T/heap.pb.gz" >"$T/heap.$index" 2>&1
    # The rows, from the column header on (the comment lines differ).
    sed -n '/flat  flat%/,$p' "$T/conv.$index" >"$T/conv.$index.rows"
    sed -n '/flat  flat%/,$p' "$T/heap.$index" >"$T/heap.$index.rows"
    check "go tool pprof -top -sample_index=$index: converted dump = heap profile" \
        bash -c "test -s '$T/heap.$index.rows' && cmp -s '$T/conv.$index.rows' '$T/heap.$index.rows'"
    grep -q "Showing nodes accounting for" "$T/conv.$index" ||
        { echo "--- conv.$index"; cat "$T/conv.$index"; }
done
check "converted profile: dump_keep_blocks holds 40kB" \
    grep -qE '^ +40kB .* dump_keep_blocks$' "$T/conv.inuse_space.rows"
check "converted profile: default type inuse_space" grep -q '^Type: inuse_space' "$T/conv.inuse_space"
check "pprof printed no errors" bash -c "! grep -qi 'error\|failed' '$T/pprof.err'"
"$MPROF" dump --pprof - "$T/heap.dump" >"$T/stdout.pb.gz" 2>/dev/null
check "--pprof - writes to standard output" cmp -s "$T/stdout.pb.gz" "$T/conv.pb.gz"

# ------------------------------------------------------------ bad input
bad() { # bad DESCRIPTION FILE: exit 1 and one "mprof: FILE: ..." line
    "$MPROF" dump "$2" >"$T/bad.out" 2>"$T/bad.err"
    local status=$?
    check "$1: exit 1 ($status), 'mprof:' message" \
        bash -c "test $status -eq 1 && grep -q '^mprof: ' '$T/bad.err' && test ! -s '$T/bad.out'"
}
SIZE=$(stat -c %s "$T/heap.dump")
head -c $((SIZE / 2)) "$T/heap.dump" >"$T/half.dump"
bad "truncated to half" "$T/half.dump"
head -c $((SIZE - 1)) "$T/heap.dump" >"$T/short.dump"
bad "one byte short" "$T/short.dump"
grep -q "truncated" "$T/bad.err" || fail "truncation is called truncation: $(cat "$T/bad.err")"
head -c 4096 /dev/urandom >"$T/random.dump"
bad "random bytes" "$T/random.dump"
: >"$T/empty.dump"
bad "empty file" "$T/empty.dump"
bad "a pprof profile instead of a dump" "$T/heap.pb.gz"
bad "no such file" "$T/nonexistent.dump"
{ printf 'MPROFDMP\001'; head -c 2000 /dev/urandom; } >"$T/garbage.dump"
bad "the magic, then garbage" "$T/garbage.dump"
"$MPROF" dump >/dev/null 2>&1
check "no file: usage error, exit 2" test $? -eq 2
"$MPROF" dump --pprof >/dev/null 2>&1
check "--pprof without a file: exit 2" test $? -eq 2

# ------------------------------------------------------------ at exit
MPROF_HEAPDUMP="$T/exit.%p.dump" timeout 120 "$TARGET" write "$T/x.dump" "$T/x.pb.gz" \
    >"$T/exit.out" 2>"$T/exit.err"
XPID=$(sed -n 's/^dump_target pid \([0-9]*\)$/\1/p' "$T/exit.out")
check "MPROF_HEAPDUMP: written at exit, announced" \
    bash -c "test -s '$T/exit.$XPID.dump' && grep -q '^mprof: wrote heap dump to $T/exit.$XPID.dump' '$T/exit.err'"
"$MPROF" dump "$T/exit.$XPID.dump" >"$T/exit.txt" 2>&1
check "MPROF_HEAPDUMP: the dump reads back" test $? -eq 0

# ------------------------------------------------------------ HTTP
command -v curl >/dev/null || die "curl not found (run 'make deps')"
MPROF_HTTP=127.0.0.1:0 "$TARGET" serve "$T/stop" >"$T/serve.out" 2>"$T/serve.err" &
SPID=$!
for _ in $(seq 1 200); do
    grep -q '^serving' "$T/serve.out" 2>/dev/null && break
    sleep 0.05
done
PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/serve.err" | head -1)
if [ -z "$PORT" ]; then
    fail "the server did not start: $(cat "$T/serve.err")"
else
    BASE=http://127.0.0.1:$PORT/debug/pprof
    curl -s -o "$T/index.html" "$BASE/"
    check "index lists heapdump" grep -q "heapdump" "$T/index.html"
    curl -s -D "$T/served.h" -o "$T/served.dump" "$BASE/heapdump"
    check "GET /debug/pprof/heapdump: 200, binary attachment" \
        bash -c "grep -q '^HTTP/1.1 200' '$T/served.h' && grep -qi 'Content-Disposition: attachment; filename=\"heapdump\"' '$T/served.h'"
    sed -n 's/^kept \(0x[0-9a-f]*\)$/\1/p' "$T/serve.out" | sort >"$T/served.kept"
    "$MPROF" dump "$T/served.dump" >"$T/served.txt" 2>&1
    check "served dump reads back" test $? -eq 0
    awk '/^Live sampled objects/ { on = 1; next } /^Mappings/ { on = 0 }
         on && $4 == "dump_keep_blocks" { print $1 }' "$T/served.txt" |
        sed 's/^0x0*/0x/' | sort >"$T/served.addr"
    check "served dump lists the 10 kept blocks" cmp -s "$T/served.kept" "$T/served.addr"
    curl -s -D "$T/summary.h" -o "$T/summary.txt" "$BASE/heapdump?debug=1"
    check "?debug=1: a text summary" \
        bash -c "grep -qi '^Content-Type: text/plain' '$T/summary.h' && grep -q '^profiler: [0-9]* buckets, [0-9]* live sampled blocks' '$T/summary.txt'"
fi
touch "$T/stop"
wait $SPID
check "the served program exits 0" test $? -eq 0

finish
