#!/bin/sh
# nginx.sh -- a throwaway nginx for the http specs and benchmark.
#
#   sh tests/support/nginx.sh start DIR [CPU]   # prints "HTTP_PORT HTTPS_PORT"
#   sh tests/support/nginx.sh stop DIR
#
# start: makes DIR (config, docroot, logs), a test CA and a server
# certificate for 127.0.0.1/localhost with the openssl CLI, then runs
# nginx (Debian nginx-light) from that config on two free 127.0.0.1
# ports, one worker (pinned to CPU with taskset when given). The ports go
# to DIR/ports and stdout; the CA to DIR/ca.pem. stop: ends it, removes DIR.
# Plain HTTP also on the Unix socket DIR/nginx.sock.
# Docroot: small.txt, data.json, 10m.bin; /redirect -> /small.txt; /loop;
# /private/ needs basic auth user:secret; gzip for text types >= 100 B.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: nginx.sh start|stop DIR [CPU]" >&2; exit 2; }

free_port() {
  /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
  if [ -f "$dir/nginx.pid" ]; then
    pid=$(cat "$dir/nginx.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
      sleep 0.1; i=$((i + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  case "$dir" in
    /tmp/*|/var/tmp/*|*/build*/*) rm -rf "$dir" ;;
  esac
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "nginx.sh: unknown command $cmd" >&2; exit 2; }
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
  echo "nginx.sh: nginx not installed (apt-get install nginx-light)" >&2
  exit 3; }
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

mkdir -p "$dir/www/private" "$dir/tmp" "$dir/logs"
chmod 755 "$dir" "$dir/www" "$dir/www/private"
chmod 1777 "$dir/tmp"

# test CA and server certificate (EC keys: fast)
(
  cd "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=netsh test CA" \
    2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
    -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
  chmod 644 ca.pem server.pem
)

printf 'hello from nginx\n' > "$dir/www/small.txt"
printf '{"server": "nginx", "list": [1, 2, 3], "text": "%s"}\n' \
  "$(printf 'padding so that gzip applies %.0s' 1 2 3 4)" > "$dir/www/data.json"
printf 'secret stuff\n' > "$dir/www/private/index.txt"
head -c 10485760 /dev/urandom > "$dir/www/10m.bin"
printf 'user:%s\n' "$(openssl passwd -apr1 secret)" > "$dir/htpasswd"
chmod 644 "$dir"/www/*.txt "$dir"/www/*.json "$dir"/www/*.bin \
  "$dir/www/private/index.txt" "$dir/htpasswd"

user_line=""
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"

tries=0
while :; do
  http_port=$(free_port)
  https_port=$(free_port)
  cat > "$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  types { text/plain txt; application/json json;
          application/octet-stream bin; }
  default_type application/octet-stream;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  gzip on;
  gzip_min_length 100;
  gzip_types text/plain application/json;
  server {
    listen 127.0.0.1:$http_port;
    listen 127.0.0.1:$https_port ssl http2;
    listen unix:$dir/nginx.sock;
    ssl_certificate $dir/server.pem;
    ssl_certificate_key $dir/server.key;
    root $dir/www;
    location = /redirect { return 302 /small.txt; }
    location = /loop { return 302 /loop; }
    location /private/ {
      auth_basic "netsh test";
      auth_basic_user_file $dir/htpasswd;
    }
  }
}
CONF
  if ${3:+taskset -c "$3"} "$NGINX" -e "$dir/logs/error.log" -p "$dir" \
       -c "$dir/nginx.conf" 2>"$dir/logs/start.log"; then
    break
  fi
  tries=$((tries + 1))
  if [ $tries -ge 5 ]; then
    cat "$dir/logs/start.log" >&2
    exit 1
  fi
done

# wait until it answers
i=0
while [ $i -lt 50 ]; do
  if [ -f "$dir/nginx.pid" ] &&
     /usr/bin/python3 -c "import socket,sys
socket.create_connection(('127.0.0.1', $http_port), 0.2)" 2>/dev/null; then
    break
  fi
  sleep 0.1; i=$((i + 1))
done
echo "$http_port $https_port" > "$dir/ports"
echo "$http_port $https_port"
