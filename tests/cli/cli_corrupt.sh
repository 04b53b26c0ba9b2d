#!/bin/sh
# `mprof top` on damaged input: every failure must be exit status 1 with one
# "mprof: ..." line on stderr, never a crash.  Ends with a small fuzz loop
# that truncates profiles and flips bytes in them.
#
# Usage: cli_corrupt.sh MPROF SYNTH_PROFILES_GENERATOR [ITERATIONS]
set -u
MPROF=$1
SYNTH=$2
ITERATIONS=${3:-300}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
# Under AddressSanitizer a memory error must not look like a clean exit 1.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# check_failure FILE DESCRIPTION [EXPECTED_TEXT]: mprof top must exit 1
# with exactly one line on stderr, starting with "mprof: ".
check_failure() {
    "$MPROF" top -n 0 "$1" >/dev/null 2>"$tmp/err"
    status=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$status" -ne 1 ]; then
        fail "$2: exit status $status, want 1; stderr: $(head -c 600 "$tmp/err")"
    elif [ "$lines" -ne 1 ] || ! grep -q '^mprof: ' "$tmp/err"; then
        fail "$2: want one 'mprof: ' line on stderr, got: $(head -c 600 "$tmp/err")"
    elif [ -n "${3:-}" ] && ! grep -qF -- "$3" "$tmp/err"; then
        fail "$2: stderr lacks '$3': $(cat "$tmp/err")"
    fi
}

"$SYNTH" "$tmp" || { echo "cannot generate profiles" >&2; exit 1; }
gz="$tmp/drop_frames.pb.gz"
raw="$tmp/inline_recursion.pb"
"$MPROF" top "$gz" >/dev/null || fail "valid gzip profile rejected"
"$MPROF" top "$raw" >/dev/null || fail "valid raw profile rejected"
"$MPROF" top - <"$gz" >/dev/null || fail "profile on standard input rejected"

: >"$tmp/empty"
check_failure "$tmp/empty" "empty file" "empty file"
check_failure "$tmp/does-not-exist" "missing file" "cannot open"
check_failure "$tmp" "directory" "directory"
printf 'this is a text file, not a profile\n' >"$tmp/text"
check_failure "$tmp/text" "text file" "not"
awk 'BEGIN { srand(7); for (i = 0; i < 4096; i++) printf "%c", int(rand() * 256) }' \
    </dev/null >"$tmp/random"
check_failure "$tmp/random" "random bytes"
size=$(wc -c <"$gz")
head -c $((size / 2)) "$gz" >"$tmp/truncated.gz"
check_failure "$tmp/truncated.gz" "truncated gzip" "truncated gzip"
size=$(wc -c <"$raw")
head -c $((size - 3)) "$raw" >"$tmp/truncated.pb"
check_failure "$tmp/truncated.pb" "truncated protobuf"
printf '\037\213' >"$tmp/magic-only"
check_failure "$tmp/magic-only" "gzip magic only" "gzip"

# Fuzz: truncations and byte flips at pseudo-random places (fixed seed, so
# a failure can be reproduced), on both the raw and the gzipped profile.
# Status must be 0 or 1, and 1 must come with a proper message.
fuzz() {
    src=$1
    seed=$2
    size=$(wc -c <"$src")
    awk -v seed="$seed" -v n="$ITERATIONS" -v size="$size" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++)
            print int(rand() * 3), int(rand() * size), 1 + int(rand() * 255)
    }' </dev/null | while read -r kind offset xor; do
        case $kind in
        0) head -c "$offset" "$src" >"$tmp/fuzz" ;;
        *)
            cp "$src" "$tmp/fuzz"
            byte=$(od -An -tu1 -j "$offset" -N1 "$src" | tr -d ' ')
            flipped=$(( (byte ^ xor) & 255 ))
            # shellcheck disable=SC2059 # the octal escape is the point
            printf "\\$(printf '%03o' "$flipped")" |
                dd of="$tmp/fuzz" bs=1 seek="$offset" conv=notrunc 2>/dev/null
            ;;
        esac
        "$MPROF" top -n 0 "$tmp/fuzz" >/dev/null 2>"$tmp/err"
        status=$?
        case $status in
        0) ;;
        1)
            if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^mprof: ' "$tmp/err"; then
                cp "$tmp/fuzz" "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb"
                echo "FAIL: fuzz (kind $kind at $offset): bad message, input saved as" \
                    "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb: $(head -c 600 "$tmp/err")" >&2
                echo x >>"$tmp/fuzz-failures"
            fi
            ;;
        *)
            cp "$tmp/fuzz" "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb"
            echo "FAIL: fuzz (kind $kind at $offset): exit status $status, input saved as" \
                "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb: $(head -c 600 "$tmp/err")" >&2
            echo x >>"$tmp/fuzz-failures"
            ;;
        esac
    done
}
: >"$tmp/fuzz-failures"
fuzz "$raw" 1
fuzz "$gz" 2
gzip -dc "$tmp/many_small.pb.gz" >"$tmp/many_small.pb" && fuzz "$tmp/many_small.pb" 3
failures=$((failures + $(wc -l <"$tmp/fuzz-failures")))

if [ "$failures" -ne 0 ]; then
    echo "cli_corrupt: $failures failure(s)" >&2
    exit 1
fi
echo "cli_corrupt: ok ($ITERATIONS fuzz cases per profile)"
