#!/bin/sh
# Checks profiles written by test_encoder with the real reader, `go tool
# pprof`, in the situation of a user on another machine: the binary that
# wrote them is gone (a copy wrote them and was deleted), PPROF_BINARY_PATH
# leads nowhere, and pprof runs from an unrelated directory.  Every name and
# file:line must then come from the profile itself.
#
# usage: encoder_pprof_check.sh path/to/test_encoder
. "$(dirname "$0")/../lib/testlib.sh"

[ $# -eq 1 ] || die "usage: $0 path/to/test_encoder"
need_go

mkdir -p "$T/bin" "$T/out" "$T/elsewhere"
cp "$1" "$T/bin/encoder_writer" || die "cannot copy $1"
"$T/bin/encoder_writer" --out "$T/out" || die "test_encoder --out failed"
rm -rf "$T/bin"
cd "$T/elsewhere" || die "cd"

export PPROF_BINARY_PATH=/nonexistent
heap="$T/out/heap.pb.gz"
cpu="$T/out/cpu.pb.gz"
expect="$T/out/expect.txt"

# pprof_ok [args...]: runs go tool pprof, output in $T/stdout and
# $T/stderr; ends the test if pprof fails or complains.
pprof_ok() {
    "$GO" tool pprof "$@" >"$T/stdout" 2>"$T/stderr"
    rc=$?
    [ $rc -eq 0 ] || { cat "$T/stderr"; die "go tool pprof $* exited with $rc"; }
    # Any attempt to symbolize means a mapping lacked our has_* flags.
    if grep -qiE 'symboliz|unrecognized|no such file|could not|failed' "$T/stderr"; then
        cat "$T/stderr"
        die "go tool pprof $* complained"
    fi
}

pprof_ok -raw "$heap"
cp "$T/stdout" "$T/heap.raw"
pprof_ok -raw "$cpu"

# Every line the reader needs, on every node (no pruning).
all="-nodefraction=0 -edgefraction=0 -nodecount=100000"
pprof_ok -text -lines $all -sample_index=alloc_space "$heap"
cp "$T/stdout" "$T/heap.lines"
pprof_ok -text $all -sample_index=alloc_space "$heap"
cp "$T/stdout" "$T/heap.text"

while read -r kind a b; do
    case "$kind" in
    line)
        # "NAME /path/to/FILE:LINE" on a row of -text -lines.
        grep -F " $a " "$T/heap.lines" | grep -qE "/$(echo "$b" | sed 's/[.]/[.]/g')( |\$)" ||
            { cat "$T/heap.lines"; die "-text -lines does not show '$a ... $b'"; }
        ;;
    inline)
        # Inlined frames come first in a Location; pprof marks them.
        grep -F " $a " "$T/heap.lines" | grep -qE "/$(echo "$b" | sed 's/[.]/[.]/g') [(]inline[)]\$" ||
            { cat "$T/heap.lines"; die "-text -lines does not show '$a ... $b (inline)'"; }
        ;;
    func)
        grep -qE " $a\$" "$T/heap.text" ||
            { cat "$T/heap.text"; die "-text does not show $a"; }
        ;;
    bare)
        # The address inside libz that no symbol covers: a location with no
        # function, and the nearest preceding export ($b) named nowhere.
        grep -qE "^ +[0-9]+: $a M=[0-9]+ *\$" "$T/heap.raw" ||
            { cat "$T/heap.raw"; die "location $a should carry no name"; }
        if [ -n "$b" ] && grep -qF "$b" "$T/heap.raw" "$T/heap.text" "$T/heap.lines"; then
            die "$a was named after its neighbour $b"
        fi
        ;;
    esac
done <"$expect"

# Samples differing only in their "bytes" label stay apart.  (pprof merges
# identical samples itself when reading, so our own merging is checked by
# test_encoder, not here.)
nsamples=$(sed -n '/^Samples:/,/^Locations/p' "$T/heap.raw" | grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+: ')
nbare=$(grep -c '^bare ' "$expect")
[ "$nsamples" -eq $((5 + nbare)) ] ||
    { cat "$T/heap.raw"; die "expected $((5 + nbare)) heap samples, got $nsamples"; }

# The C++ function is shown demangled, not as _ZN...
grep -q "mprof_test::Widget::grow" "$T/heap.text" || die "C++ name not demangled"
grep -q "_ZN10mprof_test" "$T/heap.text" && die "mangled name shown"

# default_sample_type picks the view; mapping[0] is the writing binary.
pprof_ok -text "$heap"
grep -q "^Type: inuse_space" "$T/stdout" || die "default sample type is not inuse_space"
grep -q "^File: encoder_writer" "$T/stdout" || die "main binary is not mapping[0]"
grep -q "^test heap profile" "$T/stdout" || die "comment missing"

pprof_ok -text "$cpu"
grep -q "^Type: cpu" "$T/stdout" || die "cpu type"
grep -q "Duration: 2.50s" "$T/stdout" || die "duration"
pprof_ok -tags "$cpu"
grep -qE "^ *thread: Total 80" "$T/stdout" || { cat "$T/stdout"; die "thread label"; }
grep -qE "70.0ms .*: main" "$T/stdout" && grep -qE "10.0ms .*: worker-1" "$T/stdout" ||
    { cat "$T/stdout"; die "thread label values"; }
pprof_ok -tags -sample_index=alloc_space "$heap"
grep -qE "^ *bytes: Total" "$T/stdout" || { cat "$T/stdout"; die "bytes label"; }
grep -qE "64kB" "$T/stdout" || { cat "$T/stdout"; die "bytes label value"; }

# Same machine, default binary search: the libraries pprof could open must
# still not be re-symbolized (nearest-symbol guesses on stripped libz).
unset PPROF_BINARY_PATH
pprof_ok -raw "$heap"
cmp -s "$T/stdout" "$T/heap.raw" || {
    diff "$T/heap.raw" "$T/stdout"
    die "pprof re-symbolized the profile when binaries were at hand"
}

pass "go tool pprof reads every name and line from the profiles alone"
finish
