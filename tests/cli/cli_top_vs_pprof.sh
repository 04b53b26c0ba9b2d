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
set -u
MPROF=$1
SYNTH=$2
GOPROF_SRC=$3
if ! command -v go >/dev/null 2>&1; then
    echo "go not found: skipping the comparison with go tool pprof"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
compared=0

# Go needs a writable home and build cache; the test must not touch the
# network (a module download or toolchain switch would be a test bug).
if [ -z "${HOME:-}" ] || [ ! -w "${HOME}" ]; then export HOME="$tmp/home"; fi
[ -n "${GOCACHE:-}" ] || export GOCACHE="$tmp/gocache"
export GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local GOTELEMETRY=off GO111MODULE=on
mkdir -p "$HOME" "$GOCACHE"

if ! go build -o "$tmp/goprof" "$GOPROF_SRC" 2>"$tmp/build.err"; then
    echo "FAIL: cannot build $GOPROF_SRC: $(cat "$tmp/build.err")" >&2
    exit 1
fi
mkdir -p "$tmp/p"
"$tmp/goprof" "$tmp/p" || { echo "FAIL: cli_goprof failed" >&2; exit 1; }
"$SYNTH" "$tmp/p" || { echo "FAIL: cli_synth_profiles failed" >&2; exit 1; }

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
            go tool pprof $pprof_flags "$tmp/p/$file" 2>"$tmp/pprof.err" |
                grep -v '^Time: ' >"$tmp/want"
            "$MPROF" "$@" "$tmp/p/$file" 2>"$tmp/mprof.err" | grep -v '^Time: ' >"$tmp/got"
            compared=$((compared + 1))
            if ! grep -q '^ *flat  flat%' "$tmp/want"; then
                echo "FAIL: go tool pprof $pprof_flags $file printed no report:" \
                    "$(cat "$tmp/pprof.err")" >&2
                failures=$((failures + 1))
            elif ! cmp -s "$tmp/want" "$tmp/got"; then
                echo "FAIL: mprof $* $file differs from go tool pprof $pprof_flags:" >&2
                diff "$tmp/want" "$tmp/got" | head -40 >&2
                cat "$tmp/mprof.err" >&2
                failures=$((failures + 1))
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

# The Go profiles must have given the comparison something to chew on.
"$MPROF" top -n 0 --sample-index alloc_space "$tmp/p/heap.pb.gz" >"$tmp/heap.txt"
for fn in main.allocateLarge main.allocateSmall "main.allocateInlined (inline)" main.recurse; do
    grep -qF "$fn" "$tmp/heap.txt" || {
        echo "FAIL: $fn missing from the Go heap profile report:" >&2
        cat "$tmp/heap.txt" >&2
        failures=$((failures + 1))
    }
done

if [ "$failures" -ne 0 ]; then
    echo "cli_top_vs_pprof: $failures of $compared comparisons failed" >&2
    exit 1
fi
echo "cli_top_vs_pprof: $compared reports identical to go tool pprof"
