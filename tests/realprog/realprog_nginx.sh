#!/bin/sh
# Debian's nginx, master + 2 workers, under `mprof run`: nginx replaces
# each worker's environment and switches its user, so every process must
# have read its settings at start and write its own profile where told, on
# `nginx -s quit` and on SIGTERM; and every request is answered.
# Usage: realprog_nginx.sh LIBMPROF MPROF
. "$(dirname "$0")/../lib/testlib.sh"
need_go
MPROF=$2
NGINX=/usr/sbin/nginx
[ -x "$NGINX" ] || die "$NGINX missing: install Debian's nginx-light (make deps does)"
# The workers run as an unprivileged user: the folder must let them write.
D=$T/ngx
chmod o+x "$T"
port=$(free_port)
. "$(dirname "$0")/nginx_conf.sh"
nginx_conf "$D" "$port" 64

run_nginx() { # NAME STOP
    "$MPROF" run --heap "$D/$1.%p.pb.gz" -- "$NGINX" -p "$D" -c "$D/nginx.conf" \
        >"$T/$1.out" 2>"$T/$1.err" &
    mpid=$!
    i=0
    while ! curl -sf -o /dev/null "http://127.0.0.1:$port/" && [ $i -lt 100 ]; do
        sleep 0.05; i=$((i + 1))
    done
    ok=0
    for n in 1 2 3 4 5 6 7 8 9 10; do
        curl -sf -o /dev/null "http://127.0.0.1:$port/" && ok=$((ok + 1))
    done
    check "$1: every request answered ($ok of 10)" test "$ok" -eq 10
    # This test's nginx only (another nginx may run on the machine): its
    # master, from the pid file, and the master's children.
    master=$(cat "$D/nginx.pid" 2>/dev/null)
    pids=$( (echo "$master"; [ -n "$master" ] && pgrep -P "$master") | sort -u)
    check "$1: a master and two workers" test "$(echo "$pids" | wc -w)" -eq 3
    case $2 in
    quit) "$NGINX" -p "$D" -c "$D/nginx.conf" -s quit 2>/dev/null ;;
    term) kill -TERM "$(cat "$D/nginx.pid")" ;;
    esac
    wait "$mpid"
    for p in $pids; do
        f=$D/$1.$p.pb.gz
        if [ -s "$f" ] && pprof_raw "$f" "$T/$1.$p.raw"; then
            pass "$1: process $p wrote a profile pprof reads"
        else
            fail "$1: process $p wrote no readable profile $f"
        fi
    done
}

run_nginx quit quit
run_nginx term term
finish
