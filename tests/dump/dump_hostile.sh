#!/bin/sh
# `mprof dump` on dumps written byte by byte (dump_craft.c, issue 17):
# the valid one printed and converted, estimates beyond int64 refused with
# one message instead of a negative total, and a gigabyte that is no dump
# refused from its first bytes, within a time and a memory limit.
#
# Usage: dump_hostile.sh MPROF DUMP_CRAFT
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
CRAFT=$2
"$CRAFT" "$T" || die "cannot write the crafted dumps"

# dump SECONDS KIB ARGS...: mprof dump under both limits; STATUS, $T/out,
# $T/err.
dump() {
    _secs=$1 _kib=$2
    shift 2
    sh -c "ulimit -v $_kib; exec timeout $_secs \"\$@\"" sh "$MPROF" dump "$@" \
        >"$T/out" 2>"$T/err"
    STATUS=$?
}

for f in valid.dump valid.dump.gz; do
    dump 5 300000 "$T/$f"
    check "$f: printed (status $STATUS)" test "$STATUS" = 0
    check_grep "$f: the in-use estimate of its buckets" \
        "in use: an estimated 6 objects, 25000 bytes" "$T/out"
done
dump 5 300000 --pprof "$T/valid.pb.gz" "$T/valid.dump"
check "valid.dump: converted" test "$STATUS" = 0
"$MPROF" top --sample-index inuse_space "$T/valid.pb.gz" >"$T/top" 2>&1
check_grep "valid.dump's profile: the total in use" "of 24.41kB total" "$T/top"

# Estimates whose sum passes int64 (5e18 bytes, twice), one past it alone
# (1e30 objects), a freed estimate of 1e300 bytes: refused, one line.
for f in huge saturated freed; do
    for mode in print pprof; do
        if [ $mode = print ]; then
            dump 5 300000 "$T/$f.dump"
        else
            dump 5 300000 --pprof "$T/$f.pb.gz" "$T/$f.dump"
        fi
        check "$f.dump ($mode): exit 1 (status $STATUS)" test "$STATUS" = 1
        check "$f.dump ($mode): one 'mprof: ' line" \
            test "$(wc -l <"$T/err")" = 1 -a "$(grep -c '^mprof: ' "$T/err")" = 1
        check_grep "$f.dump ($mode): says the estimates pass 2^63" "add up to more than 2^63" \
            "$T/err"
        check "$f.dump ($mode): nothing negative printed" \
            bash -c "! grep -q -- '-[0-9]' '$T/out'"
    done
    check "$f.dump: no profile written" test ! -e "$T/$f.pb.gz"
done

# 1.2 GB that is no dump (a sparse file; from a pipe too): refused after
# its first bytes, not after reading all of it (was: 4 s and 1.2 GB).
truncate -s 1200M "$T/zeros" || die "cannot make a sparse file"
export MPROF_READ_LIMIT_MB=2048
dump 2 100000 "$T/zeros"
check "1.2 GB file, no dump: exit 1 within 2 s and 100 MB (status $STATUS)" test "$STATUS" = 1
check_grep "1.2 GB file: says it is not a dump" "not an mprof heap dump" "$T/err"
sh -c "ulimit -v 100000; head -c 1200M /dev/zero |
    timeout 2 \"\$0\" dump - >/dev/null 2>\"\$1\"; echo \$? >\"\$1.status\"" "$MPROF" "$T/err"
check "1.2 GB on a pipe: exit 1 within 2 s and 100 MB (status $(cat "$T/err.status"))" \
    test "$(cat "$T/err.status")" = 1
check_grep "1.2 GB on a pipe: says it is not a dump" "not an mprof heap dump" "$T/err"
unset MPROF_READ_LIMIT_MB
printf 'not a dump at all, gzipped' | gzip -c >"$T/text.gz"
dump 5 100000 "$T/text.gz"
check_grep "gzipped text: not a dump, from its first bytes" "not an mprof heap dump" "$T/err"
# With the default limit the file's size alone refuses it.
dump 2 100000 "$T/zeros"
check_grep "1.2 GB with the default limit: says how to raise it" "MPROF_READ_LIMIT_MB=" "$T/err"
rm -f "$T/zeros"
finish
