#!/bin/sh
# `mprof top` (or `mprof report`) on damaged input: every failure must be
# exit status 1 with one "mprof: ..." line on stderr, never a crash.  Ends
# with a small fuzz loop that truncates profiles and flips bytes in them.
#
# Usage: cli_corrupt.sh MPROF SYNTH_PROFILES_GENERATOR [ITERATIONS [report]]
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
SYNTH=$2
ITERATIONS=${3:-300}
# read_profile FILE: the command under test on FILE.
if [ "${4:-top}" = report ]; then
    read_profile() { "$MPROF" report -o "$T/out.html" "$1"; }
else
    read_profile() { "$MPROF" top -n 0 "$1"; }
fi
# Under AddressSanitizer a memory error must not look like a clean exit 1.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"

# check_failure FILE DESCRIPTION [EXPECTED_TEXT]: mprof top must exit 1
# with exactly one line on stderr, starting with "mprof: ".
check_failure() {
    read_profile "$1" >/dev/null 2>"$T/err"
    status=$?
    lines=$(wc -l <"$T/err")
    if [ "$status" -ne 1 ]; then
        fail "$2: exit status $status, want 1; stderr: $(head -c 600 "$T/err")"
    elif [ "$lines" -ne 1 ] || ! grep -q '^mprof: ' "$T/err"; then
        fail "$2: want one 'mprof: ' line on stderr, got: $(head -c 600 "$T/err")"
    elif [ -n "${3:-}" ] && ! grep -qF -- "$3" "$T/err"; then
        fail "$2: stderr lacks '$3': $(cat "$T/err")"
    fi
}

"$SYNTH" "$T" || die "cannot generate profiles"
gz="$T/drop_frames.pb.gz"
raw="$T/inline_recursion.pb"
"$MPROF" top "$gz" >/dev/null || fail "valid gzip profile rejected"
"$MPROF" top "$raw" >/dev/null || fail "valid raw profile rejected"
"$MPROF" top - <"$gz" >/dev/null || fail "profile on standard input rejected"
# Every synthetic profile (odd units, inlining, drop_frames, labels...)
# is read or refused with one message.
for f in "$T"/*.pb "$T"/*.pb.gz; do
    read_profile "$f" >/dev/null 2>"$T/err"
    status=$?
    if [ "$status" -gt 1 ] || { [ "$status" -eq 1 ] && ! grep -q '^mprof: ' "$T/err"; }; then
        fail "$(basename "$f"): exit status $status: $(head -c 300 "$T/err")"
    fi
done

: >"$T/empty"
check_failure "$T/empty" "empty file" "empty file"
check_failure "$T/does-not-exist" "missing file" "cannot open"
check_failure "$T" "directory" "directory"
printf 'this is a text file, not a profile\n' >"$T/text"
check_failure "$T/text" "text file" "not"
awk 'BEGIN { srand(7); for (i = 0; i < 4096; i++) printf "%c", int(rand() * 256) }' \
    </dev/null >"$T/random"
check_failure "$T/random" "random bytes"
size=$(wc -c <"$gz")
head -c $((size / 2)) "$gz" >"$T/truncated.gz"
check_failure "$T/truncated.gz" "truncated gzip" "truncated gzip"
size=$(wc -c <"$raw")
head -c $((size - 3)) "$raw" >"$T/truncated.pb"
check_failure "$T/truncated.pb" "truncated protobuf"
printf '\037\213' >"$T/magic-only"
check_failure "$T/magic-only" "gzip magic only" "gzip"

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
        0) head -c "$offset" "$src" >"$T/fuzz" ;;
        *)
            cp "$src" "$T/fuzz"
            byte=$(od -An -tu1 -j "$offset" -N1 "$src" | tr -d ' ')
            flipped=$(( (byte ^ xor) & 255 ))
            # shellcheck disable=SC2059 # the octal escape is the point
            printf "\\$(printf '%03o' "$flipped")" |
                dd of="$T/fuzz" bs=1 seek="$offset" conv=notrunc 2>/dev/null
            ;;
        esac
        read_profile "$T/fuzz" >/dev/null 2>"$T/err"
        status=$?
        case $status in
        0) ;;
        1)
            if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q '^mprof: ' "$T/err"; then
                cp "$T/fuzz" "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb"
                echo "FAIL: fuzz (kind $kind at $offset): bad message, input saved as" \
                    "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb: $(head -c 600 "$T/err")" >&2
                echo x >>"$T/fuzz-failures"
            fi
            ;;
        *)
            cp "$T/fuzz" "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb"
            echo "FAIL: fuzz (kind $kind at $offset): exit status $status, input saved as" \
                "${TMPDIR:-/tmp}/mprof-fuzz-failure.pb: $(head -c 600 "$T/err")" >&2
            echo x >>"$T/fuzz-failures"
            ;;
        esac
    done
}
: >"$T/fuzz-failures"
fuzz "$raw" 1
fuzz "$gz" 2
gzip -dc "$T/many_small.pb.gz" >"$T/many_small.pb" && fuzz "$T/many_small.pb" 3
FAILURES=$((FAILURES + $(wc -l <"$T/fuzz-failures")))

echo "$ITERATIONS fuzz cases per profile"
finish
