#!/bin/bash
# What users pay: whole-process costs of running under libmprof, next to
# the other heap profilers a user could pick instead, and what a profile
# costs to get out of a running process.
#
# 1. Whole process, heap profile written at exit (MPROF_HEAP): the churn
#    workload (bench/heap_churn) and a real program, Debian's sqlite3
#    running bench/user_cost.sql (200,000 rows with text and blobs in one
#    transaction, two indexes, group-by and join queries, in memory).
#    Targets: default rate <= 1.05x, rate 1 <= 3x.
# 2. Peers in the same rounds, each against its own allocator unprofiled:
#    jemalloc's profiler (prof:true, lg_prof_sample:19 = 512 KiB, profile
#    at exit), tcmalloc's sampling (TCMALLOC_SAMPLE_PARAMETER=524288; it
#    writes nothing by itself), gperftools' HEAPPROFILE and heaptrack (both
#    record every allocation), and mprof at the default rate and at rate 1.
#    Smaller workloads (PEER_OPS, PEER_ROWS): HEAPPROFILE takes ~15 s on
#    the full sqlite3 script.  No targets; the output each tool leaves.
#    jemalloc's row says so when the library was built without profiling
#    (config.prof in its stats).
# 3. Latency of getting a profile out: mprof_write_heap_profile_fd to
#    /dev/null inside one process holding 20,000 sampled blocks from 36
#    call stacks (bench/user_cost.c, rate 1): the first write, the repeated
#    ones, and writes after a new call stack appeared (in the program's own
#    code, or allocated inside libc).  Then every endpoint the index
#    /debug/pprof/ lists scraped 20 times with curl from a process with
#    MPROF_HTTP=127.0.0.1:0, the first scrape apart; profile?seconds=1
#    apart, as the time beyond its 1 s window.  Targets: repeated write or
#    scrape <= 5 ms, first write <= 20 ms.
# 4. Threads: the default-rate ratio at 1, 2, 8 and 32 threads of the
#    churn workload, the same total operations and live blocks split
#    across the threads.  Target: flat, within 5% of the 1-thread ratio.
# 5. Memory: the profiler's own memory per live sampled block, from
#    mprof_stats_read (its arenas and live table; profiler_bytes) plus the
#    C library heap beyond the plain run (mallinfo2: the per-block header
#    sits in the block), for the churn workload stopped before its final
#    frees and for 200,000 live 64-byte blocks; with headers and with
#    MPROF_HEADERS=0; and VmRSS / VmHWM against the plain run.
#    Target: <= 64 bytes per live sampled block either way.  The
#    profiler's arenas grow in large steps: with the few hundred samples
#    of the default rate the step, not the block, decides; the rate-1 rows
#    (8,192 and 200,000 samples) give the per-block cost.
#
# Method, as bench/heap_bench.sh: each round runs every variant once, in an
# order rotated by one each round, and divides each time by that of the
# variant's own baseline in the same round; a table gives the median and
# quartiles of those per-round ratios.  Times are whole-process wall times
# (bash's EPOCHREALTIME around the run: start-up, exit and the profile
# written at exit included).
#
# usage: user_cost_bench.sh BUILD_DIR
#   env: ROUNDS=15 (table 1), PEER_ROUNDS=7, THREAD_ROUNDS=21,
#   OPS=1000000 (per thread, 2 threads), ROWS=200000, PEER_OPS=300000,
#   PEER_ROWS=50000, SCRAPES=20, WRITES=20, KEEP=1 (keep the temp dir),
#   TABLES="1 2 3 4 5"; JEMALLOC, TCMALLOC, HEAPTRACK, SQLITE: other paths.
#   About 3.5 minutes in all on the 2-core machine.
set -u
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$BUILD/libmprof.so
CHURN=$BUILD/bench/heap_churn
HELPER=$BUILD/bench/user_cost
SQL=$HERE/user_cost.sql
SQLITE=${SQLITE:-/usr/bin/sqlite3}
JE=${JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
TC=${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4}
HEAPTRACK=${HEAPTRACK:-$(command -v heaptrack || true)}
ROUNDS=${ROUNDS:-15}
PEER_ROUNDS=${PEER_ROUNDS:-7}
THREAD_ROUNDS=${THREAD_ROUNDS:-21}
OPS=${OPS:-1000000}
ROWS=${ROWS:-200000}
PEER_OPS=${PEER_OPS:-300000}
PEER_ROWS=${PEER_ROWS:-50000}
SCRAPES=${SCRAPES:-20}
WRITES=${WRITES:-20}
TABLES=${TABLES:-1 2 3 4 5}

for f in "$LIB" "$CHURN" "$HELPER"; do
    [ -e "$f" ] || { echo "bench: user_cost: $f not built (make all)"; exit 1; }
done
[ -f "$SQL" ] || { echo "bench: user_cost: $SQL missing"; exit 1; }
SQLITE_OK=1
[ -x "$SQLITE" ] || { SQLITE_OK=0; echo "bench: user_cost: $SQLITE not installed (scripts/install-deps.sh): sqlite3 rows left out"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprof-user-cost.XXXXXX")
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "(kept $WORK)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
quartiles() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.3f-%.3f", a[int((NR+3)/4)], a[int((3*NR+3)/4)]; else printf "-"}'; }
minmedmax() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.2f %.2f %.2f", a[1], a[int((NR+1)/2)], a[NR]; else printf "- - -"}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else printf "nan" }'; }
human() { awk -v b="$1" 'BEGIN { if (b == "" || b < 0) print "-"; else if (b < 10240) printf "%d B", b; else if (b < 10485760) printf "%.0f KiB", b / 1024; else printf "%.1f MiB", b / 1048576 }'; }
bytes_of() { # files... -> total size in bytes (0 when none)
    local n=0 f s
    for f in "$@"; do [ -f "$f" ] && s=$(stat -c %s "$f") && n=$((n + s)); done
    echo $n
}

# ------------------------------------------------------------ variants
# A variant is a command prefix and an output directory; run_variant V W
# runs workload W (churn | sqlite) under it, sets $last to its wall time
# in seconds and $outsize to the bytes of profile it left, and returns
# non-zero (with a bench: line, once per variant) when the run failed or a
# profiler that should have written a file wrote none.
declare -A failed_note
W_CHURN_ARGS="2 $OPS 4096"
W_SQL_ROWS=$ROWS
workload_cmd() { # W -> sets wcmd (array) and win (stdin)
    case $1 in
    churn) read -ra wcmd <<<"$CHURN $W_CHURN_ARGS"; win=/dev/null ;;
    sqlite) wcmd=("$SQLITE" -batch -cmd ".parameter set :rows $W_SQL_ROWS"); win=$SQL ;;
    esac
}
run_variant() { # VARIANT WORKLOAD
    local v=$1 w=$2 d=$WORK/out/$1 pre=() expect="" rc t0 t1 f
    rm -rf "$d"
    mkdir -p "$d"
    case $v in
    plain) pre=(env MPROF_UNUSED=1) ;;
    mprof) pre=(env LD_PRELOAD="$LIB" MPROF_HEAP="$d/heap.pb.gz"); expect="$d/heap.pb.gz" ;;
    mprof1) pre=(env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HEAP="$d/heap.pb.gz"); expect="$d/heap.pb.gz" ;;
    je) pre=(env LD_PRELOAD="$JE") ;;
    jeprof) pre=(env LD_PRELOAD="$JE" MALLOC_CONF="prof:true,lg_prof_sample:19,prof_final:true,prof_prefix:$d/jeprof"); expect="$d/jeprof.*.heap" ;;
    tc) pre=(env LD_PRELOAD="$TC") ;;
    tcsample) pre=(env LD_PRELOAD="$TC" TCMALLOC_SAMPLE_PARAMETER=524288) ;;
    tchp) pre=(env LD_PRELOAD="$TC" HEAPPROFILE="$d/hp"); expect="$d/hp.*.heap" ;;
    heaptrack) pre=("$HEAPTRACK" -o "$d/ht"); expect="$d/ht.*" ;;
    *) echo "bench: user_cost: unknown variant $v"; return 1 ;;
    esac
    workload_cmd "$w"
    t0=$EPOCHREALTIME
    "${pre[@]}" "${wcmd[@]}" <"$win" >"$WORK/run.out" 2>"$WORK/run.err"
    rc=$?
    t1=$EPOCHREALTIME
    last=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    # shellcheck disable=SC2086
    outsize=$(bytes_of $expect)
    # shellcheck disable=SC2086
    outfiles=$(for f in $expect; do [ -f "$f" ] && echo; done | wc -l)
    if [ $rc -ne 0 ] || { [ -n "$expect" ] && [ "$outsize" -eq 0 ]; }; then
        if [ -z "${failed_note[$v/$w]:-}" ]; then
            failed_note[$v/$w]="rc $rc: $(grep -v '^$' "$WORK/run.err" | head -n 1 | cut -c1-100)"
            echo "bench: user_cost: $v on $w failed (${failed_note[$v/$w]}); its runs are left out"
        fi
        return 1
    fi
    return 0
}

# rounds ROUNDS WORKLOAD "VARIANT:BASELINE ..." : fills times[W/V],
# ratios[W/V] (per-round ratio to the baseline's run of the same round),
# sizes[W/V] (last output size).
declare -A times ratios sizes nfiles
rounds() {
    local n=$1 w=$2 i k v b spec
    local -a pairs order=()
    read -ra pairs <<<"$3"
    for spec in "${pairs[@]}"; do order+=("${spec%%:*}"); done
    local m=${#order[@]}
    for v in "${order[@]}"; do unset "times[$w/$v]" "ratios[$w/$v]" "sizes[$w/$v]" "nfiles[$w/$v]"; done
    for ((i = 0; i < n; i++)); do
        declare -A this=()
        for ((k = 0; k < m; k++)); do
            v=${order[(i + k) % m]}
            if run_variant "$v" "$w"; then
                this[$v]=$last
                times[$w/$v]+="$last "
                sizes[$w/$v]=$outsize
                nfiles[$w/$v]=$outfiles
            fi
        done
        for spec in "${pairs[@]}"; do
            v=${spec%%:*} b=${spec#*:}
            [ "$v" = "$b" ] && continue
            [ -n "${this[$v]:-}" ] && [ -n "${this[$b]:-}" ] &&
                ratios[$w/$v]+="$(div "${this[$v]}" "${this[$b]}") "
        done
        unset this
    done
}
# row_cells W V: median time, ratio, quartiles
ratio_cell() { local r; r=$(echo "${ratios[$1]:-}" | median); [ "$r" = nan ] && echo "n/a" || printf "%.3fx" "$r"; }

# ------------------------------------------------------------ table 1
table1() {
    echo "1. Whole process, heap profile written at exit, against the plain run"
    printf "%-9s %-13s %9s %8s %13s %11s %8s\n" workload variant "median s" ratio "(quartiles)" "profile" target
    local ws="churn" w v
    ((SQLITE_OK)) && ws+=" sqlite"
    for w in $ws; do
        rounds "$ROUNDS" "$w" "plain:plain mprof:plain mprof1:plain"
        for v in plain mprof mprof1; do
            case $v in plain) label="plain"; tgt="-" ;; mprof) label="default rate"; tgt="<=1.05x" ;; mprof1) label="rate 1"; tgt="<=3x" ;; esac
            if [ $v = plain ]; then r="1" q="" sz="-"; else r=$(ratio_cell "$w/$v"); q="($(echo "${ratios[$w/$v]:-}" | quartiles))"; sz=$(human "${sizes[$w/$v]:-}"); fi
            printf "%-9s %-13s %9s %8s %13s %11s %8s\n" "$w" "$label" "$(echo "${times[$w/$v]:-}" | median)" "$r" "$q" "$sz" "$tgt"
        done
    done
    echo "(churn: heap_churn $W_CHURN_ARGS; sqlite: sqlite3 < bench/user_cost.sql with $ROWS rows;"
    echo " ratio: median over $ROUNDS rounds, in rotated order, of each run's wall time over the plain run of its round)"
}

# ------------------------------------------------------------ table 2
table2() {
    local je_note="" tc_note="" ht_note=""
    if [ ! -f "$JE" ]; then
        je_note="n/a: $JE not installed (libjemalloc2)"
    elif ! LD_PRELOAD=$JE MALLOC_CONF=stats_print:true /bin/true 2>&1 | grep -q 'config.prof: true'; then
        je_note="n/a: built without profiling"
    fi
    [ -f "$TC" ] || tc_note="n/a: $TC not installed (libgoogle-perftools4)"
    [ -n "$HEAPTRACK" ] && [ -x "$HEAPTRACK" ] || ht_note="n/a: heaptrack not installed"
    [ -n "$je_note" ] && echo "bench: user_cost: jemalloc: $je_note"
    [ -n "$tc_note" ] && echo "bench: user_cost: tcmalloc: $tc_note"
    [ -n "$ht_note" ] && echo "bench: user_cost: heaptrack: $ht_note"
    local specs="plain:plain mprof:plain mprof1:plain"
    [ -z "$je_note" ] && specs+=" je:je jeprof:je"
    [ -z "$tc_note" ] && specs+=" tc:tc tcsample:tc tchp:tc"
    [ -z "$ht_note" ] && specs+=" heaptrack:plain"

    echo "2. Peers, each against its own allocator unprofiled (same rounds)"
    printf "%-9s %-32s %-9s %9s %9s %13s %12s\n" workload "profiler" "vs" "median s" ratio "(quartiles)" "output"
    local ws="churn" w
    ((SQLITE_OK)) && ws+=" sqlite"
    local save_args=$W_CHURN_ARGS save_rows=$W_SQL_ROWS
    W_CHURN_ARGS="2 $PEER_OPS 4096" W_SQL_ROWS=$PEER_ROWS
    for w in $ws; do
        rounds "$PEER_ROUNDS" "$w" "$specs"
        local v label vs note r q sz
        for v in plain mprof mprof1 je jeprof tc tcsample tchp heaptrack; do
            note=""
            case $v in
            plain) label="none (glibc malloc)"; vs="-" ;;
            mprof) label="mprof, default rate"; vs=glibc ;;
            mprof1) label="mprof, rate 1"; vs=glibc ;;
            je) label="none (jemalloc)"; vs="-"; note=$je_note ;;
            jeprof) label="jemalloc prof, 512 KiB"; vs=jemalloc; note=$je_note ;;
            tc) label="none (tcmalloc)"; vs="-"; note=$tc_note ;;
            tcsample) label="tcmalloc sampling, 512 KiB"; vs=tcmalloc; note=$tc_note ;;
            tchp) label="gperftools HEAPPROFILE, every"; vs=tcmalloc; note=$tc_note ;;
            heaptrack) label="heaptrack, every allocation"; vs=glibc; note=$ht_note ;;
            esac
            if [ -n "$note" ]; then
                printf "%-9s %-32s %-9s %s\n" "$w" "$label" "$vs" "$note"
                continue
            fi
            if [ -n "${failed_note[$v/$w]:-}" ] && [ -z "${times[$w/$v]:-}" ]; then
                printf "%-9s %-32s %-9s %s\n" "$w" "$label" "$vs" "n/a: failed (${failed_note[$v/$w]})"
                continue
            fi
            if [ "$vs" = "-" ]; then
                r="-" q="" sz="-"
            else
                r=$(ratio_cell "$w/$v")
                q="($(echo "${ratios[$w/$v]:-}" | quartiles))"
                sz="-"
                [ "$v" != tcsample ] && sz=$(human "${sizes[$w/$v]:-}")
                [ "${nfiles[$w/$v]:-1}" -gt 1 ] && sz="$sz/${nfiles[$w/$v]}"
                [ "$v" = tcsample ] && sz="(none)"
            fi
            printf "%-9s %-32s %-9s %9s %9s %13s %12s\n" "$w" "$label" "$vs" "$(echo "${times[$w/$v]:-}" | median)" "$r" "$q" "$sz"
        done
    done
    W_CHURN_ARGS=$save_args W_SQL_ROWS=$save_rows
    echo "(churn: heap_churn 2 $PEER_OPS 4096; sqlite: the script with $PEER_ROWS rows; output: the profile files left, /N: in N files"
    echo " (HEAPPROFILE: all its interval dumps; heaptrack: its compressed trace); median of $PEER_ROUNDS rotated rounds)"
}

# ------------------------------------------------------------ table 3
table3() {
    echo "3. Getting a profile out of a running process (20,000 sampled blocks, 36 call stacks, rate 1)"
    printf "%-36s %9s %5s %8s %8s %8s %11s\n" "what" "first ms" "n" "min ms" "med ms" "max ms" "target"
    row3() { # label first values target: first, then min/median/max of the rest
        local n
        n=$(echo "$3" | wc -w)
        # shellcheck disable=SC2046,SC2183
        printf "%-36s %9s %5s %8s %8s %8s %11s\n" "$1" "$2" "$n" $(echo "$3" | minmedmax) "$4"
    }
    local out=$WORK/write.txt firsts="" rest="" own="" libc="" k
    for k in 1 2 3; do
        if ! LD_PRELOAD=$LIB MPROF_RATE=1 "$HELPER" write 20000 "$WRITES" >"$out" 2>"$WORK/write.err"; then
            echo "bench: user_cost: profile-write helper failed: $(head -n 1 "$WORK/write.err")"
            break
        fi
        firsts+="$(awk '$1 == "write" && $2 == 0 { print $3 }' "$out") "
        rest+="$(awk '$1 == "write" && $2 > 0 { printf "%s ", $3 }' "$out")"
        own+="$(awk '$1 == "newown" { printf "%s ", $3 }' "$out")"
        libc+="$(awk '$1 == "newlibc" { printf "%s ", $3 }' "$out")"
    done
    if [ -n "$rest" ]; then
        row3 "heap write (first: median of 3)" "$(printf %.2f "$(echo "$firsts" | median)")" "$rest" "<=20 / <=5"
        row3 "  write after a new stack, own code" "-" "$own" "- / <=5"
        row3 "  write after a new stack, in libc" "-" "$libc" "- / <=5"
    fi

    # The live server: read its port from the announcement on stderr.
    local err=$WORK/serve.err port="" i
    LD_PRELOAD=$LIB MPROF_RATE=1 MPROF_HTTP=127.0.0.1:0 "$HELPER" serve 20000 300 >"$WORK/serve.out" 2>"$err" &
    SERVER_PID=$!
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9][0-9]*\)/debug/pprof/.*|\1|p' "$err" | head -n 1)
        [ -n "$port" ] && grep -q ready "$WORK/serve.out" && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "bench: user_cost: no 'mprof: serving http://127.0.0.1:PORT/debug/pprof/' line on stderr: $(head -n 1 "$err")"
    elif ! command -v curl >/dev/null; then
        echo "bench: user_cost: curl not installed: scrapes left out"
    else
        local base=http://127.0.0.1:$port/debug/pprof/ names ep url t code bad=""
        names=$(curl -s --max-time 10 "$base" | grep -o "href='[a-z_]*?debug=1'" | sed "s/href='\([a-z_]*\)?.*/\1/" | sort -u)
        [ -z "$names" ] && echo "bench: user_cost: the index $base lists no profiles"
        scrape() { # URL -> sets t (ms) and code
            local r
            r=$(curl -s -o /dev/null --max-time 30 -w '%{http_code} %{time_total}' "$1")
            code=${r% *}
            t=$(awk -v s="${r#* }" 'BEGIN { printf "%.3f", s * 1000 }')
        }
        for ep in "(index)" $names; do
            [ "$ep" = profile ] && continue
            url=$base
            [ "$ep" != "(index)" ] && url=$base$ep
            local all="" f=""
            for ((i = 0; i < SCRAPES; i++)); do
                scrape "$url"
                if [ "$code" != 200 ]; then bad+=" $ep:$code"; break; fi
                if [ $i -eq 0 ]; then f=$t; else all+="$t "; fi
            done
            [ -n "$f" ] || continue
            row3 "GET /debug/pprof/${ep/(index)/}" "$(printf %.2f "$f")" "$all" "- / <=5"
        done
        if echo "$names" | grep -qx profile; then
            local all="" f=""
            for ((i = 0; i < SCRAPES; i++)); do
                scrape "${base}profile?seconds=1"
                if [ "$code" != 200 ]; then bad+=" profile:$code"; break; fi
                t=$(awk -v t="$t" 'BEGIN { printf "%.3f", t - 1000 }')
                if [ $i -eq 0 ]; then f=$t; else all+="$t "; fi
            done
            [ -n "$f" ] && row3 "GET profile?seconds=1, beyond 1 s" "$(printf %.2f "$f")" "$all" "- / <=5"
        fi
        [ -n "$bad" ] && echo "bench: user_cost: scrapes answered other than 200:$bad"
    fi
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    SERVER_PID=""
    echo "(writes: bench/user_cost write, 3 processes x $WRITES writes to /dev/null, then 5 writes each after one block"
    echo " from a new stack; scrapes: curl time_total, $SCRAPES per endpoint of the index, idle server; target: first / rest)"
}

# ------------------------------------------------------------ table 4
table4() {
    echo "4. Threads: default-rate ratio at the same total work split across threads"
    local total=$((2 * OPS)) live=8192 T order=() i k m v
    local -A tt=() thr=()
    for T in 1 2 8 32; do order+=("plain:$T" "mprof:$T"); done
    m=${#order[@]}
    for ((i = 0; i < THREAD_ROUNDS; i++)); do
        local -A this=()
        for ((k = 0; k < m; k++)); do
            v=${order[(i + k) % m]}
            T=${v#*:}
            W_CHURN_ARGS="$T $((total / T)) $((live / T))"
            if run_variant "${v%%:*}" churn; then
                this[$v]=$last
                tt[$v]+="$last "
            fi
        done
        for T in 1 2 8 32; do
            [ -n "${this[mprof:$T]:-}" ] && [ -n "${this[plain:$T]:-}" ] &&
                thr[$T]+="$(div "${this[mprof:$T]}" "${this[plain:$T]}") "
        done
        unset this
    done
    W_CHURN_ARGS="2 $OPS 4096"
    printf "%-8s %11s %11s %8s %13s %12s %10s\n" threads "plain s" "mprof s" ratio "(quartiles)" "vs 1 thread" target
    local r1 r
    r1=$(echo "${thr[1]:-}" | median)
    for T in 1 2 8 32; do
        r=$(echo "${thr[$T]:-}" | median)
        printf "%-8s %11s %11s %8s %13s %12s %10s\n" "$T" "$(echo "${tt[plain:$T]:-}" | median)" \
            "$(echo "${tt[mprof:$T]:-}" | median)" "$(printf %.3fx "$r")" "($(echo "${thr[$T]:-}" | quartiles))" \
            "$(awk -v a="$r" -v b="$r1" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }')" "<=+5%"
    done
    echo "(heap_churn T $((total))/T ops $live/T live, profile written at exit; ratio: median of $THREAD_ROUNDS rounds,"
    echo " the 8 runs of a round in rotated order, each mprof run over the plain run of the same thread count)"
}

# ------------------------------------------------------------ table 5
table5() {
    echo "5. Memory: the profiler's own, per live sampled block"
    printf "%-14s %-17s %8s %10s %9s %9s %9s %8s %14s %14s %7s\n" workload variant "live" "prof MiB" "arena/blk" "heap/blk" "total/blk" "all/blk" "RSS MiB" "HWM MiB" target
    local w args v e line plain_heap plain_rss plain_hwm
    for w in "churn:churn 2 $OPS 4096" "live:live 200000 64"; do
        args=${w#*:}
        w=${w%%:*}
        plain_heap="" plain_rss="" plain_hwm=""
        for v in plain default default-nohdr rate1 rate1-nohdr; do
            case $v in
            plain) e=(env MPROF_UNUSED=1) ;;
            default) e=(env LD_PRELOAD="$LIB") ;;
            default-nohdr) e=(env LD_PRELOAD="$LIB" MPROF_HEADERS=0) ;;
            rate1) e=(env LD_PRELOAD="$LIB" MPROF_RATE=1) ;;
            rate1-nohdr) e=(env LD_PRELOAD="$LIB" MPROF_RATE=1 MPROF_HEADERS=0) ;;
            esac
            # shellcheck disable=SC2086
            if ! line=$("${e[@]}" "$HELPER" mem $args 2>"$WORK/mem.err"); then
                echo "bench: user_cost: memory helper failed ($w, $v): $(head -n 1 "$WORK/mem.err")"
                continue
            fi
            kv() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
            if [ $v = plain ]; then
                plain_heap=$(($(kv heap) - $(kv heap0))) plain_rss=$(kv rss_kb) plain_hwm=$(kv hwm_kb)
                printf "%-14s %-17s %8s %10s %9s %9s %9s %8s %14s %14s %7s\n" "$w" "$v" - - - - - - \
                    "$(awk -v k="$plain_rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
                    "$(awk -v k="$plain_hwm" 'BEGIN { printf "%.1f", k / 1024 }')" -
                continue
            fi
            if [ "$(kv profiled)" != 1 ]; then
                echo "bench: user_cost: mprof_stats_read not found under $LIB"
                continue
            fi
            [ -n "$plain_heap" ] || plain_heap=$(($(kv heap) - $(kv heap0)))
            local want=1
            [ "${v%-nohdr}" != "$v" ] && want=0
            [ "$(kv headers)" = $want ] ||
                echo "bench: user_cost: $v: mprof_stats says block_headers=$(kv headers), expected $want"
            awk -v w="$w" -v v="$v" -v pb0="$(kv prof_bytes0)" -v pb="$(kv prof_bytes)" -v l0="$(kv live0)" -v l="$(kv live)" \
                -v h="$(($(kv heap) - $(kv heap0)))" -v ph="$plain_heap" -v rss="$(kv rss_kb)" -v prss="${plain_rss:-0}" -v hwm="$(kv hwm_kb)" \
                -v phwm="${plain_hwm:-0}" -v dropped="$(kv dropped)" 'BEGIN {
                    n = l - l0; if (n < 1) n = 1
                    a = (pb - pb0) / n; hb = (h - ph) / n; t = a + hb
                    printf "%-14s %-17s %8d %10.1f %9.1f %9.1f %9.1f %8.0f %5.1f %+7.1f%% %5.1f %+7.1f%% %7s\n", w, v, l, pb / 1048576,
                        a, hb, t, (pb + h - ph) / n, rss / 1024, prss ? (rss / prss - 1) * 100 : 0,
                        hwm / 1024, phwm ? (hwm / phwm - 1) * 100 : 0, "<=64"
                    if (dropped > 0) printf "  (%d samples dropped at the memory cap)\n", dropped
                }'
        done
    done
    echo "(bench/user_cost mem; live: sampled blocks live at the end; arena/blk: growth of profiler_bytes since start over them;"
    echo " heap/blk: growth of the glibc heap in use beyond the plain run's (headers sit in the block); total/blk = the two, the target;"
    echo " all/blk: all profiler memory incl. its first arena over them; RSS, HWM: against the plain run)"
}

echo "($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
for t in $TABLES; do
    case $t in
    1) table1 ;;
    2) table2 ;;
    3) table3 ;;
    4) table4 ;;
    5) table5 ;;
    *) echo "bench: user_cost: no table $t" ;;
    esac
    echo
done
