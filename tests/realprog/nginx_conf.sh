# shellcheck shell=sh
# nginx_conf DIR PORT CONNECTIONS: writes DIR/nginx.conf for Debian's nginx
# run from DIR (nginx -p DIR -c DIR/nginx.conf): master + 2 workers in the
# foreground, every path inside DIR (the workers run as an unprivileged
# user: DIR must let them write, and its parents let them through), one
# server on 127.0.0.1:PORT answering "ok".  Sourced by the realprog tests
# and bench/servers_bench.sh.
nginx_conf() {
    mkdir -p "$1/logs" && chmod 1777 "$1"
    cat >"$1/nginx.conf" <<CONF
worker_processes 2;
daemon off;
error_log $1/logs/error.log;
pid $1/nginx.pid;
events { worker_connections $3; }
http {
  access_log off;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  server { listen 127.0.0.1:$2; location / { return 200 "ok\n"; } }
}
CONF
}
