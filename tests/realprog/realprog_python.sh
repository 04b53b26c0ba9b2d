#!/bin/sh
# Debian's python3 (a program nobody here wrote) building a big dict and
# list, plain, under `mprof run` and under LD_PRELOAD: identical output and
# exit status (the script exits 3 on purpose), a valid profile, the
# interpreter's exported entry points by name, and every named location in
# the python3 executable and in libc inside a symbol of that name.
# Usage: realprog_python.sh LIBMPROF MPROF_CLI
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
CLI=$2
# Debian's interpreter, not a version manager's shim found first in PATH.
PY=${MPROF_REALPROG_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || { echo "FAIL: $PY not found (make deps installs python3)"; exit 1; }
PYREAL=$(readlink -f "$PY")
LIBC=$(ldd "$PYREAL" | awk '/libc.so.6/ {print $3}')
LIBC=$(readlink -f "$LIBC")

cat >"$T/big.py" <<'PYEOF'
import hashlib, json, sys
d = {}
for i in range(200000):
    d['key%d' % i] = [i, str(i) * 3, (i, i * 2)]
items = sorted(d.items(), key=lambda kv: (kv[1][0] % 1000, kv[0]))
print(len(d), len(items), hashlib.sha256(json.dumps(items[:2000]).encode()).hexdigest())
big = [bytearray(1000) for _ in range(20000)]
print(sum(len(b) for b in big))
words = ' '.join(str(i) for i in range(100000)).split()
print(len(set(words)), words[-1])
print('to stderr', file=sys.stderr)
sys.exit(3)
PYEOF

run_t env -u LD_PRELOAD "$PY" "$T/big.py" >"$T/plain.out" 2>"$T/plain.err"
plain_rc=$?
[ "$plain_rc" = 3 ] || fail "plain run: exit status $plain_rc, want 3"

check_run() { # NAME RC
    name=$1; rc=$2
    [ "$rc" = "$plain_rc" ] || fail "$name: exit status $rc, without mprof $plain_rc"
    cmp -s "$T/plain.out" "$T/$name.out" || { fail "$name: output differs"; diff "$T/plain.out" "$T/$name.out" | head; }
    grep -v '^mprof: wrote heap profile' "$T/$name.err" | cmp -s "$T/plain.err" - || fail "$name: stderr differs"
    f="$T/$name.pb.gz"
    [ -s "$f" ] || { fail "$name: no profile"; return; }
    pprof_raw "$f" "$f.raw" || { fail "$name: go tool pprof -raw rejects the profile"; return; }
    pprof -top -cum -nodefraction=0 -nodecount=100000 -sample_index=alloc_space "$f" >"$f.top" 2>/dev/null
    for fn in Py_BytesMain Py_RunMain PyEval_EvalCode; do
        grep -q " $fn\$" "$f.top" || fail "$name: $fn not shown by name"
    done
    for obj in "$PYREAL" "$LIBC"; do
        if out=$(pyq check-symbols "$f.raw" "$obj" "$obj"); then
            pass "$name: $(echo "$out" | tail -1)"
        else
            fail "$name: misnamed frames in $obj:"; echo "$out" | head -20
        fi
    done
}

run_t "$CLI" run --heap "$T/run.pb.gz" -- "$PY" "$T/big.py" >"$T/run.out" 2>"$T/run.err"
check_run run $?
run_t env MPROF_RATE=65536 MPROF_HEAP="$T/preload.pb.gz" LD_PRELOAD="$LIB" "$PY" "$T/big.py" \
    >"$T/preload.out" 2>"$T/preload.err"
check_run preload $?

# Loaded with dlopen (ctypes) instead of preloaded, for its API: the program
# runs on, the API answers, and no wrapper is there to forward to itself.
cat >"$T/api_via_dlopen.py" <<'PYEOF'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.mprof_set_rate(ctypes.c_long(4096))
lib.mprof_get_rate.restype = ctypes.c_long
print('rate', lib.mprof_get_rate())
print('sum', sum(len(bytearray(i)) for i in range(2000)))
PYEOF
run_t env -u LD_PRELOAD "$PY" "$T/api_via_dlopen.py" "$LIB" >"$T/ctypes.out" 2>"$T/ctypes.err"
rc=$?
if [ "$rc" = 0 ] && grep -qx 'rate 4096' "$T/ctypes.out" && grep -qx 'sum 1999000' "$T/ctypes.out"; then
    pass "dlopen'ed through ctypes: API answers, program runs on"
else
    fail "dlopen'ed through ctypes: exit status $rc"; cat "$T/ctypes.out" "$T/ctypes.err" | head
fi
finish
