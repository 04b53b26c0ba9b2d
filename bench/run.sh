#!/bin/bash
# Runs every benchmark (bench/*_bench.sh) against the build directory $1.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
rc=0
for b in "$(dirname "$0")"/*_bench.sh; do
    echo "== $(basename "$b" .sh)"
    bash "$b" "$BUILD" || rc=1
    echo
done
exit $rc
