#!/bin/bash
# `make demo`: profile the bundled example with `mprof run`, then show its
# top allocation sites with `mprof top` (and with go tool pprof when Go is
# installed).
set -eu
BUILD=${1:-build}
PROFILE=$BUILD/demo.heap.pb.gz
echo "\$ $BUILD/mprof run --heap $PROFILE -- $BUILD/examples/leaky_cache 20000"
"$BUILD/mprof" run --heap "$PROFILE" -- "$BUILD/examples/leaky_cache" 20000
echo
echo "\$ $BUILD/mprof top -n 8 $PROFILE                  # memory still in use at exit"
"$BUILD/mprof" top -n 8 "$PROFILE"
echo
echo "\$ $BUILD/mprof top -n 8 --sample-index alloc_space $PROFILE   # everything allocated"
"$BUILD/mprof" top -n 8 --sample-index alloc_space "$PROFILE"
if command -v go >/dev/null; then
    echo
    echo "\$ go tool pprof -top -lines $PROFILE"
    go tool pprof -top -lines -nodecount=8 "$PROFILE" 2>/dev/null
fi
