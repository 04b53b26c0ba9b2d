#!/usr/bin/env python3
"""A synthetic heap profile of N samples for bench/report_bench.sh.

Usage: report_profile.py N OUT.pb.gz [unique|typical]

Stacks look like a real program's: a few roots, a call tree of 2,000
functions in 100 files, depths 6 to 30, callers shared the way real stacks
share them (each sample walks down a fixed random tree, branching at
random).  unique (the default, the worst case for the report): every
sample walks its own stack, so that samples share only short prefixes
and 100,000 samples make over a million call tree nodes.  typical: the
samples are drawn from 5,000 stacks, a few of them often (Zipf-like), as
in a real profile where a few sites dominate.  Four
heap sample types, and a 1,024-point memory timeline in the comment the
library writes (docs/report.md).  Deterministic: the same N gives the same
file.
"""
import gzip
import random
import sys


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, b):
    return varint((n << 3) | 2) + varint(len(b)) + b


def packed(n, vals):
    return field_bytes(n, b"".join(varint(v) for v in vals))


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "unique"
    rng = random.Random(15)
    strings = [""]
    index = {"": 0}

    def s(x):
        if x not in index:
            index[x] = len(strings)
            strings.append(x)
        return index[x]

    nfunc = 2000
    body = bytearray()
    for t, u in (("alloc_objects", "count"), ("alloc_space", "bytes"),
                 ("inuse_objects", "count"), ("inuse_space", "bytes")):
        body += field_bytes(1, field_varint(1, s(t)) + field_varint(2, s(u)))
    # A tree of call sites: each function calls a few others.
    callees = [[rng.randrange(1, nfunc) for _ in range(rng.randint(1, 6))] for _ in range(nfunc)]
    locs = {}  # (function, caller line) -> location id

    def loc(f, line):
        key = (f, line)
        if key not in locs:
            locs[key] = len(locs) + 1
        return locs[key]

    def walk():
        depth = rng.randint(6, 30)
        f, stack = 0, []
        for _ in range(depth):
            stack.append(loc(f, 10 + rng.randrange(3)))
            f = rng.choice(callees[f]) if rng.random() < 0.9 else rng.randrange(1, nfunc)
        stack.append(loc(f, 5))
        return stack

    pool = [walk() for _ in range(5000)] if mode == "typical" else None
    for i in range(n):
        stack = pool[min(int(rng.paretovariate(1.0)) - 1, 4999)] if pool else walk()
        size = 1 << rng.randint(4, 16)
        objs = rng.randint(1, 50)
        live = objs if rng.random() < 0.3 else 0
        body += field_bytes(2, packed(1, reversed(stack)) +
                            packed(2, [objs, objs * size, live, live * size]))
    body += field_bytes(3, field_varint(1, 1) + field_varint(2, 0x400000) +
                        field_varint(3, 0x800000) + field_varint(5, s("/usr/bin/synthetic")) +
                        field_varint(7, 1) + field_varint(8, 1) + field_varint(9, 1))
    for (f, line), lid in locs.items():
        body += field_bytes(4, field_varint(1, lid) + field_varint(2, 1) +
                            field_varint(3, 0x400000 + lid * 16) +
                            field_bytes(4, field_varint(1, f + 1) + field_varint(2, line)))
    for f in range(nfunc):
        name = s("ns%d::Class%d::method_%d" % (f % 17, f % 101, f))
        body += field_bytes(5, field_varint(1, f + 1) + field_varint(2, name) +
                            field_varint(3, name) +
                            field_varint(4, s("src/module%d/file%d.cc" % (f % 10, f % 100))) +
                            field_varint(5, 1))
    pts, inuse, alloc = [], 0, 0
    for i in range(1024):
        inuse = max(0, inuse + rng.randint(-1 << 20, 3 << 19))
        alloc += rng.randint(1 << 20, 4 << 20)
        pts.append("%d,%d,%d,%d" % (i * 10, inuse, inuse // 64, alloc))
    comments = ["mprof synthetic heap profile, sampling rate 524288 bytes",
                "#mprof-timeline v1 t0=1700000000000000000 every=10000000 n=1024 " + " ".join(pts)]
    body += field_varint(9, 1700000000000000000) + field_varint(10, 10240000000)
    body += field_bytes(11, field_varint(1, s("space")) + field_varint(2, s("bytes")))
    body += field_varint(12, 524288)
    for c in comments:
        body += field_varint(13, s(c))
    body += field_varint(14, s("inuse_space"))
    table = b"".join(field_bytes(6, x.encode()) for x in strings)
    with gzip.open(out, "wb") as f:
        f.write(table + bytes(body))


main()
