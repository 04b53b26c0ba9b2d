#!/bin/bash
# Real servers under load while their profiles are scraped (issue 17):
#
#   redis   Debian's redis-server under LD_PRELOAD with MPROF_HTTP, driven
#           by redis-benchmark, while a scraper fetches every endpoint the
#           index /debug/pprof/ lists (profile?seconds=1 among them) and
#           BGSAVE forks a child again and again; stopped with SIGTERM (its
#           own handler, then exit: mprof's exit writers).
#   nginx   Debian's nginx, master + 2 workers, under `mprof run --http`,
#           loaded by ab (apache2-utils) while the master's endpoints are
#           scraped; stopped with `nginx -s quit`.
#
# For each: no failed request (redis: no error reply, every BGSAVE ok; ab:
# "Failed requests: 0", no non-2xx), every scrape answered 200; after a
# first round to warm up, each process's descriptors (/proc/PID/fd) stay
# within 2 of their count then and its RSS within 25% + 16 MiB (bounds on
# what grows with the run, not on time); every process that exits normally
# writes a profile that `go tool pprof` reads.
#
# Usage: realprog_servers.sh LIBMPROF MPROF redis|nginx [ROUNDS]
#   ROUNDS of load after the warm-up one (default 3: make check's slice;
#   make stress runs 30).
. "$(dirname "$0")/../lib/testlib.sh"
LIB=$1
MPROF=$2
WHICH=$3
ROUNDS=${4:-3}
need_go
need_cmd curl

# fds PID, rss PID (KiB)
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# scraper PORT: fetches every endpoint of the index until $T/scrape.stop
# appears; one line per scrape in $T/scrape.log: "CODE NAME".
scraper() {
    _base=http://127.0.0.1:$1/debug/pprof
    _names=$(curl -s --max-time 10 "$_base/" | sed -n "s/.*<a href='\([a-z]*\)?debug=1'>.*/\1/p")
    [ -n "$_names" ] || { echo "000 index" >>"$T/scrape.log"; return; }
    while [ ! -e "$T/scrape.stop" ]; do
        for n in $_names; do
            q=""
            [ "$n" = profile ] && q="?seconds=1"
            c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$_base/$n$q")
            echo "$c $n" >>"$T/scrape.log"
        done
        c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$_base/heap?debug=1")
        echo "$c heap-text" >>"$T/scrape.log"
    done
}

# flat NAME PID FD0 RSS0: the bounds against the warm-up's figures.
flat() {
    _f=$(fds "$2")
    _r=$(rss "$2")
    check "$1: descriptors flat ($3 after the warm-up, $_f now)" test "$_f" -le $(($3 + 2))
    check_expr "$1: RSS flat (${4} KiB after the warm-up, ${_r} KiB now)" \
        "$_r <= $4 * 1.25 + 16384"
}

scrapes_ok() {
    _all=$(wc -l <"$T/scrape.log")
    _bad=$(grep -vc '^200 ' "$T/scrape.log")
    check "$1: every scrape answered 200 ($_all scrapes, $_bad not)" test "$_bad" = 0 -a "$_all" -gt 0
    [ "$_bad" = 0 ] || grep -v '^200 ' "$T/scrape.log" | sort | uniq -c | head
}

readable() { # NAME FILE
    if [ -s "$2" ] && pprof_raw "$2" "$T/raw.$$"; then
        pass "$1: $(basename "$2") read by go tool pprof"
    else
        fail "$1: no readable profile $2"
    fi
}

case $WHICH in
redis)
    need_cmd redis-server
    need_cmd redis-benchmark
    need_cmd redis-cli
    mkdir -p "$T/redis"
    RPORT=$(free_port)
    # No MPROF_CPU: the scraper's profile?seconds=1 would be refused (409)
    # while a whole-run CPU profile holds the timers.
    env LD_PRELOAD="$LIB" MPROF_HTTP=127.0.0.1:0 MPROF_HEAP="$T/redis/heap.%p.pb.gz" \
        MPROF_THREADCREATE="$T/redis/tc.%p.pb.gz" \
        redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$T/redis" --daemonize no >"$T/redis.out" 2>"$T/redis.err" &
    RPID=$!
    kill_at_exit "$RPID"
    for _ in $(seq 1 100); do
        redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/redis.err" | head -1)
    [ -n "$PORT" ] || die "redis-server is not serving /debug/pprof: $(cat "$T/redis.err")"
    scraper "$PORT" &
    SCRAPER=$!
    kill_at_exit "$SCRAPER"
    bench() {
        redis-benchmark -p "$RPORT" -q -n 20000 -c 20 -r 10000 -t set,get,incr,lpush,lpop,hset \
            >>"$T/bench.log" 2>&1
        echo "rc $?" >>"$T/bench.log"
    }
    bench
    FD0=$(fds "$RPID")
    RSS0=$(rss "$RPID")
    SAVES=0
    for r in $(seq 1 "$ROUNDS"); do
        bench &
        B=$!
        # BGSAVE forks redis while the scraper and the benchmark run.
        while kill -0 "$B" 2>/dev/null; do
            redis-cli -p "$RPORT" bgsave 2>&1 | grep -q "Background saving started" &&
                SAVES=$((SAVES + 1))
            sleep 0.3
        done
        wait "$B"
    done
    for _ in $(seq 1 50); do
        redis-cli -p "$RPORT" info persistence | grep -q '^rdb_bgsave_in_progress:0' && break
        sleep 0.1
    done
    touch "$T/scrape.stop"
    wait "$SCRAPER"
    INFO=$(redis-cli -p "$RPORT" info all)
    check "redis: the benchmark rounds all ended 0" test "$(grep -c '^rc 0$' "$T/bench.log")" = $((ROUNDS + 1))
    # Failed and rejected calls of every command but BGSAVE (whose "already
    # in progress" is an error reply too).
    errs=$(echo "$INFO" | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_/ && $1 != "cmdstat_bgsave" {
            for (i = 2; i < NF; i++) if ($i == "rejected_calls" || $i == "failed_calls") n += $(i + 1)
            seen = 1 } END { print seen ? n + 0 : "none" }')
    check "redis: no failed or rejected call ($errs)" test "$errs" = 0
    check "redis: BGSAVE forked during the load ($SAVES times)" test "$SAVES" -ge 1
    check "redis: the last BGSAVE ended ok" \
        sh -c "echo '$INFO' | tr -d '\r' | grep -q '^rdb_last_bgsave_status:ok'"
    scrapes_ok redis
    flat redis "$RPID" "$FD0" "$RSS0"
    tr '\r' '\n' <"$T/bench.log" | grep 'requests per second' | tail -6
    kill -TERM "$RPID"
    wait "$RPID"
    check "redis: exits 0 on SIGTERM (its own handler)" test $? = 0
    readable redis "$T/redis/heap.$RPID.pb.gz"
    readable redis "$T/redis/tc.$RPID.pb.gz"
    check "redis: mprof said nothing but where it serves and wrote, and notices once" \
        test "$(grep '^mprof:' "$T/redis.err" | grep -cv 'serving\|wrote\|(said once)')" = 0
    ;;

nginx)
    NGINX=/usr/sbin/nginx
    [ -x "$NGINX" ] || die "$NGINX missing: install Debian's nginx-light (make deps does)"
    need_cmd ab
    # The workers run as an unprivileged user: the folder must let them write.
    D=$T/ngx
    chmod o+x "$T"
    NPORT=$(free_port)
    . "$(dirname "$0")/nginx_conf.sh"
    nginx_conf "$D" "$NPORT" 256
    "$MPROF" run --heap "$D/ngx.%p.pb.gz" --http 127.0.0.1:0 -- \
        "$NGINX" -p "$D" -c "$D/nginx.conf" >"$T/nginx.out" 2>"$T/nginx.err" &
    MPID=$!
    kill_at_exit "$MPID"
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$NPORT/" && break
        sleep 0.05
    done
    PORT=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/$#\1#p' "$T/nginx.err" | head -1)
    [ -n "$PORT" ] || die "nginx's master is not serving /debug/pprof: $(cat "$T/nginx.err")"
    MASTER=$(cat "$D/nginx.pid")
    WORKERS=$(pgrep -P "$MASTER" | sort)
    check "nginx: a master and two workers" test "$(echo "$WORKERS" | wc -w)" = 2
    scraper "$PORT" &
    SCRAPER=$!
    kill_at_exit "$SCRAPER"
    load() {
        ab -q -n 5000 -c 16 "http://127.0.0.1:$NPORT/" >"$T/ab.$1" 2>&1
        echo "rc $?" >>"$T/ab.$1"
    }
    load 0
    declare -A FD0 RSS0
    for p in $MASTER $WORKERS; do
        FD0[$p]=$(fds "$p")
        RSS0[$p]=$(rss "$p")
    done
    for r in $(seq 1 "$ROUNDS"); do load "$r"; done
    touch "$T/scrape.stop"
    wait "$SCRAPER"
    FAILED=0
    for r in $(seq 0 "$ROUNDS"); do
        grep -q '^rc 0$' "$T/ab.$r" || FAILED=$((FAILED + 1))
        grep -q '^Complete requests: *5000$' "$T/ab.$r" || FAILED=$((FAILED + 1))
        grep -q '^Failed requests: *0$' "$T/ab.$r" || FAILED=$((FAILED + 1))
        grep -q '^Non-2xx' "$T/ab.$r" && FAILED=$((FAILED + 1))
    done
    check "nginx: $((ROUNDS + 1)) rounds of 5,000 requests, none failed" test "$FAILED" = 0
    [ "$FAILED" = 0 ] || cat "$T/ab.0"
    grep 'Requests per second' "$T/ab.$ROUNDS"
    scrapes_ok nginx
    for p in $MASTER $WORKERS; do flat "nginx $p" "$p" "${FD0[$p]}" "${RSS0[$p]}"; done
    "$NGINX" -p "$D" -c "$D/nginx.conf" -s quit 2>/dev/null
    wait "$MPID"
    check "nginx: exits 0 on nginx -s quit" test $? = 0
    for p in $MASTER $WORKERS; do readable "nginx $p" "$D/ngx.$p.pb.gz"; done
    check "nginx: mprof said nothing but where it serves and wrote, and notices once" \
        test "$(grep '^mprof:' "$T/nginx.err" | grep -cv 'serving\|wrote\|(said once)')" = 0
    ;;

*)
    die "usage: realprog_servers.sh LIBMPROF MPROF redis|nginx [ROUNDS]"
    ;;
esac
finish
