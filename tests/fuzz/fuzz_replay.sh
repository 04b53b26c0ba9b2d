#!/bin/sh
# make check's replay of the fuzz corpora (tests/fuzz/corpus/NAME/) and of
# the hostile inputs of issue 17, each through its harness built with the
# project's compiler (replay_main.c): every input must end cleanly within
# FUZZ_REPLAY_SECONDS and, outside sanitizer builds, within the memory a
# `ulimit -v` allows.
#
# Usage: fuzz_replay.sh BUILD_DIR CORPUS_DIR CLI_HOSTILE_PROFILES DUMP_CRAFT
. "$(dirname "$0")/../lib/testlib.sh"
BIN=$1
CORPUS=$2
HOSTILE=$3
CRAFT=$4

mkdir -p "$T/hostile" "$T/dumps"
# Bombs of 64 MiB: four times the harness's read limit of 16 MiB, so the
# limit and the memory budget are both crossed.
"$HOSTILE" "$T/hostile" 64 || die "cannot write the hostile profiles"
"$CRAFT" "$T/dumps" || die "cannot write the crafted dumps"

# Sanitizer builds reserve terabytes of address space: no ulimit there;
# and they run the Debug build's code far slower (regex_steps: 1.8 s of CPU
# plain, 20 s under ASan at -O0, 50 s under TSan), so their bound on time
# is 150 s instead of 10: still a bound, the plain build keeps the tight one.
limit=""
export FUZZ_REPLAY_SECONDS=150
if ! ldd "$BIN/fuzz_profile_replay" 2>/dev/null | grep -qE 'lib(a|t)san'; then
    limit="ulimit -v 1500000;"
    FUZZ_REPLAY_SECONDS=10
fi

replay() {
    name=$1
    shift
    if sh -c "$limit exec \"\$0\" \"\$@\"" "$BIN/fuzz_${name}_replay" "$@" \
        >"$T/$name.out" 2>"$T/$name.err"; then
        pass "$name: $(tail -n 1 "$T/$name.out" | sed 's/^.*: //')"
    else
        fail "$name: $(grep -m1 -E 'FAIL|ERROR|runtime error|Sanitizer' "$T/$name.err" ||
            tail -n 5 "$T/$name.err")"
    fi
}
replay profile "$CORPUS/profile" "$T/hostile"
replay dump "$CORPUS/dump" "$T/dumps"
replay http "$CORPUS/http"
replay options "$CORPUS/options"
finish
