#!/bin/sh
# Debian's sqlite3 (a program nobody here wrote) on a workload of 300,000
# rows, run plain, under `mprof run` (default rate) and under plain
# LD_PRELOAD (MPROF_RATE=4096).  Checks:
#  - stdout, exit status and the resulting database are identical to the
#    run without mprof; stderr differs only by mprof's own "wrote" line;
#  - each profile is valid for `go tool pprof -raw`;
#  - sqlite3's exported entry points appear by name in `go tool pprof
#    -top -cum -sample_index=alloc_space`: sqlite3_step at the default
#    rate; sqlite3_step, sqlite3_prepare_v2 and sqlite3_exec at 4096;
#  - no location in libsqlite3 carries a name whose symbol does not
#    contain its address (Debian's library is stripped: static functions
#    must show as library + address, never as the preceding symbol).
# Usage: realprog_sqlite.sh LIBMPROF MPROF_CLI
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
CLI=$2
SQLITE=${MPROF_SQLITE:-sqlite3}
command -v "$SQLITE" >/dev/null 2>&1 || { echo "FAIL: sqlite3 not found (make deps installs it)"; exit 1; }
SO=$(ldd "$(command -v "$SQLITE")" | awk '/libsqlite3/ {print $3}')
SO=$(readlink -f "$SO")
[ -f "$SO" ] || { echo "FAIL: cannot find libsqlite3 used by $SQLITE"; exit 1; }

cat >"$T/workload.sql" <<'SQL'
PRAGMA cache_size = -16000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
INSERT INTO t(k, s, v) SELECT x % 1000, printf('row-%d-%s', x, hex(x * 7919)), x * 0.5 FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_s ON t(s);
SELECT count(*), sum(k), round(avg(v), 3) FROM t;
SELECT k, count(*), sum(v) FROM t GROUP BY k ORDER BY k LIMIT 5;
SELECT count(DISTINCT s) FROM t;
SELECT s FROM t WHERE k = 42 ORDER BY s DESC LIMIT 3;
UPDATE t SET v = v * 2 WHERE k < 100;
DELETE FROM t WHERE k >= 900;
SELECT count(*), round(sum(v), 1) FROM t;
SELECT group_concat(s, ',') FROM (SELECT s FROM t WHERE id % 50000 = 0);
CREATE TABLE u AS SELECT k, group_concat(id) AS ids FROM t GROUP BY k;
SELECT count(*), sum(length(ids)) FROM u;
SELECT k, length(ids) FROM u ORDER BY length(ids) DESC, k LIMIT 3;
SELECT * FROM no_such_table;
SQL

# The last statement fails on purpose: an error message and a non-zero
# exit status that mprof must pass through unchanged.
run_t env -u LD_PRELOAD "$SQLITE" "$T/plain.db" <"$T/workload.sql" >"$T/plain.out" 2>"$T/plain.err"
plain_rc=$?
[ "$plain_rc" -ne 0 ] || fail "the plain run should fail on its last statement"
grep -q '^300000|149850000|75000.25$' "$T/plain.out" || fail "unexpected plain output: $(head -3 "$T/plain.out")"
env -u LD_PRELOAD "$SQLITE" "$T/plain.db" .dump | md5sum >"$T/plain.md5"

compare_run() { # NAME RC
    name=$1; rc=$2
    [ "$rc" = "$plain_rc" ] || fail "$name: exit status $rc, without mprof $plain_rc"
    cmp -s "$T/plain.out" "$T/$name.out" || { fail "$name: output differs"; diff "$T/plain.out" "$T/$name.out" | head; }
    grep -v '^mprof: wrote heap profile' "$T/$name.err" >"$T/$name.err2"
    cmp -s "$T/plain.err" "$T/$name.err2" || { fail "$name: stderr differs"; diff "$T/plain.err" "$T/$name.err2" | head; }
    env -u LD_PRELOAD "$SQLITE" "$T/$name.db" .dump | md5sum | cmp -s - "$T/plain.md5" ||
        fail "$name: the database differs from the plain run's"
}

check_profile() { # NAME FUNCS...
    name=$1; shift
    f="$T/$name.pb.gz"
    [ -s "$f" ] || { fail "$name: no profile written"; return; }
    pprof_raw "$f" "$f.raw" || { fail "$name: go tool pprof -raw rejects the profile"; return; }
    pprof -top -cum -nodefraction=0 -nodecount=100000 -sample_index=alloc_space "$f" >"$f.top" 2>"$f.top.err" ||
        fail "$name: go tool pprof -top failed"
    for fn in "$@"; do
        grep -q " $fn\$" "$f.top" && pass "$name: $fn by name" || fail "$name: $fn not in go tool pprof -top -cum"
    done
    if out=$(pyq check-symbols "$f.raw" libsqlite3.so "$SO"); then
        pass "$name: $(echo "$out" | tail -1)"
    else
        fail "$name: misnamed frames in libsqlite3:"; echo "$out" | head -20
    fi
}

run_t "$CLI" run --heap "$T/run.pb.gz" -- "$SQLITE" "$T/run.db" <"$T/workload.sql" >"$T/run.out" 2>"$T/run.err"
compare_run run $?
check_profile run sqlite3_step

run_t env MPROF_RATE=4096 MPROF_HEAP="$T/preload.pb.gz" LD_PRELOAD="$LIB" \
    "$SQLITE" "$T/preload.db" <"$T/workload.sql" >"$T/preload.out" 2>"$T/preload.err"
compare_run preload $?
check_profile preload sqlite3_step sqlite3_prepare_v2 sqlite3_exec
finish
