#!/bin/sh
# mprof report on a call-tree bomb: a location of 1,000 inlined lines
# referenced 50 times by each of 2,000 samples under distinct roots, a
# file of 27 kB whose call tree would be 100 million nodes (about 9 GB).
# The page writer must refuse it within the profile's memory budget, in
# bounded time and memory (timeout, ulimit -v), with one message saying
# what to do; mprof top, whose graph is by function, reads it.
#
# Usage: report_hostile.sh MPROF
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
cd "$T" || exit 1

"$PYTHON" - tree_bomb.pb.gz <<'PY' || die "cannot write the bomb"
import gzip, sys
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)
def f(n, v): return varint(n << 3) + varint(v)
def b(n, x): return varint((n << 3) | 2) + varint(len(x)) + x
strings = ["", "space", "bytes", "inlined"] + ["root%d" % i for i in range(2000)]
body = b(1, f(1, 1) + f(2, 2))
body += b(5, f(1, 1) + f(2, 3))  # function 1: "inlined"
for i in range(2000):
    body += b(5, f(1, i + 2) + f(2, i + 4))
# location 1: 1,000 lines of "inlined"; locations 2..2001: one root each
body += b(4, f(1, 1) + b"".join(b(4, f(1, 1) + f(2, k + 1)) for k in range(1000)))
for i in range(2000):
    body += b(4, f(1, i + 2) + b(4, f(1, i + 2)))
for i in range(2000):
    ids = [1] * 50 + [i + 2]  # leaf first: the root is the last
    body += b(2, b(1, b"".join(varint(x) for x in ids)) + b(2, varint(1)))
table = b"".join(b(6, s.encode()) for s in strings)
with gzip.open(sys.argv[1], "wb") as out:
    out.write(table + body)
PY

sh -c 'ulimit -v 800000; exec timeout 30 "$0" report -o bomb.html tree_bomb.pb.gz' "$MPROF" \
    >out 2>err
status=$?
check "mprof report refuses the tree bomb: exit 1 within 30 s and 800 MB (status $status)" \
    test "$status" = 1
check "one line on stderr" test "$(wc -l <err)" = 1
check_grep "it says the tree is over the budget, and what to do" "read it with go tool pprof" err
check "no page left behind" test ! -e bomb.html
check "no temporary file left behind" sh -c '! ls bomb.html.tmp.* 2>/dev/null'
sh -c 'ulimit -v 800000; exec timeout 30 "$0" top tree_bomb.pb.gz' "$MPROF" >top.out 2>top.err
check "mprof top reads it (status $?)" grep -q "inlined" top.out
finish
