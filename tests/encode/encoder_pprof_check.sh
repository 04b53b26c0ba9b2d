#!/bin/sh
# Checks profiles written by test_encoder with the real reader, `go tool
# pprof`, in the situation of a user on another machine: the binary that
# wrote them is gone (a copy wrote them and was deleted), PPROF_BINARY_PATH
# leads nowhere, and pprof runs from an unrelated directory.  Every name and
# file:line must then come from the profile itself.
#
# usage: encoder_pprof_check.sh path/to/test_encoder
set -u

fail() {
    echo "encoder_pprof_check: FAIL: $*" >&2
    exit 1
}

[ $# -eq 1 ] || fail "usage: $0 path/to/test_encoder"
command -v go >/dev/null 2>&1 ||
    fail "'go' is not on PATH: install golang-go (make deps) to run the pprof checks"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mprof-encoder.XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT INT TERM
# go wants a writable home and build cache even to run a tool.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; then
    export HOME="$tmp/home"
    mkdir -p "$HOME"
fi
[ -n "${GOCACHE:-}" ] || export GOCACHE="$tmp/gocache"

mkdir -p "$tmp/bin" "$tmp/out" "$tmp/elsewhere"
cp "$1" "$tmp/bin/encoder_writer" || fail "cannot copy $1"
"$tmp/bin/encoder_writer" --out "$tmp/out" || fail "test_encoder --out failed"
rm -rf "$tmp/bin"
cd "$tmp/elsewhere" || fail "cd"

export PPROF_BINARY_PATH=/nonexistent
heap="$tmp/out/heap.pb.gz"
cpu="$tmp/out/cpu.pb.gz"
expect="$tmp/out/expect.txt"

# pprof [args...]: runs go tool pprof, output in $tmp/stdout and
# $tmp/stderr; fails the test if pprof does.
pprof() {
    go tool pprof "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    [ $rc -eq 0 ] || { cat "$tmp/stderr" >&2; fail "go tool pprof $* exited with $rc"; }
    # Any attempt to symbolize means a mapping lacked our has_* flags.
    if grep -qiE 'symboliz|unrecognized|no such file|could not|failed' "$tmp/stderr"; then
        cat "$tmp/stderr" >&2
        fail "go tool pprof $* complained"
    fi
}

pprof -raw "$heap"
cp "$tmp/stdout" "$tmp/heap.raw"
pprof -raw "$cpu"

# Every line the reader needs, on every node (no pruning).
all="-nodefraction=0 -edgefraction=0 -nodecount=100000"
pprof -text -lines $all -sample_index=alloc_space "$heap"
cp "$tmp/stdout" "$tmp/heap.lines"
pprof -text $all -sample_index=alloc_space "$heap"
cp "$tmp/stdout" "$tmp/heap.text"

while read -r kind a b; do
    case "$kind" in
    line)
        # "NAME /path/to/FILE:LINE" on a row of -text -lines.
        grep -F " $a " "$tmp/heap.lines" | grep -qE "/$(echo "$b" | sed 's/[.]/[.]/g')( |\$)" ||
            { cat "$tmp/heap.lines" >&2; fail "-text -lines does not show '$a ... $b'"; }
        ;;
    inline)
        # Inlined frames come first in a Location; pprof marks them.
        grep -F " $a " "$tmp/heap.lines" | grep -qE "/$(echo "$b" | sed 's/[.]/[.]/g') [(]inline[)]\$" ||
            { cat "$tmp/heap.lines" >&2; fail "-text -lines does not show '$a ... $b (inline)'"; }
        ;;
    func)
        grep -qE " $a\$" "$tmp/heap.text" ||
            { cat "$tmp/heap.text" >&2; fail "-text does not show $a"; }
        ;;
    bare)
        # The address inside libz that no symbol covers: a location with no
        # function, and the nearest preceding export ($b) named nowhere.
        grep -qE "^ +[0-9]+: $a M=[0-9]+ *\$" "$tmp/heap.raw" ||
            { cat "$tmp/heap.raw" >&2; fail "location $a should carry no name"; }
        if [ -n "$b" ] && grep -qF "$b" "$tmp/heap.raw" "$tmp/heap.text" "$tmp/heap.lines"; then
            fail "$a was named after its neighbour $b"
        fi
        ;;
    esac
done <"$expect"

# Samples differing only in their "bytes" label stay apart.  (pprof merges
# identical samples itself when reading, so our own merging is checked by
# test_encoder, not here.)
nsamples=$(sed -n '/^Samples:/,/^Locations/p' "$tmp/heap.raw" | grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+: ')
nbare=$(grep -c '^bare ' "$expect")
[ "$nsamples" -eq $((5 + nbare)) ] ||
    { cat "$tmp/heap.raw" >&2; fail "expected $((5 + nbare)) heap samples, got $nsamples"; }

# The C++ function is shown demangled, not as _ZN...
grep -q "mprof_test::Widget::grow" "$tmp/heap.text" || fail "C++ name not demangled"
grep -q "_ZN10mprof_test" "$tmp/heap.text" && fail "mangled name shown"

# default_sample_type picks the view; mapping[0] is the writing binary.
pprof -text "$heap"
grep -q "^Type: inuse_space" "$tmp/stdout" || fail "default sample type is not inuse_space"
grep -q "^File: encoder_writer" "$tmp/stdout" || fail "main binary is not mapping[0]"
grep -q "^test heap profile" "$tmp/stdout" || fail "comment missing"

pprof -text "$cpu"
grep -q "^Type: cpu" "$tmp/stdout" || fail "cpu type"
grep -q "Duration: 2.50s" "$tmp/stdout" || fail "duration"
pprof -tags "$cpu"
grep -qE "^ *thread: Total 80" "$tmp/stdout" || { cat "$tmp/stdout" >&2; fail "thread label"; }
grep -qE "70.0ms .*: main" "$tmp/stdout" && grep -qE "10.0ms .*: worker-1" "$tmp/stdout" ||
    { cat "$tmp/stdout" >&2; fail "thread label values"; }
pprof -tags -sample_index=alloc_space "$heap"
grep -qE "^ *bytes: Total" "$tmp/stdout" || { cat "$tmp/stdout" >&2; fail "bytes label"; }
grep -qE "64kB" "$tmp/stdout" || { cat "$tmp/stdout" >&2; fail "bytes label value"; }

# Same machine, default binary search: the libraries pprof could open must
# still not be re-symbolized (nearest-symbol guesses on stripped libz).
unset PPROF_BINARY_PATH
pprof -raw "$heap"
cmp -s "$tmp/stdout" "$tmp/heap.raw" || {
    diff "$tmp/heap.raw" "$tmp/stdout" >&2
    fail "pprof re-symbolized the profile when binaries were at hand"
}

echo "encoder_pprof_check: ok"
