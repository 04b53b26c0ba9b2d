#!/bin/sh
# Labeled block and mutex profiles (contention_labels.c): rounds of one
# wait on one mutex, labeled request=upload or request=download on both
# threads.  Under each label, the waiter's line in the block profile and
# the holder's unlock line in the mutex profile must hold the wait the
# program measured for that label (within 15%, as contention_mutex.sh),
# `go tool pprof -tags` must list the labels, and `mprof top --tags` and
# `--tag` must print what pprof prints.
#
# usage: contention_labels.sh TARGET TARGET_SOURCE MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
BIN=$1
SRC=$2
MPROF=$3

timeout 120 env MPROF_BLOCK="$T/block.pb.gz" MPROF_MUTEX="$T/mutex.pb.gz" "$BIN" \
    "$T/block.txt" >"$T/out.txt" 2>"$T/err.txt" || { cat "$T/err.txt"; die "$BIN failed"; }
cat "$T/out.txt"
ms() { awk -v k="$1_ms" '$1 == k { print $2 }' "$T/out.txt"; }
LOCK_LINE=$(line_of "$SRC" labeled_lock)
UNLOCK_LINE=$(line_of "$SRC" labeled_unlock)

for request in upload download; do
    truth=$(ms $request)
    pprof_lines "$T/b.$request" "$T/block.pb.gz" -unit=ms "-tagfocus=request=$request"
    pprof_lines "$T/m.$request" "$T/mutex.pb.gz" -unit=ms "-tagfocus=request=$request"
    b=$(flat_at "$T/b.$request" labeled_waiter "$LOCK_LINE")
    m=$(flat_at "$T/m.$request" labeled_holder "$UNLOCK_LINE")
    check_expr "block, request=$request: the waiter's line holds ${b} ms of the ${truth} ms waited (15%)" \
        "$b >= 0.85 * $truth && $b <= 1.15 * $truth"
    check_expr "mutex, request=$request: the holder's unlock line holds ${m} ms of the ${truth} ms (15%)" \
        "$m >= 0.85 * $truth && $m <= 1.15 * $truth"
done
for kind in block mutex; do
    "$GO" tool pprof -tags "$T/$kind.pb.gz" >"$T/$kind.tags" 2>&1
    cat "$T/$kind.tags"
    check_grep "$kind: pprof -tags lists upload" "upload" "$T/$kind.tags"
    check_grep "$kind: pprof -tags lists download" "download" "$T/$kind.tags"
    same_as_pprof "$MPROF" "$T/$kind.pb.gz" request=upload request=download
done
# The text form (debug=1) carries them as Go prints a goroutine's labels.
check_grep "block text: the labels line" '# labels: {"request":"upload"}' "$T/block.txt"
check_grep "block text: the other label" '# labels: {"request":"download"}' "$T/block.txt"
finish
