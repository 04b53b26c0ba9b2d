#!/bin/sh
# `mprof top` against `go tool pprof -top` on the same files: profiles the
# Go runtime writes (heap, allocs, CPU; built from cli_goprof.go) and
# synthetic ones (cli_synth_profiles.c: drop_frames, inlining, recursion,
# negative values, many tiny functions, all unit families).  The reports
# must be identical line for line - rows, values, percentages, order,
# inline markers and header lines - except the "Time:" line, whose time
# zone rendering differs between Go and the C library.
#
# Skipped (status 77) when Go is not installed.
#
# Usage: cli_top_vs_pprof.sh MPROF SYNTH_PROFILES_GENERATOR CLI_GOPROF_GO
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
SYNTH=$2
GOPROF_SRC=$3
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "go not found: skipping the comparison with go tool pprof"
    exit 77
fi
compared=0
# The library's Go environment is offline: a module download or toolchain
# switch would be a test bug.
export GO111MODULE=on

if ! "$GO" build -o "$T/goprof" "$GOPROF_SRC" 2>"$T/build.err"; then
    die "cannot build $GOPROF_SRC: $(cat "$T/build.err")"
fi
mkdir -p "$T/p"
"$T/goprof" "$T/p" || die "cli_goprof failed"
"$SYNTH" "$T/p" || die "cli_synth_profiles failed"

# compare FILE SAMPLE_INDEX: one file, one sample index ("" = default),
# with several row limits and both sort orders.
compare() {
    file=$1
    index=$2
    for sort in flat cum; do
        for rows in 0 5 10; do
            set -- top -n "$rows"
            pprof_flags="-top -nodecount=$rows"
            if [ "$sort" = cum ]; then
                set -- "$@" --cum
                pprof_flags="$pprof_flags -cum"
            fi
            if [ -n "$index" ]; then
                set -- "$@" --sample-index "$index"
                pprof_flags="$pprof_flags -sample_index=$index"
            fi
            # shellcheck disable=SC2086 # flags split on purpose
            "$GO" tool pprof $pprof_flags "$T/p/$file" 2>"$T/pprof.err" |
                grep -v '^Time: ' >"$T/want"
            "$MPROF" "$@" "$T/p/$file" 2>"$T/mprof.err" | grep -v '^Time: ' >"$T/got"
            compared=$((compared + 1))
            if ! grep -q '^ *flat  flat%' "$T/want"; then
                fail "go tool pprof $pprof_flags $file printed no report:" \
                    "$(cat "$T/pprof.err")"
            elif ! cmp -s "$T/want" "$T/got"; then
                fail "mprof $* $file differs from go tool pprof $pprof_flags:"
                diff "$T/want" "$T/got" | head -40
                cat "$T/mprof.err"
            fi
        done
    done
}

for index in "" alloc_objects alloc_space inuse_objects inuse_space 2; do
    compare heap.pb.gz "$index"
done
compare allocs.pb.gz ""
compare allocs.pb.gz inuse_space
compare cpu.pb.gz ""
compare cpu.pb.gz samples
for index in "" 0 1 2 3 4; do
    compare inline_recursion.pb "$index"
done
compare drop_frames.pb.gz ""
compare drop_frames.pb.gz alloc_objects
compare many_small.pb.gz ""
compare many_small.pb.gz samples

# Labels: --tags and --tag against -tags and -tagfocus, on Go's labeled CPU
# profile and on the numeric "bytes" labels of its heap profile.
same_as_pprof "$MPROF" "$T/p/cpu.pb.gz" request=upload request=download tenant=acme \
    request=load "request=^up,down" acme
same_as_pprof "$MPROF" "$T/p/heap.pb.gz" bytes=96 bytes=96b bytes=1kb: bytes=:1kb \
    bytes=4kb:256kb bytes=512:8192 bytes=+512b:8kb 96b
"$GO" tool pprof -tags "$T/p/cpu.pb.gz" >"$T/cpu.tags" 2>&1
check_grep "Go's CPU profile carries the labels of pprof.Do" "download" "$T/cpu.tags"

# The Go profiles must have given the comparison something to chew on.
"$MPROF" top -n 0 --sample-index alloc_space "$T/p/heap.pb.gz" >"$T/heap.txt"
for fn in main.allocateLarge main.allocateSmall "main.allocateInlined (inline)" main.recurse; do
    grep -qF "$fn" "$T/heap.txt" || {
        fail "$fn missing from the Go heap profile report:"
        cat "$T/heap.txt"
    }
done

echo "$compared comparisons with go tool pprof"
finish
