#!/bin/sh
# libFuzzer runs of the harnesses listed in harnesses.txt: `make fuzz`
# (FUZZ_SECONDS each, default 60) and the short slice of `make check`.
#
# Usage: fuzz.sh BUILD_DIR SECONDS [NAME...]     (all harnesses without NAME)
#
# Each harness is built with clang -fsanitize=fuzzer,address,undefined in
# BUILD_DIR and run for SECONDS on a working corpus in BUILD_DIR/corpus-NAME,
# seeded from tests/fuzz/corpus/NAME/ (which is only read: new inputs stay
# in the build folder).  A finding (crash, leak, sanitizer report, timeout,
# memory blow-up) is left in BUILD_DIR/artifacts/ and fails the run; once
# fixed, it belongs in tests/fuzz/corpus/NAME/ as a regression input, which
# `make check`'s replay then runs every time.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS [NAME...]}
seconds=${2:?usage: fuzz.sh BUILD_DIR SECONDS [NAME...]}
shift 2
CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "mprof fuzz: $CC not found; install clang and libclang-rt-14-dev (make deps does)" >&2
    exit 1
fi
mkdir -p "$build/artifacts" || exit 1
names=${*:-$(sed -n 's/^\([a-z]*\):.*/\1/p' "$root/tests/fuzz/harnesses.txt")}
status=0
for name in $names; do
    sources=$(sed -n "s/^$name: *//p" "$root/tests/fuzz/harnesses.txt")
    if [ -z "$sources" ]; then
        echo "mprof fuzz: no harness '$name' in tests/fuzz/harnesses.txt" >&2
        exit 2
    fi
    bin="$build/fuzz_$name"
    set --
    for s in $sources; do set -- "$@" "$root/$s"; done
    if ! "$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -D_GNU_SOURCE '-DFILTER_STEP_BUDGET=((uint64_t)1<<24)' -I"$root/src" -I"$root/include" \
        -o "$bin" "$@" -lz -lm; then
        echo "mprof fuzz: cannot build fuzz_$name with $CC (is libclang-rt-14-dev installed?)" >&2
        exit 1
    fi
    mkdir -p "$build/corpus-$name"
    echo "mprof fuzz: fuzz_$name for $seconds s"
    # -timeout: one input taking over 10 s is a finding (the readers
    # promise bounded time); -rss_limit_mb: so is 2 GB.
    if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" \
        "$build/corpus-$name" "$root/tests/fuzz/corpus/$name" \
        >"$build/fuzz_$name.log" 2>&1; then
        tail -n 40 "$build/fuzz_$name.log" >&2
        echo "mprof fuzz: FAIL: fuzz_$name found an input; it is in $build/artifacts/" \
            "(reproduce: $bin FILE); once fixed, add it to tests/fuzz/corpus/$name/" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz_$name.log" | tr '\n' ' '
        echo
    fi
done
exit $status
