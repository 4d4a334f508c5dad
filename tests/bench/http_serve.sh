#!/usr/bin/env bash
# http_serve.sh - HTTP server benchmark: netsh's http.server against nginx
# (one worker, access log off), python3 -m http.server, aiohttp and Node's
# http module, in the same run.
#
# Usage: tests/bench/http_serve.sh [--netsh PATH] [--secs 5] [--c 50]
#          [--cells static,hello,large] (default: all three)
#
# Two cells: "static" GETs a 1 KiB file (netsh: scripts/http_serve.lua
# --quiet; nginx: its static module; Python: http.server) and "hello" runs
# a handler answering "hello" (netsh: http.server; aiohttp; Node http;
# nginx's `return 200`); "large" GETs a 1 MiB file (netsh: http_serve,
# sent with sock:sendfile, i.e. sendfile(2); nginx: sendfile on). Each server runs pinned to CPU 1, wrk -t1 -c C
# for --secs seconds pinned to CPU 0 (after a 1 s warm-up). Reported: req/s
# and the server's CPU time per request (utime+stime from /proc over the
# measured run). Prints a Markdown table and the issue's targets:
#   static: netsh CPU/req <= 2x nginx's; netsh req/s >= 10x Python's
#   hello:  netsh req/s above aiohttp's and Node's.
# Run it alone: /work/bin/cpu-excl tests/bench/http_serve.sh
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/../.." && pwd)
netsh=${NETSH:-$ROOT_DIR/build/netsh}
secs=5 conc=50 cells=static,hello,large
while [ $# -gt 0 ]; do
  case $1 in
    --netsh) netsh=$2; shift ;;
    --secs) secs=$2; shift ;;
    --c) conc=$2; shift ;;
    --cells) cells=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "http_serve.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "http_serve.sh: wrk missing" >&2; exit 1; }
CLK_TCK=$(getconf CLK_TCK)
PY=/usr/bin/python3     # Debian's, with python3-aiohttp
[ -x "$PY" ] || PY=$(command -v python3)
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_S="taskset -c 1"; PIN_C="taskset -c 0"
else
  PIN_S=; PIN_C=; echo "note: running unpinned" >&2
fi
T=$(mktemp -d /tmp/netsh-serve-bench.XXXXXX)
# nginx's worker runs as nobody (when started as root): mktemp's 0700
# would answer its requests with 403
chmod 755 "$T"
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$T/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$T/www/1k.txt"
head -c 1048576 /dev/urandom > "$T/www/1m.bin"
free_port() { "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() {
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }; set -- $s; echo $(( ${12} + ${13} ))
}

cat > "$T/hello.lua" <<'LUA'
local srv = assert(http.server{port = tonumber(arg[1]),
  max_connections = 10000,
  handler = function() return 200, {["Content-Type"] = "text/plain"}, "hello" end})
srv:serve()
LUA
cat > "$T/aio.py" <<'PY'
import sys
from aiohttp import web
async def hello(request):
    return web.Response(text="hello")
app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
            print=None)
PY
cat > "$T/node.js" <<'JS'
require("http").createServer((req, res) => {
  res.writeHead(200, {"Content-Type": "text/plain"});
  res.end("hello");
}).listen(+process.argv[2], "127.0.0.1");
JS
nginx_conf() {  # PORT -> nginx.conf on $T
  mkdir -p "$T/ngx"
  cat > "$T/ngx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $T/ngx; proxy_temp_path $T/ngx;
  fastcgi_temp_path $T/ngx; uwsgi_temp_path $T/ngx; scgi_temp_path $T/ngx;
  server {
    listen 127.0.0.1:$1;
    root $T/www;
    location = /hello { default_type text/plain; return 200 "hello"; }
  }
}
NGX
}

# cell NAME PATH CMD... : start CMD pinned, run wrk, print a table row
declare -A RPS CPU
cell() {
  local name=$1 path=$2 port=$3; shift 3
  ( ulimit -n 65536 2>/dev/null; cd "$T" && exec $PIN_S "$@" ) \
    >"$T/server.log" 2>&1 &
  SPID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port$path" && break
    sleep 0.05
  done
  $PIN_C wrk -t1 -c"$conc" -d1s "http://127.0.0.1:$port$path" >/dev/null 2>&1
  local t0 t1 out req rps
  t0=$(ticks "$SPID")
  out=$($PIN_C wrk -t1 -c"$conc" -d"${secs}s" "http://127.0.0.1:$port$path")
  t1=$(ticks "$SPID")
  kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=
  req=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
  rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  local errs; errs=$(printf '%s\n' "$out" | grep -E 'Non-2xx|Socket errors' | tr '\n' ' ')
  local us; us=$(awk -v t=$((t1 - t0)) -v r="${req:-0}" -v k="$CLK_TCK" \
    'BEGIN { if (r > 0) printf "%.1f", t / k / r * 1e6; else print "-" }')
  RPS[$CELL.$name]=${rps:-0}; CPU[$CELL.$name]=$us
  printf '| %s | %s | %s | %s | %s |\n' "$CELL" "$name" "${rps:-0}" "$us" "$errs"
}
# nginx forks its worker: count the worker's ticks from the start of wrk
nginx_cell() {
  local port=$1 path=$2
  nginx_conf "$port"
  ( ulimit -n 65536 2>/dev/null; exec $PIN_S /usr/sbin/nginx -c "$T/ngx/nginx.conf" ) \
    >"$T/server.log" 2>&1 &
  SPID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 0.05
  done
  local w; w=$(pgrep -P "$SPID" | head -1)
  $PIN_C wrk -t1 -c"$conc" -d1s "http://127.0.0.1:$port$path" >/dev/null 2>&1
  local t0 t1 out req rps us
  t0=$(ticks "$w")
  out=$($PIN_C wrk -t1 -c"$conc" -d"${secs}s" "http://127.0.0.1:$port$path")
  t1=$(ticks "$w")
  kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=
  req=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
  rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  us=$(awk -v t=$((t1 - t0)) -v r="${req:-0}" -v k="$CLK_TCK" \
    'BEGIN { if (r > 0) printf "%.1f", t / k / r * 1e6; else print "-" }')
  local errs; errs=$(printf '%s\n' "$out" | grep -E 'Non-2xx|Socket errors' | tr '\n' ' ')
  RPS[$CELL.nginx]=${rps:-0}; CPU[$CELL.nginx]=$us
  printf '| %s | %s | %s | %s | %s |\n' "$CELL" nginx "${rps:-0}" "$us" "$errs"
}

echo "| cell | server | req/s | server CPU us/req | errors |"
echo "|---|---|---|---|---|"
want() { case ",$cells," in *",$1,"*) return 0 ;; esac; return 1; }
if want static; then
CELL=static
p=$(free_port); cell netsh /1k.txt "$p" "$netsh" -m http_serve "$T/www" --port "$p" --quiet
p=$(free_port); nginx_cell "$p" /1k.txt
p=$(free_port); cell python /1k.txt "$p" "$PY" -m http.server -d "$T/www" -b 127.0.0.1 "$p"
fi
if want hello; then
CELL=hello
p=$(free_port); cell netsh / "$p" "$netsh" "$T/hello.lua" "$p"
p=$(free_port); nginx_cell "$p" /hello
if "$PY" -c 'import aiohttp' 2>/dev/null; then
  p=$(free_port); cell aiohttp / "$p" "$PY" "$T/aio.py" "$p"
else echo "| hello | aiohttp | (python3-aiohttp missing) | | |"; fi
if command -v node >/dev/null; then
  p=$(free_port); cell node / "$p" node "$T/node.js" "$p"
else echo "| hello | node | (nodejs missing) | | |"; fi
fi
if want large; then
CELL=large
p=$(free_port); cell netsh /1m.bin "$p" "$netsh" -m http_serve "$T/www" --port "$p" --quiet
p=$(free_port); nginx_cell "$p" /1m.bin
fi

echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
want static && echo "static: netsh CPU/req = $(ratio "${CPU[static.netsh]}" "${CPU[static.nginx]}")x nginx's (target <= 2)"
want static && echo "static: netsh req/s = $(ratio "${RPS[static.netsh]}" "${RPS[static.python]}")x python http.server's (target >= 10)"
want large && echo "large: netsh CPU/req = $(ratio "${CPU[large.netsh]}" "${CPU[large.nginx]}")x nginx's (1 MiB file)"
want hello && echo "hello: netsh req/s = $(ratio "${RPS[hello.netsh]}" "${RPS[hello.aiohttp]:-0}")x aiohttp's, $(ratio "${RPS[hello.netsh]}" "${RPS[hello.node]:-0}")x node's (target > 1)"
