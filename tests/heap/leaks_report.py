#!/usr/bin/env python3
"""Reads a leak report (LeakSanitizer's or mprof's, same shape) and prints
one line per leaked site and kind, sorted: "KIND FUNCTION BYTES OBJECTS".

The site is the function of the first frame that is not the allocator:
LeakSanitizer's frame #0 is its interceptor (malloc, calloc, operator new),
mprof drops its own frames and the allocator's.  The two tools group leaks
differently (LeakSanitizer's fast unwinder stops early in code without
frame pointers, merging stacks that differ further out), so bytes and
objects are summed per site and kind, which both must agree on.
Usage: leaks_report.py REPORT"""
import re
import sys

HEAD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")
FRAME = re.compile(r"^\s+#(\d+) 0x[0-9a-f]+ in (.+?)(?: \(|\s+/|\s+\.\./|\s+\./|$)")
ALLOC = re.compile(r"(__interceptor_|^malloc$|^calloc$|^realloc$|^operator new|"
                   r"^__libc_malloc|^__sanitizer)")


def sites(path):
    out = {}
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            m = HEAD.match(line)
            if m:
                cur = [m.group(1).lower(), int(m.group(2)), int(m.group(3)), None]
                continue
            if cur is None:
                continue
            m = FRAME.match(line)
            if m is None:
                if line.strip() == "":
                    cur = None
                continue
            fn = m.group(2).strip()
            if cur[3] is None and not ALLOC.search(fn):
                cur[3] = fn
                key = (cur[0], fn)
                b, o = out.get(key, (0, 0))
                out[key] = (b + cur[1], o + cur[2])
    return out


def main():
    for (kind, fn), (b, o) in sorted(sites(sys.argv[1]).items()):
        print(f"{kind} {fn} {b} {o}")


if __name__ == "__main__":
    main()
