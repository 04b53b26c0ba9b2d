#!/bin/sh
# The leak check against the real reference: each scenario of leaks_target.c
# and leaks_cxx.cpp runs under `mprof run --leaks` and, built with
# -fsanitize=leak, under LeakSanitizer; both must report the same leaked
# sites with the same bytes, objects and direct/indirect split, and exit
# with the same status (23 with leaks, 0 without).  Then the leaks profile
# through go tool pprof and mprof top, the exit code setting, suppressions,
# the minimum size, a bad MPROF_LEAKS, and Debian's sqlite3 and python3
# running clean.
# Usage: leaks_check.sh MPROF LIBMPROF TARGET TARGET_LSAN LEAKS_LIB CXX CXX_LSAN LABELS
#        EARLY EARLY_LSAN
. "$(dirname "$0")/../lib/testlib.sh"
need_go
MPROF=$1
LIB=$2
TARGET=$3
TARGET_LSAN=$4
LEAKS_LIB=$5
CXX=$6
CXX_LSAN=$7
LABELS=$8
EARLY=$9
EARLY_LSAN=${10}
REPORT="$PYTHON $(dirname "$0")/leaks_report.py"
export MPROF_LIB="$LIB"
# LeakSanitizer's own defaults, said out loud: its exit code 23 is mprof's.
export LSAN_OPTIONS=exitcode=23

# compare NAME EXPECT PROG_PLAIN PROG_LSAN ARGS...: EXPECT is "leaks" or "clean".
compare() {
    name=$1 expect=$2 plain=$3 lsan=$4
    shift 4
    run_t "$lsan" "$@" >"$T/$name.lsan.out" 2>"$T/$name.lsan.err"
    lsan_rc=$?
    run_t "$MPROF" run --leaks --leaks-profile "$T/$name.pb.gz" -- "$plain" "$@" \
        >"$T/$name.mprof.out" 2>"$T/$name.mprof.err"
    mprof_rc=$?
    $REPORT "$T/$name.lsan.err" >"$T/$name.lsan.sites"
    $REPORT "$T/$name.mprof.err" >"$T/$name.mprof.sites"
    if [ "$expect" = leaks ]; then
        check "$name: LeakSanitizer reports leaks (the scenario works)" test -s "$T/$name.lsan.sites"
    else
        check "$name: LeakSanitizer reports none (the scenario works)" test ! -s "$T/$name.lsan.sites"
    fi
    if cmp -s "$T/$name.lsan.sites" "$T/$name.mprof.sites"; then
        pass "$name: the same sites, bytes, objects and kinds as LeakSanitizer ($(wc -l <"$T/$name.mprof.sites") site(s))"
    else
        fail "$name: sites differ from LeakSanitizer's"
        echo "--- LeakSanitizer"; cat "$T/$name.lsan.sites"
        echo "--- mprof"; cat "$T/$name.mprof.sites"; cat "$T/$name.mprof.err"
    fi
    check_expr "$name: exit status $mprof_rc, LeakSanitizer's $lsan_rc" "$mprof_rc == $lsan_rc"
    check "$name: the program's output is the same" cmp -s "$T/$name.lsan.out" "$T/$name.mprof.out"
}

for s in lost cycle tree mixed fork sampled ownstack; do
    compare "$s" leaks "$TARGET" "$TARGET_LSAN" "$s"
done
for s in global interior thread tls churn setenv; do
    compare "$s" clean "$TARGET" "$TARGET_LSAN" "$s"
done
compare dlopen clean "$TARGET" "$TARGET_LSAN" dlopen "$LEAKS_LIB"
compare dltls clean "$TARGET" "$TARGET_LSAN" dltls "$LEAKS_LIB"
compare container leaks "$CXX" "$CXX_LSAN" container
for s in dtor vector; do
    compare "$s" clean "$CXX" "$CXX_LSAN" "$s"
done
# Blocks a library's constructor allocated before libmprof's ran.
compare early clean "$EARLY" "$EARLY_LSAN"
# Without block headers (the address table; glibc's chunks still read).
for s in mixed thread cycle; do
    env MPROF_HEADERS=0 MPROF_LEAKS=1 LD_PRELOAD="$LIB" "$TARGET" "$s" >/dev/null 2>"$T/$s.h0.err"
    $REPORT "$T/$s.h0.err" >"$T/$s.h0.sites"
    check "MPROF_HEADERS=0, $s: the same sites as LeakSanitizer" cmp -s "$T/$s.lsan.sites" "$T/$s.h0.sites"
done
check_grep "fork: the child reports its own leak" "leak_in_child" "$T/fork.mprof.err"
check_grep "fork: the child's status says so" "child status 23" "$T/fork.mprof.out"
check_grep "cycle: both blocks indirect, as LeakSanitizer says" \
    "0 bytes in 0 blocks direct / 128 bytes in 2 blocks indirect" "$T/cycle.mprof.err"

# The sampled mode (MPROF_LEAKS=sampled, the default rate) on the same
# scenario: leak_many's 64 MiB estimated within 40% (about 128 samples:
# 4.4 standard deviations), and no false alarm: neither the blocks only
# unsampled heap blocks point to (keep_list_node, keep_array_block) nor
# the children of lost roots (indirect: the sampled mode cannot tell them).
run_t "$MPROF" run --leaks=sampled --leaks-profile "$T/sampled_mode.pb.gz" -- "$TARGET" sampled \
    >/dev/null 2>"$T/sampled_mode.err"
check_expr "sampled mode: status 23 ($?)" "$? == 23"
$REPORT "$T/sampled_mode.err" >"$T/sampled_mode.sites"
many=$(awk '$2 == "leak_many" {print $3}' "$T/sampled_mode.sites")
check_expr "sampled mode: leak_many's estimate ${many:-none} within 40% of 67108864" \
    "${many:-0} >= 0.6 * 67108864 && ${many:-0} <= 1.4 * 67108864"
for site in keep_list_node keep_array_block many_children; do
    check_no_grep "sampled mode: no false alarm at $site" "$site" "$T/sampled_mode.sites"
done
check_grep "sampled mode: said to be estimates" "estimates at the sampling rate" "$T/sampled_mode.err"
pprof_raw "$T/sampled_mode.pb.gz" "$T/sampled_mode.raw" || fail "pprof cannot read the sampled leaks profile"
check_grep "sampled mode: the profile says so" "leaks profile (sampled)" "$T/sampled_mode.raw"

# The profile, read by the real pprof and by mprof top.
"$GO" tool pprof -tags "$T/mixed.pb.gz" >"$T/tags" 2>&1 || fail "go tool pprof -tags failed"
check_grep_re "pprof: 164 bytes direct" "164\.0B.*direct" "$T/tags"
check_grep_re "pprof: 128 bytes indirect" "128\.0B.*indirect" "$T/tags"
"$GO" tool pprof -top -sample_index=leaked_objects "$T/mixed.pb.gz" >"$T/top.objects" 2>&1
check_grep_re "pprof: tree_child's 2 leaked objects" "^ *2 .*tree_child" "$T/top.objects"
"$MPROF" top "$T/mixed.pb.gz" >"$T/mtop" 2>&1 || fail "mprof top failed"
check "mprof top: tree_child first, by leaked_space" \
    sh -c "grep -A1 'flat%' '$T/mtop' | grep -q tree_child"

# A server stopped by SIGTERM: the report on the way out, the death by the
# signal kept (143), not the leak status.
"$MPROF" run --leaks --leaks-profile "$T/serve.pb.gz" -- "$TARGET" serve >"$T/serve.out" 2>"$T/serve.err" &
pid=$!
kill_at_exit "$pid"
for _ in $(seq 1 200); do
    grep -q ready "$T/serve.out" 2>/dev/null && break
    sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
rc=$?
check_expr "SIGTERM: the server dies of it ($rc)" "$rc == 143"
$REPORT "$T/serve.err" >"$T/serve.sites"
check "SIGTERM: its leak reported" sh -c "test \"\$(cat '$T/serve.sites')\" = 'direct leak_lost 100 1'"
check "SIGTERM: the leaks profile written" test -s "$T/serve.pb.gz"

# Mid-run, over HTTP, from the registry: rate 1 gets the full rule and
# finds the server's lost block while its main thread waits.
need_cmd curl
env MPROF_RATE=1 MPROF_HTTP=127.0.0.1:0 LD_PRELOAD="$LIB" "$TARGET" serve >"$T/http.out" 2>"$T/http.err" &
pid=$!
kill_at_exit "$pid"
port=
for _ in $(seq 1 200); do
    port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$T/http.err" | head -1)
    [ -n "$port" ] && grep -q ready "$T/http.out" 2>/dev/null && break
    sleep 0.05
done
curl -s -o "$T/http.pb.gz" "http://127.0.0.1:$port/debug/pprof/leaks"
kill -TERM "$pid"
wait "$pid"
pprof_raw "$T/http.pb.gz" "$T/http.raw" || fail "pprof cannot read /debug/pprof/leaks"
check_grep "/debug/pprof/leaks mid-run: the lost block" "100 bytes in 1 blocks direct" "$T/http.raw"

# --leaks takes no value: the program right after it is the program.
run_t "$MPROF" run --leaks "$TARGET" lost >/dev/null 2>"$T/novalue.err"
check_expr "mprof run --leaks PROG (no --): status 23 ($?)" "$? == 23"
check_grep "mprof run --leaks PROG: reported" "Direct leak of 100 byte(s)" "$T/novalue.err"

# Heap labels carried into the leaks profile.
env MPROF_LEAKS=1 MPROF_LEAKS_PROFILE="$T/labels.pb.gz" "$LABELS" >/dev/null 2>"$T/labels.err"
check_expr "labels: status 23 ($?)" "$? == 23"
"$GO" tool pprof -tags "$T/labels.pb.gz" >"$T/labels.tags" 2>&1
check_grep_re "labels: the leak under tenant=acme" "123\.0B.*acme" "$T/labels.tags"
check_grep_re "labels: and kind=direct" "123\.0B.*direct" "$T/labels.tags"

# The exit code setting.
run_t "$MPROF" run --leaks --leaks-exitcode 7 -- "$TARGET" lost >/dev/null 2>&1
check_expr "--leaks-exitcode 7: status $?" "$? == 7"
env MPROF_LEAKS=1 MPROF_LEAKS_EXITCODE=0 LD_PRELOAD="$LIB" "$TARGET" lost >/dev/null 2>"$T/ec0.err"
rc=$?
check_expr "MPROF_LEAKS_EXITCODE=0: the program's own status ($rc)" "$rc == 0"
check_grep "MPROF_LEAKS_EXITCODE=0: still reported" "Direct leak of 100 byte(s)" "$T/ec0.err"
env MPROF_LEAKS=1 LD_PRELOAD="$LIB" "$TARGET" lost >/dev/null 2>&1
check_expr "MPROF_LEAKS=1 alone: status 23 ($?)" "$? == 23"

# Suppressions: a comment, a leak: prefix, a wildcard.
printf '# the tree is known\nleak:tree_*\n\n' >"$T/supp"
run_t "$MPROF" run --leaks --leaks-suppressions "$T/supp" -- "$TARGET" mixed >/dev/null 2>"$T/supp.err"
check_expr "suppressed tree: still 23 for leak_lost ($?)" "$? == 23"
$REPORT "$T/supp.err" >"$T/supp.sites"
check "suppressed tree: only leak_lost reported" sh -c "test \"\$(cat '$T/supp.sites')\" = 'direct leak_lost 100 1'"
check_grep_re "suppressed tree: counted under Suppressions used" "^ *3  *192 tree_\*" "$T/supp.err"
printf 'leak:tree_*\nleaks_target.c\n' >"$T/supp2"
run_t "$MPROF" run --leaks --leaks-suppressions "$T/supp2" -- "$TARGET" mixed >/dev/null 2>"$T/supp2.err"
check_expr "everything suppressed (a file pattern): status 0 ($?)" "$? == 0"
check_grep "everything suppressed: no leaks said" "no leaks" "$T/supp2.err"
env MPROF_LEAKS=1 MPROF_LEAKS_SUPPRESSIONS="$T/nonexistent" LD_PRELOAD="$LIB" "$TARGET" global \
    >/dev/null 2>"$T/nosupp.err"
check_grep "a missing suppressions file is said" "cannot read MPROF_LEAKS_SUPPRESSIONS" "$T/nosupp.err"

# The minimum size, per allocation stack: leak_lost's 100 bytes are
# reported, tree_root's 64 and each tree_child call's 64 are not.
run_t "$MPROF" run --leaks --leaks-min-bytes 65 -- "$TARGET" mixed >/dev/null 2>"$T/min.err"
check_expr "--leaks-min-bytes 65: leak_lost's 100 bytes still count ($?)" "$? == 23"
$REPORT "$T/min.err" >"$T/min.sites"
check "--leaks-min-bytes 65: only leak_lost" sh -c "test \"\$(cat '$T/min.sites')\" = 'direct leak_lost 100 1'"
run_t "$MPROF" run --leaks --leaks-min-bytes 200 -- "$TARGET" lost >/dev/null 2>&1
check_expr "--leaks-min-bytes 200: the 100-byte leak does not fail the run ($?)" "$? == 0"

# A bad value: said once, no check, the program runs.
env MPROF_LEAKS=yes LD_PRELOAD="$LIB" "$TARGET" lost >/dev/null 2>"$T/bad.err"
check_expr "MPROF_LEAKS=yes: the program's status ($?)" "$? == 0"
check_grep "MPROF_LEAKS=yes: said" "MPROF_LEAKS=yes is not 1, full or sampled" "$T/bad.err"
check_no_grep "MPROF_LEAKS=yes: no report" "leak of" "$T/bad.err"

# Real programs: Debian's sqlite3 clean; python3 clean with its own
# allocator turned off (docs/leaks.md: pymalloc's arenas are mmap'd, not
# scanned, as LeakSanitizer does not scan them).
need_cmd sqlite3
printf 'create table t(a, b);\ninsert into t values (1, "x"), (2, "y");\nselect count(*), group_concat(b) from t;\n' >"$T/s.sql"
run_t "$MPROF" run --leaks -- sqlite3 :memory: <"$T/s.sql" >"$T/sq.out" 2>"$T/sq.err"
check_expr "sqlite3: status 0 ($?)" "$? == 0"
check_grep "sqlite3: its output" "2|x,y" "$T/sq.out"
check_grep "sqlite3: no leaks" "no leaks" "$T/sq.err"
if [ -x /usr/bin/python3 ]; then
    run_t env PYTHONMALLOC=malloc "$MPROF" run --leaks -- /usr/bin/python3 -c \
        'import json, re, sqlite3; print(len(json.dumps({"a": [1, 2, 3]})))' >"$T/py.out" 2>"$T/py.err"
    check_expr "python3 (PYTHONMALLOC=malloc): status 0 ($?)" "$? == 0"
    check_grep "python3: no leaks" "no leaks" "$T/py.err"
fi
finish
