#!/bin/sh
# The debug-info cache (src/symbolize/debug_cache.c) under a real program
# at rate 1, whose profile names libc's lines (libc6-dbg's compressed
# DWARF): with the cache made, used, corrupt, holding another file, in an
# unwritable place, filled by two processes at once, and off, the profile's
# functions and lines are the same as without the cache.
# Usage: symbol_cache.sh LIBMPROF PROGRAM
. "$(dirname "$0")/../lib/testlib.sh"
need_go
LIB=$1
PROG=$2

# run NAME CACHE: the program's heap profile as `pprof -top -lines` rows.
run() {
    env MPROF_RATE=1 MPROF_SYMBOL_CACHE="$2" MPROF_HEAP="$T/$1.pb.gz" LD_PRELOAD="$LIB" \
        "$PROG" 2000 >/dev/null 2>"$T/$1.err" || fail "$1: the program failed"
    pprof_lines "$T/$1.top" "$T/$1.pb.gz" || { fail "$1: pprof cannot read it"; return; }
    sed -n '/flat%/,$p' "$T/$1.top" >"$T/$1.rows"
}

same_as_off() { # NAME
    if cmp -s "$T/off.rows" "$T/$1.rows"; then pass "$1: same functions and lines"; else
        fail "$1: the profile differs from the one without the cache:"
        diff "$T/off.rows" "$T/$1.rows" | head -10
    fi
}

run off off
check_grep "libc frames have lines without the cache (libc6-dbg)" "strdup.c" "$T/off.rows"
check "off makes no cache" test ! -e "$HOME/.cache/mprof"

C=$T/cache
run made "$C"
same_as_off made
f=$(find "$C/debug" -name '*.debug' | head -1)
check "the cache holds a decompressed copy named by build id" test -s "$f"
if [ -n "$f" ]; then
    # The flags column of each section row (readelf's key lists C too).
    check "no compressed section left in it" sh -c \
        "! readelf -S -W '$f' 2>/dev/null | grep -E '^ +\\[ *[0-9]+\\]' | grep -qE ' [WAXMSILOGTEx]*C[WAXMSILOGTEx]* +[0-9]+ +[0-9]+ +[0-9]+\$'"
fi
check "no temporary file left" sh -c "! find '$C' -name '*.tmp.*' | grep -q ."

run used "$C"
same_as_off used

# Corrupt: truncated to its first bytes; then another ELF file in its place.
head -c 100 "$f" >"$T/trunc" && cp "$T/trunc" "$f"
run corrupt "$C"
same_as_off corrupt
check "a corrupt copy is replaced" test "$(wc -c <"$f")" -gt 100000
cp /bin/true "$f"
run other "$C"
same_as_off other
check "another file under the name is replaced" sh -c "! cmp -s /bin/true '$f'"

# Unwritable: a folder under a regular file cannot be made, even by root.
run unwritable /dev/null/mprof
same_as_off unwritable
check_grep "one notice when the cache cannot be written" "mprof: cannot keep decompressed debug info" "$T/unwritable.err"
check "said once" test "$(grep -c 'cannot keep decompressed' "$T/unwritable.err")" -eq 1

# The default place: $XDG_CACHE_HOME/mprof, else ~/.cache/mprof.
env -u MPROF_SYMBOL_CACHE XDG_CACHE_HOME="$T/xdg" MPROF_RATE=1 MPROF_HEAP="$T/xdg.pb.gz" \
    LD_PRELOAD="$LIB" "$PROG" 2000 >/dev/null 2>&1
check "by default under \$XDG_CACHE_HOME/mprof" sh -c "find '$T/xdg/mprof/debug' -name '*.debug' | grep -q ."
env -u MPROF_SYMBOL_CACHE -u XDG_CACHE_HOME MPROF_RATE=1 MPROF_HEAP="$T/home.pb.gz" \
    LD_PRELOAD="$LIB" "$PROG" 2000 >/dev/null 2>&1
check "else under ~/.cache/mprof" sh -c "find '$HOME/.cache/mprof/debug' -name '*.debug' | grep -q ."

# Two processes filling an empty cache at once.
C2=$T/cache2
( run twin1 "$C2" ) & p1=$!
( run twin2 "$C2" ) & p2=$!
wait $p1; wait $p2
# run in a subshell counts its failures there: compare here instead.
for n in twin1 twin2; do
    pprof_lines "$T/$n.top" "$T/$n.pb.gz" && sed -n '/flat%/,$p' "$T/$n.top" >"$T/$n.rows"
    same_as_off $n
done
check "the racing writers leave one valid copy" test "$(find "$C2/debug" -name '*.debug' | wc -l)" -eq 1
check "and no temporary file" sh -c "! find '$C2' -name '*.tmp.*' | grep -q ."
finish
