#!/bin/sh
# mprof merge, mprof top A B and mprof top --base OLD NEW on real heap
# profiles written by the library: two runs of cli_alloc_sizes with the
# sizes of two sites swapped (so the runs load at different addresses,
# ASLR, and one site grows by what the other shrinks), plus a third run.
#
#  - `mprof top A B [C]` is go tool pprof -top A B [C] line for line, and
#    `mprof top --base A B` is go tool pprof -top -diff_base A B, for every
#    sample index, both sorts, several row limits (the "Time:" line left
#    out, as in cli_top_vs_pprof.sh);
#  - the figures are the truth, at MPROF_RATE=1 (every allocation
#    recorded): grow_site +2000 KiB, shrink_site -2000 KiB, steady_site
#    unchanged, and the merge sums the runs;
#  - the files mprof merge writes are valid for go tool pprof (-raw), and
#    read by it as pprof's own merge (-proto A B) is: the same -raw output;
#    mprof merge --base writes what go tool pprof -proto -diff_base does;
#  - profiles of different kinds are refused, naming both files.
#
# Usage: cli_merge_vs_pprof.sh MPROF LIBMPROF CLI_ALLOC_SIZES
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
LIB=$2
PROG=$3
need_go
export MPROF_LIB="$LIB"

cd "$T" || die "no $T"
for run in "a 1000 3000" "b 3000 1000" "c 10 10"; do
    set -- $run
    run_t "$MPROF" run --rate 1 --heap "$T/$1.pb.gz" -- "$PROG" "$2" "$3" >"$T/$1.out" \
        2>"$T/$1.err" || die "run $1 failed: $(cat "$T/$1.err")"
    [ -s "$T/$1.pb.gz" ] || die "run $1 wrote no profile: $(cat "$T/$1.err")"
done
# The CPU profile of a run, to be refused.
run_t "$MPROF" run --cpu "$T/cpu.pb.gz" -- "$PROG" 1 1 >/dev/null 2>"$T/cpu.err" ||
    die "cpu run failed: $(cat "$T/cpu.err")"

# same WHAT MPROF_ARGS -- PPROF_ARGS: the two reports, identical.
compared=0
same() {
    what=$1
    shift
    mprof_args=
    while [ "$1" != "--" ]; do
        mprof_args="$mprof_args $1"
        shift
    done
    shift
    # shellcheck disable=SC2086 # lists split on purpose
    "$MPROF" top $mprof_args 2>"$T/mprof.err" | grep -v '^Time: ' >"$T/got"
    pprof "$@" | grep -v '^Time: ' >"$T/want"
    compared=$((compared + 1))
    if ! grep -q '^ *flat  flat%' "$T/want"; then
        fail "$what: go tool pprof $* printed no report: $(tail -3 "$T/pprof.err")"
    elif ! cmp -s "$T/want" "$T/got"; then
        fail "$what: mprof top$mprof_args differs from go tool pprof $*:"
        diff "$T/want" "$T/got" | head -30
        cat "$T/mprof.err"
    fi
}

for index in alloc_objects alloc_space inuse_objects inuse_space; do
    for rows in 0 3 10; do
        for sort in "" --cum; do
            psort=
            [ -n "$sort" ] && psort=-cum
            same "merge of two" -n $rows $sort --sample-index $index a.pb.gz b.pb.gz -- \
                -top -nodecount=$rows $psort -sample_index=$index a.pb.gz b.pb.gz
            same "merge of three" -n $rows $sort --sample-index $index a.pb.gz b.pb.gz \
                c.pb.gz -- -top -nodecount=$rows $psort -sample_index=$index a.pb.gz \
                b.pb.gz c.pb.gz
            same "diff" -n $rows $sort --sample-index $index --base a.pb.gz b.pb.gz -- \
                -top -nodecount=$rows $psort -sample_index=$index -diff_base a.pb.gz b.pb.gz
            same "diff of a merge" -n $rows $sort --sample-index $index --base a.pb.gz \
                b.pb.gz c.pb.gz -- -top -nodecount=$rows $psort -sample_index=$index \
                -diff_base a.pb.gz b.pb.gz c.pb.gz
        done
    done
done
same "default sample index" a.pb.gz b.pb.gz -- -top a.pb.gz b.pb.gz
same "pprof's spelling" -diff_base a.pb.gz b.pb.gz -- -top -diff_base a.pb.gz b.pb.gz
echo "compared $compared reports with go tool pprof"

# The truth, in bytes: what each site holds at exit, 1 KiB blocks.
pprof -top -unit=B -nodecount=0 -sample_index=inuse_space -diff_base a.pb.gz b.pb.gz \
    >"$T/diff.txt"
flat_of() { awk -v f="$2" '$6 == f { v = $1; sub(/B$/, "", v); print v; found = 1; exit }
                            END { if (!found) print 0 }' "$1"; }
check "grow_site grew by 2000 KiB" [ "$(flat_of "$T/diff.txt" grow_site)" = 2048000 ]
check "shrink_site shrank by 2000 KiB" [ "$(flat_of "$T/diff.txt" shrink_site)" = -2048000 ]
check "steady_site did not change" [ "$(flat_of "$T/diff.txt" steady_site)" = 0 ]
# mprof's own report tells growth from shrinkage, the largest changes first.
"$MPROF" top -n 0 --sample-index inuse_space --base a.pb.gz b.pb.gz >"$T/mdiff.txt"
check_grep_re "mprof top --base: grow_site grew" '^ *1\.95MB .* grow_site$' "$T/mdiff.txt"
check_grep_re "mprof top --base: shrink_site shrank" '^ *-1\.95MB .* shrink_site$' "$T/mdiff.txt"
check "mprof top --base: the changed sites first" \
    [ "$(awk 'NR > 1 && $6 ~ /_site$/ { print $6 }' "$T/mdiff.txt" | head -2 | sort | tr '\n' ' ')" = \
    "grow_site shrink_site " ]
pprof -top -unit=MB -sample_index=inuse_space a.pb.gz >"$T/a.txt"
check "shares are of the base's total" [ "$(total_of "$T/mdiff.txt")" = "$(total_of "$T/a.txt")" ]
pprof -top -unit=B -nodecount=0 -sample_index=inuse_space a.pb.gz b.pb.gz >"$T/sum.txt"
check "the merge sums grow_site" [ "$(flat_of "$T/sum.txt" grow_site)" = 4096000 ]
check "the merge sums steady_site" [ "$(flat_of "$T/sum.txt" steady_site)" = 1048576 ]

# mprof merge writes a valid profile, read by pprof as its own merge.
run_t "$MPROF" merge a.pb.gz b.pb.gz c.pb.gz -o "$T/m.pb.gz" 2>"$T/merge.err"
check "mprof merge exits 0" [ $? -eq 0 ]
check_grep "mprof merge says what it wrote" "wrote $T/m.pb.gz: 3 profiles merged" "$T/merge.err"
check "mprof merge: go tool pprof -raw reads it" pprof_raw "$T/m.pb.gz" "$T/m.raw"
pprof -proto a.pb.gz b.pb.gz c.pb.gz >"$T/ref.pb.gz"
pprof_raw "$T/ref.pb.gz" "$T/ref.raw" || fail "go tool pprof -proto wrote no profile"
check "mprof merge = go tool pprof -proto A B C (-raw)" cmp -s "$T/ref.raw" "$T/m.raw"
same "the merged file" m.pb.gz -- -top a.pb.gz b.pb.gz c.pb.gz
run_t "$MPROF" merge --base a.pb.gz b.pb.gz -o "$T/d.pb.gz" 2>"$T/merge.err"
check "mprof merge --base: go tool pprof -raw reads it" pprof_raw "$T/d.pb.gz" "$T/d.raw"
pprof -proto -diff_base a.pb.gz b.pb.gz >"$T/refd.pb.gz"
pprof_raw "$T/refd.pb.gz" "$T/refd.raw" || fail "go tool pprof -proto -diff_base wrote nothing"
check "mprof merge --base = go tool pprof -proto -diff_base (-raw)" cmp -s "$T/refd.raw" \
    "$T/d.raw"
pprof -top -nodecount=0 "$T/d.pb.gz" | grep -v '^Time: ' >"$T/dfile.txt"
pprof -top -nodecount=0 -diff_base a.pb.gz b.pb.gz | grep -v '^Time: ' >"$T/dref.txt"
check "a diff file opens in pprof as -diff_base" cmp -s "$T/dref.txt" "$T/dfile.txt"
run_t "$MPROF" merge a.pb.gz -o - >"$T/stdout.pb.gz" 2>"$T/merge.err"
check "mprof merge -o - writes to standard output" pprof_raw "$T/stdout.pb.gz" "$T/stdout.raw"

# Profiles of different kinds: refused, both files and types named,
# what to do said; no file written.
run_t "$MPROF" merge a.pb.gz cpu.pb.gz -o "$T/bad.pb.gz" 2>"$T/bad.err"
check "incompatible: mprof merge exits 1" [ $? -eq 1 ]
check_grep "incompatible: names the heap profile and its types" \
    "a.pb.gz (sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes)" \
    "$T/bad.err"
check_grep "incompatible: names the CPU profile and its types" \
    "cpu.pb.gz (sample types samples/count, cpu/nanoseconds)" "$T/bad.err"
check_grep "incompatible: says what to do" "merge profiles of one kind" "$T/bad.err"
check "incompatible: no file written" [ ! -e "$T/bad.pb.gz" ]
run_t "$MPROF" top --base cpu.pb.gz a.pb.gz >/dev/null 2>"$T/bad.err"
check "incompatible: mprof top --base exits 1" [ $? -eq 1 ]
check_grep "incompatible: mprof top says so" "cannot merge a.pb.gz" "$T/bad.err"
# mprof report merges the same way: several profiles, and --base.
run_t "$MPROF" report a.pb.gz b.pb.gz -o "$T/merged.html" 2>"$T/rep.err"
check "report of two: exit 0, one line" [ $? -eq 0 -a "$(wc -l <"$T/rep.err")" = 1 ]
check "report of two: a page" grep -q '<html' "$T/merged.html"
run_t "$MPROF" report --base a.pb.gz b.pb.gz -o "$T/diff.html" 2>"$T/rep.err"
check "report --base: exit 0" [ $? -eq 0 ]
check "report --base: a page" grep -q '<html' "$T/diff.html"
run_t "$MPROF" report a.pb.gz cpu.pb.gz -o "$T/bad.html" 2>"$T/bad.err"
check "report of two kinds: exit 1, nothing written" [ $? -eq 1 -a ! -e "$T/bad.html" ]
check_grep "report of two kinds: says why" "merge profiles of one kind" "$T/bad.err"
run_t "$MPROF" top a.pb.gz missing.pb.gz >/dev/null 2>"$T/bad.err"
check_grep "a missing file is named" "missing.pb.gz: cannot open" "$T/bad.err"
finish
