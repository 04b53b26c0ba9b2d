#!/bin/bash
# Throughput of real servers with and without mprof (issue 17, item 6):
# Debian's redis-server driven by redis-benchmark (SET and GET, 20
# clients) and nginx, master + 2 workers, driven by ab (16 concurrent
# clients).  Variants: plain; mprof at the default rate with the HTTP
# server on (what a user leaves running in production); the same while a
# scraper fetches /debug/pprof/heap and allocs in a loop; mprof at rate 1.
# Each round starts a fresh server per variant, in an order rotated by one
# each round, and divides its requests per second by the plain variant's of
# the same round; the table gives the median and quartiles of those
# per-round ratios (1.00 = no cost).  No target: the load generator shares
# the machine's two cores with the server, so the figures are the upper
# bound of what mprof costs a server whose clients are elsewhere; and a
# busy neighbour (the scraper) keeps idle cores awake, so that the
# ping-pong of a client and a single-threaded server can come out faster
# than plain: read "scraped" as "no visible cost", never as a speed-up.
# Figures of one run (7 rounds, 200,000 redis and 40,000 ab requests, the
# machine shared with other builds): redis 0.98 default, 1.04 rate 1;
# nginx 0.97 default, 0.94 scraped, 0.97 rate 1; quartiles 0.75-1.2.
# redis-server allocates through Debian's libjemalloc.so.2: mprof stands in
# front of jemalloc there, in table mode (no headers: sampled blocks are
# found through the live table); nginx allocates through glibc (its pools).
#
# usage: servers_bench.sh BUILD_DIR
#   env: ROUNDS=5, REDIS_N=100000 (requests per test), AB_N=20000
set -u
BUILD=$(cd "${1:-build}" && pwd)
LIB=$BUILD/libmprof.so
ROUNDS=${ROUNDS:-5}
REDIS_N=${REDIS_N:-100000}
AB_N=${AB_N:-20000}
T=$(mktemp -d /tmp/mprof-bench-servers.XXXXXX)
trap 'rm -rf "$T"' EXIT
for c in redis-server redis-benchmark redis-cli ab curl; do
    command -v "$c" >/dev/null || { echo "servers_bench: $c missing (make deps installs it)"; exit 1; }
done
[ -x /usr/sbin/nginx ] || { echo "servers_bench: /usr/sbin/nginx missing (make deps)"; exit 1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
quartiles() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.3f-%.3f", a[int((NR+3)/4)], a[int((3*NR+3)/4)]}'; }

VARIANTS=(plain default scraped rate1)
# env_of VARIANT: the environment a server runs in.
env_of() {
    case $1 in
    plain) echo "" ;;
    default|scraped) echo "LD_PRELOAD=$LIB MPROF_HTTP=127.0.0.1:0" ;;
    rate1) echo "LD_PRELOAD=$LIB MPROF_HTTP=127.0.0.1:0 MPROF_RATE=1" ;;
    esac
}

# scrape ERRFILE: heap and allocs in a loop from the server that announced
# its port in ERRFILE, until $T/stop.
scrape() {
    local port
    for _ in $(seq 1 50); do
        port=$(sed -n 's#^mprof: serving http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$1" | head -1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    while [ ! -e "$T/stop" ]; do
        curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$port/debug/pprof/heap"
        curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$port/debug/pprof/allocs"
    done
}

RPORT=$((30000 + $$ % 10000))
# redis_rps VARIANT: SET and GET requests per second, summed.
redis_rps() {
    # shellcheck disable=SC2046
    env $(env_of "$1") redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$T" --daemonize no >"$T/redis.out" 2>"$T/redis.err" &
    local pid=$! sp=""
    for _ in $(seq 1 100); do
        redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    rm -f "$T/stop"
    [ "$1" = scraped ] && { scrape "$T/redis.err" & sp=$!; }
    redis-benchmark -p "$RPORT" -q -n "$REDIS_N" -c 20 -r 10000 -t set,get --csv 2>/dev/null |
        awk -F'"' '/^"(SET|GET)"/ { s += $4 } END { printf "%.0f", s }'
    touch "$T/stop"
    [ -n "$sp" ] && wait "$sp"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}

NPORT=$((40000 + $$ % 10000))
D=$T/ngx
chmod o+x "$T"
# shellcheck source=../tests/realprog/nginx_conf.sh
. "$(dirname "$0")/../tests/realprog/nginx_conf.sh"
nginx_conf "$D" "$NPORT" 256
# nginx_rps VARIANT: ab's requests per second.
nginx_rps() {
    # shellcheck disable=SC2046
    env $(env_of "$1") /usr/sbin/nginx -p "$D" -c "$D/nginx.conf" >"$T/nginx.out" 2>"$T/nginx.err" &
    local pid=$! sp=""
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$NPORT/" && break
        sleep 0.05
    done
    rm -f "$T/stop"
    [ "$1" = scraped ] && { scrape "$T/nginx.err" & sp=$!; }
    ab -q -n "$AB_N" -c 16 "http://127.0.0.1:$NPORT/" 2>/dev/null |
        awk '/^Requests per second/ { printf "%.0f", $4 }'
    touch "$T/stop"
    [ -n "$sp" ] && wait "$sp"
    /usr/sbin/nginx -p "$D" -c "$D/nginx.conf" -s quit 2>/dev/null
    wait "$pid" 2>/dev/null
}

for server in redis nginx; do
    declare -A rps=() ratios=()
    for r in $(seq 1 "$ROUNDS"); do
        declare -A this=()
        n=${#VARIANTS[@]}
        for i in $(seq 0 $((n - 1))); do
            v=${VARIANTS[$(((i + r) % n))]}
            this[$v]=$("${server}_rps" "$v")
        done
        for v in "${VARIANTS[@]}"; do
            rps[$v]="${rps[$v]:-} ${this[$v]}"
            ratios[$v]="${ratios[$v]:-} $(awk -v a="${this[$v]}" -v b="${this[plain]}" \
                'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')"
        done
    done
    echo "$server: requests per second, with and without mprof"
    printf "%-10s %12s %8s %13s\n" variant "median rps" ratio "(quartiles)"
    for v in "${VARIANTS[@]}"; do
        printf "%-10s %12s %8s %13s\n" "$v" "$(echo "${rps[$v]}" | median)" \
            "$(echo "${ratios[$v]}" | median)" "$(echo "${ratios[$v]}" | quartiles)"
    done
    echo " (ratio: median over $ROUNDS rounds, in rotated order, of the variant's rps over the plain run's of its round; scraped: heap and allocs fetched in a loop meanwhile)"
    echo
    unset rps ratios
done
