#!/bin/sh
# `make demo` as a new user's first command: a fresh `git clone` of this
# repository's HEAD into a scratch folder (nothing reused from this
# build), then `make demo` there.  It must install what is missing (here
# nothing: make check ran make deps), show its build, profile the example,
# and print tables whose figures hold: at rate 1 every estimate equals the
# program's own count, and at the default rate the total in use and the
# total allocated lie within 5 standard deviations of it (a false alarm
# about once in two million runs).  Exit 77 (skipped) outside a git
# checkout.
#   demo_fresh_clone.sh SOURCE_DIR
. "$(dirname "$0")/../lib/testlib.sh"
src=$1
if ! command -v git >/dev/null || ! git -C "$src" rev-parse --verify -q HEAD >/dev/null; then
    echo "skipped: $src is not a git checkout (or git is missing); the demo test clones it"
    exit 77
fi
# The clone checks out HEAD as committed; uncommitted changes are not in it.
git clone -q "$src" "$T/clone" || die "git clone $src failed"
git -C "$T/clone" checkout -q "$(git -C "$src" rev-parse HEAD)" || die "checkout of HEAD failed"
pass "cloned $(git -C "$T/clone" log --oneline -1 | cut -c1-60)"

# A make of our own, not a part of make check's: no jobserver, no flags.
(cd "$T/clone" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout -k 5 600 make demo JOBS=2) \
    >"$T/demo.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    tail -60 "$T/demo.out"; die "make demo in a fresh clone failed (exit $rc)"
fi
pass "make demo in a fresh clone"
out=$T/demo.out
check_grep "the build's output is shown" "Built target leaky_cache" "$out"
check_grep "the example ran" "served 20000 requests" "$out"
check_grep_re "mprof top names the leaking function" "remember" "$out"
if command -v go >/dev/null; then
    # libc6-dbg: libc's own frames have their file and line.
    check_grep "libc frames have lines (libc6-dbg)" "strdup.c:" "$out"
fi

# The exact table: every row's estimates equal the truth.
# Its rows end "true estimate exact true estimate exact".
exact=$(awk '$NF == "exact" && $(NF-3) == "exact"' "$out" | wc -l)
check "the rate-1 table has its five rows" test "$exact" -eq 5
bad=$(awk '$NF == "exact" && $(NF-3) == "exact" && ($(NF-5) != $(NF-4) || $(NF-2) != $(NF-1))' "$out")
[ -z "$bad" ] && pass "at rate 1 every estimate equals the program's count" ||
    fail "rate-1 rows differ: $bad"
# The sampled table's total row: within 5 standard deviations.
row=$(grep '^all four .*+-' "$out" | head -1)
[ -n "$row" ] || die "no sampled total row in the demo's output"
echo "$row" | awk '{
    sd1 = substr($5, 3) + 0; sd2 = substr($9, 3) + 0
    d1 = $3 - $4; if (d1 < 0) d1 = -d1
    d2 = $7 - $8; if (d2 < 0) d2 = -d2
    exit !(sd1 > 0 && sd2 > 0 && d1 <= 5 * sd1 && d2 <= 5 * sd2)
}' && pass "sampled totals within 5 sd: $row" || fail "sampled totals off: $row"
finish
