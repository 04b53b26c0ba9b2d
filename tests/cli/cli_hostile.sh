#!/bin/sh
# `mprof top` on profiles crafted to attack it (cli_hostile_profiles.c,
# issue 17): each must end within a time limit (timeout) and a memory
# limit (ulimit -v), with the exit status of a good profile and one
# warning when a frame filter is ignored, or exit status 1 and one
# "mprof: ..." line saying what to do when the file is refused.
#
# Usage: cli_hostile.sh MPROF CLI_HOSTILE_PROFILES
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
GEN=$2
mkdir -p "$T/full" "$T/small"
"$GEN" "$T/full" 1024 || die "cannot write the hostile profiles"
"$GEN" "$T/small" 64 || die "cannot write the small bombs"

# top SECONDS KIB FILE [VAR=VALUE...]: mprof top -n 0 FILE under both
# limits (CPU seconds, KiB of address space); sets STATUS, and leaves the
# report in $T/out and stderr in $T/err.
top() {
    _secs=$1 _kib=$2 _file=$3
    shift 3
    # The limit is CPU time (ulimit -t), which a loaded machine does not
    # stretch; the wall-clock timeout only catches a process that sleeps.
    env "$@" sh -c "ulimit -v $_kib; ulimit -t $_secs; exec timeout 120 \"\$0\" top -n 0 \"\$1\"" \
        "$MPROF" "$_file" >"$T/out" 2>"$T/err"
    STATUS=$?
}

# filter_ignored NAME: exit 0, the report, one warning naming the filter.
filter_ignored() {
    top 5 400000 "$T/full/$1.pb.gz"
    check "$1: exit 0 within 5 s and 400 MB (status $STATUS)" test "$STATUS" = 0
    check "$1: the report is printed" grep -q "^Showing nodes" "$T/out"
    check "$1: one line on stderr" test "$(wc -l <"$T/err")" = 1
    check_grep "$1: the warning says the filters are ignored" \
        "warning: ignoring the profile's frame filters" "$T/err"
    check "$1: nothing is dropped, malloc included" grep -q " malloc$" "$T/out"
}

# ------------------------------------------------------ frame filters
filter_ignored regex_parens
check_grep "regex_parens: says why" "4096" "$T/err"
filter_ignored regex_repeat
check_grep "regex_repeat: says why" "at most 1000" "$T/err"
filter_ignored regex_repeat_sequence
check_grep "regex_repeat_sequence: says why" "instructions" "$T/err"
filter_ignored regex_nested_star
check_grep "regex_nested_star: says why" "nested more than 32 deep" "$T/err"
filter_ignored regex_backref
check_grep "regex_backref: says why" "backreferences" "$T/err"
filter_ignored regex_keep_hostile
check_grep "regex_keep_hostile: names keep_frames" "keep_frames" "$T/err"

# Within every limit: a DFA of 2^16 states, 31 nested stars over runs of
# 4,000 'a': applied, quickly, silently.
for name in regex_dfa regex_nested31; do
    top 5 400000 "$T/full/$name.pb.gz"
    check "$name: exit 0 within 5 s and 400 MB (status $STATUS)" test "$STATUS" = 0
    check "$name: no warning" test ! -s "$T/err"
done
# More work than the step budget: given up, with one warning.
top 5 400000 "$T/full/regex_steps.pb.gz"
check "regex_steps: exit 0 within 5 s (status $STATUS)" test "$STATUS" = 0
check "regex_steps: one line on stderr" test "$(wc -l <"$T/err")" = 1
check_grep "regex_steps: the filters are given up" "takes more than" "$T/err"

# Ordinary pprof filters keep working: ^runtime\., alternatives, .*alloc.*
top 5 400000 "$T/full/regex_ordinary.pb.gz"
check "regex_ordinary: exit 0, no warning" test "$STATUS" = 0 -a ! -s "$T/err"
check "regex_ordinary: malloc is dropped" test "$(grep -c ' malloc$' "$T/out")" = 0
check "regex_ordinary: main and its callees stay" grep -q " main$" "$T/out"

# -------------------------------------------------------------- bombs
# refused NAME SECONDS KIB TEXT [VAR=VALUE...]: exit 1, one mprof: line.
refused() {
    _name=$1 _secs=$2 _kib=$3 _text=$4
    shift 4
    top "$_secs" "$_kib" "$_name" "$@"
    check "$(basename "$_name"): exit 1 within $_secs s and $((_kib / 1000)) MB (status $STATUS)" \
        test "$STATUS" = 1
    check "$(basename "$_name"): one 'mprof: ' line" \
        test "$(wc -l <"$T/err")" = 1 -a "$(grep -c '^mprof: ' "$T/err")" = 1
    check_grep "$(basename "$_name"): says '$_text'" "$_text" "$T/err"
}
# 1 MB of gzip inflating to 1 GiB: stopped at the 512 MiB limit (was: over
# 30 s and 17 GB), and the message says how to raise it.
refused "$T/full/strings_bomb.pb.gz" 10 1200000 "more than 512 MiB"
check_grep "strings_bomb: says how to raise the limit" "MPROF_READ_LIMIT_MB=1024" "$T/err"
refused "$T/full/strings_bomb.pb.gz" 10 300000 "more than 64 MiB" MPROF_READ_LIMIT_MB=64
top 5 100000 "$T/full/strings_bomb.pb.gz" MPROF_READ_LIMIT_MB=abc
check "a bad MPROF_READ_LIMIT_MB: exit 2" test "$STATUS" = 2
check_grep "a bad MPROF_READ_LIMIT_MB: says the range" "from 1 to 65536" "$T/err"
# 128 MiB of 4-byte samples: 12 bytes of memory a byte, over the budget,
# refused before decoding (was: 3.5 GB).
refused "$T/full/samples_dense.pb.gz" 10 600000 "decoding this profile would take"
check_grep "samples_dense: names what it is packed with" "samples" "$T/err"
# Within the budget, dense all the same: decoded, in bounded memory.
top 10 400000 "$T/small/location_ids_dense.pb.gz"
check "location_ids_dense (8 MiB): exit 0 within 400 MB (status $STATUS)" test "$STATUS" = 0
refused "$T/small/strings_dense.pb.gz" 10 400000 "no sample types"
finish
