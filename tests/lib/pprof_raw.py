#!/usr/bin/env python3
"""Queries on the text that `go tool pprof -raw PROFILE` prints.

The core and real-program tests read profiles with the real pprof; this
script only parses pprof's own dump of them (samples, locations with their
functions, mappings), so every fact checked is what pprof itself read.

  pprof_raw.py total RAW TYPE FUNC       sum of TYPE over samples whose stack
                                         has a frame in function FUNC
  pprof_raw.py funcs RAW                 every function name, one a line
  pprof_raw.py summary RAW               counts, for messages
  pprof_raw.py check-symbols RAW LIBSUBSTR ELF
        every location in a mapping whose path contains LIBSUBSTR and whose
        frame is named must lie inside a symbol of that name in ELF
        (.dynsym and .symtab as `nm` lists them, plus separate debug info
        under /usr/lib/debug when present): address - mapping start + file
        offset, converted to a virtual address through ELF's PT_LOAD
        segments, within [sym, sym + size).  Prints a line per problem and
        exits 1 if any; prints counts of named / unnamed locations.
"""
import os
import re
import signal
import struct
import subprocess
import sys

LINE_RE = re.compile(r'^(?P<name>.*) (?P<file>\S*):(?P<line>-?\d+) s=(?P<start>-?\d+)(?:\((?P<sys>.*)\))?$')
LOC_RE = re.compile(r'^\s*(\d+): (0x[0-9a-f]+) (?:M=(\d+) )?(?:\[F\] )?(.*)$')
MAP_RE = re.compile(r'^(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) ?(.*)$')


def parse(path):
    with open(path) as f:
        text = f.read().split('\n')
    types, samples, locs, maps = [], [], {}, {}
    section = None
    cur_loc = None
    for raw in text:
        if raw.startswith('Samples:'):
            section = 'samples'
            continue
        if raw.startswith('Locations'):
            section = 'locations'
            continue
        if raw.startswith('Mappings'):
            section = 'mappings'
            continue
        if section == 'samples':
            if not types and raw.strip():
                types = [t.split('/')[0] for t in raw.replace('[dflt]', '').split()]
                continue
            m = re.match(r'^\s*(-?\d+(?:\s+-?\d+)*):((?:\s+\d+)*)\s*$', raw)
            if m:
                values = [int(v) for v in m.group(1).split()]
                ids = [int(v) for v in m.group(2).split()]
                samples.append((values, ids))
        elif section == 'locations':
            m = LOC_RE.match(raw)
            if m:
                lid = int(m.group(1))
                cur_loc = {'addr': int(m.group(2), 16),
                           'map': int(m.group(3)) if m.group(3) else 0, 'lines': []}
                locs[lid] = cur_loc
                rest = m.group(4).strip()
            elif cur_loc is not None and raw.strip():
                rest = raw.strip()
            else:
                continue
            if rest:
                lm = LINE_RE.match(rest)
                if lm:
                    cur_loc['lines'].append(lm.group('name'))
                elif rest != '??':
                    cur_loc['lines'].append(rest)
        elif section == 'mappings':
            m = MAP_RE.match(raw)
            if m:
                rest = m.group(5).split()
                path = ''
                for tok in rest:
                    if not tok.startswith('['):
                        path = tok
                        break
                maps[int(m.group(1))] = {'start': int(m.group(2), 16), 'limit': int(m.group(3), 16),
                                         'offset': int(m.group(4), 16), 'path': path}
    return types, samples, locs, maps


def total(path, typ, func):
    types, samples, locs, _ = parse(path)
    if typ not in types:
        sys.exit('no sample type %s in %s' % (typ, types))
    k = types.index(typ)
    s = 0
    for values, ids in samples:
        if any(func in locs.get(i, {'lines': []})['lines'] for i in ids):
            s += values[k]
    print(s)


def load_segments(elf):
    with open(elf, 'rb') as f:
        hdr = f.read(64)
        if hdr[:4] != b'\x7fELF' or hdr[4] != 2:
            sys.exit('%s: not a 64-bit ELF file' % elf)
        phoff, = struct.unpack_from('<Q', hdr, 0x20)
        phentsize, phnum = struct.unpack_from('<HH', hdr, 0x36)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = \
            struct.unpack_from('<IIQQQQQQ', ph, i * phentsize)
        if p_type == 1:
            segs.append((p_offset, p_vaddr, p_filesz))
    return segs


def build_id(elf):
    try:
        out = subprocess.run(['readelf', '-n', elf], capture_output=True, text=True).stdout
    except OSError:
        return None
    m = re.search(r'Build ID: ([0-9a-f]+)', out)
    return m.group(1) if m else None


def nm_symbols(elf, dynamic):
    args = ['nm', '--defined-only', '-S'] + (['-D'] if dynamic else []) + [elf]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            value, size = int(parts[0], 16), int(parts[1], 16)
        except ValueError:
            continue
        name = parts[3].split('@')[0]
        syms.setdefault(name, []).append((value, size))
    return syms


def check_symbols(path, libsub, elf):
    _, _, locs, maps = parse(path)
    segs = load_segments(elf)
    syms = nm_symbols(elf, True)
    for name, v in nm_symbols(elf, False).items():
        syms.setdefault(name, []).extend(v)
    bid = build_id(elf)
    if bid:
        dbg = '/usr/lib/debug/.build-id/%s/%s.debug' % (bid[:2], bid[2:])
        if os.path.exists(dbg):
            for name, v in nm_symbols(dbg, False).items():
                syms.setdefault(name, []).extend(v)
    named = unnamed = bad = 0
    names = set()
    for lid, loc in sorted(locs.items()):
        m = maps.get(loc['map'])
        if m is None or libsub not in m['path']:
            continue
        if not loc['lines']:
            unnamed += 1
            continue
        named += 1
        fn = loc['lines'][-1]  # the function that physically contains the address
        names.add(fn)
        off = loc['addr'] - m['start'] + m['offset']
        vaddr = None
        for p_offset, p_vaddr, p_filesz in segs:
            if p_offset <= off < p_offset + p_filesz:
                vaddr = off - p_offset + p_vaddr
        if vaddr is None:
            print('location %d: 0x%x (file offset 0x%x) is in no PT_LOAD segment' % (lid, loc['addr'], off))
            bad += 1
            continue
        cands = syms.get(fn, [])
        if not any(v <= vaddr < v + max(s, 1) for v, s in cands):
            where = ', '.join('[0x%x, 0x%x)' % (v, v + s) for v, s in cands) or 'no such symbol'
            print('location %d: 0x%x (vaddr 0x%x) named %s, but %s: %s' % (
                lid, loc['addr'], vaddr, fn, 'symbol at' if cands else 'in ELF', where))
            bad += 1
    print('%s: %d named locations (%d functions), %d unnamed, %d misnamed' % (
        libsub, named, len(names), unnamed, bad))
    sys.exit(1 if bad else 0)


def summary(path):
    types, samples, locs, maps = parse(path)
    print('types=%s samples=%d locations=%d mappings=%d' % (','.join(types), len(samples),
                                                              len(locs), len(maps)))


def main(argv):
    if len(argv) >= 4 and argv[0] == 'total':
        total(argv[1], argv[2], argv[3])
    elif len(argv) == 2 and argv[0] == 'funcs':
        _, _, locs, _ = parse(argv[1])
        for name in sorted({n for l in locs.values() for n in l['lines']}):
            print(name)
    elif len(argv) == 2 and argv[0] == 'summary':
        summary(argv[1])
    elif len(argv) == 4 and argv[0] == 'check-symbols':
        check_symbols(argv[1], argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main(sys.argv[1:])
