#!/bin/sh
# Heap labels (mprof_labels_push / mprof_with_labels): the heap profile of
# labels_target splits buffer_for's memory by request type within 12% at
# the default rate (48 MiB upload, 16 MiB download), exactly at rate 1; a
# block freed by an unlabeled thread leaves its labeled bucket; the nested
# tenant label is on half the uploads; `go tool pprof -tags` lists them,
# and `mprof top --tags` / `--tag` print what pprof prints.
# Usage: labels_check.sh LABELS_TARGET MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
PROG=$1
MPROF=$2
MIB=1048576

inuse_with() { # PROFILE TAGFOCUS: bytes in use shown by pprof under the focus
    "$GO" tool pprof -raw -tagfocus="$2" "$1" >"$T/focus.raw" 2>"$T/focus.err" || {
        cat "$T/focus.err"; echo 0; return; }
    pyq total "$T/focus.raw" inuse_space buffer_for
}

for rate in default 1; do
    if [ "$rate" = default ]; then env=""; lo=0.88; hi=1.12; else env="MPROF_RATE=1"; lo=1; hi=1; fi
    # shellcheck disable=SC2086
    env $env MPROF_HEAP="$T/h.$rate.pb.gz" "$PROG" >"$T/out" 2>"$T/err" || fail "rate $rate: the program failed"
    up=$(inuse_with "$T/h.$rate.pb.gz" request=upload)
    down=$(inuse_with "$T/h.$rate.pb.gz" request=download)
    acme=$(inuse_with "$T/h.$rate.pb.gz" tenant=acme)
    check_expr "rate $rate: request=upload holds 48 MiB ($up)" "$up >= $lo * 48 * $MIB && $up <= $hi * 48 * $MIB"
    check_expr "rate $rate: request=download holds 16 MiB ($down)" "$down >= $lo * 16 * $MIB && $down <= $hi * 16 * $MIB"
    check_expr "rate $rate: tenant=acme holds 24 MiB ($acme)" "$acme >= $lo * 24 * $MIB && $acme <= $hi * 24 * $MIB"
done
"$GO" tool pprof -tags "$T/h.1.pb.gz" >"$T/tags" 2>&1
check_grep "pprof -tags lists request" "request" "$T/tags"
check_grep "pprof -tags lists upload" "upload" "$T/tags"
check_grep "pprof -tags lists acme" "acme" "$T/tags"
same_as_pprof "$MPROF" "$T/h.1.pb.gz" request=upload tenant=acme request=^download$ "tenant=^acm$"
same_as_pprof "$MPROF" "$T/h.default.pb.gz" request=download
finish
