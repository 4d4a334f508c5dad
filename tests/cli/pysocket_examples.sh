#!/usr/bin/env bash
# pysocket_examples.sh NETSH -- the Python-literal examples talk to their
# partners and across languages: each literal server with the literal
# client, the seed's Python server (examples/python/) with the netsh
# client and the netsh server with the Python client, TCP and UDP, on free
# ports (the .py files use 12345; a copy gets the port). The raw HTTP GET,
# literal and Python, against a one-shot local server.
set -u
NETSH=${1:?usage: pysocket_examples.sh path/to/netsh}
NETSH=$(realpath "$NETSH")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/../.."
if ! command -v python3 >/dev/null; then
  echo "skip: no python3"; exit 0
fi

free_port() {  # free_port tcp|udp
  python3 - "$1" <<'EOF'
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# udp_bound PORT: true once something is bound to 127.0.0.1:PORT (UDP)
udp_bound() {
  ! python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# server and client commands: "py NAME" or "lua NAME"; the port follows
cmd() {  # cmd KIND NAME PORT
  if [ "$1" = py ]; then
    sed "s/12345/$3/" "examples/python/$2.py" > "$tmp/$2_$3.py"
    echo "python3 $tmp/$2_$3.py"
  else
    echo "$NETSH examples/$2_literal.lua $3"
  fi
}

pair() {  # pair tcp|udp SERVER_KIND CLIENT_KIND
  local proto=$1 port out rc srv try
  for try in 1 2 3 4 5; do
    port=$(free_port "$proto")
    # shellcheck disable=SC2046
    timeout 20 $(cmd "$2" "${proto}_server" "$port") \
      >"$tmp/srv.out" 2>&1 & pids+=($!)
    srv=$!
    sleep 0.3
    # another test (ctest -j2) may take the free port first: pick again
    if ! kill -0 "$srv" 2>/dev/null && grep -qi "in use" "$tmp/srv.out"
    then
      wait "$srv"
      continue
    fi
    break
  done
  out=
  if [ "$proto" = tcp ]; then
    for _ in $(seq 100); do   # refused until the server listens
      out=$(timeout 10 $(cmd "$3" "${proto}_client" "$port") 2>/dev/null) \
        && break
      sleep 0.1
    done
  else
    for _ in $(seq 100); do udp_bound "$port" && break; sleep 0.1; done
    out=$(timeout 10 $(cmd "$3" "${proto}_client" "$port") 2>&1)
  fi
  check "$proto: $2 server, $3 client: the reply" \
    "Recu: Bonjour serveur" "$out"
  wait "$srv"; rc=$?
  check "$proto: $2 server, $3 client: the server exits 0" 0 "$rc"
  [ "$rc" = 0 ] || sed 's/^/  /' "$tmp/srv.out"
}

for proto in tcp udp; do
  pair "$proto" lua lua
  pair "$proto" py lua
  pair "$proto" lua py
done

# The raw HTTP GET against a one-shot server that answers with the
# request line it got.
http_pair() {  # http_pair lua|py
  local port out srv
  port=$(free_port tcp)
  cat > "$tmp/http_server.lua" <<'EOF'
local s = socket.socket()
s:bind({"127.0.0.1", tonumber(arg[1])})
s:listen(1)
local conn = s:accept()
local f = conn:makefile("rb")
local first = f:readline()
repeat local l = f:readline() until l == "\r\n" or l == ""
local body = "got " .. first
conn:sendall("HTTP/1.1 200 OK\r\nContent-Length: " .. #body
  .. "\r\nConnection: close\r\n\r\n" .. body)
conn:close()
s:close()
EOF
  timeout 20 "$NETSH" "$tmp/http_server.lua" "$port" \
    >"$tmp/http.out" 2>&1 & pids+=($!)
  srv=$!
  if [ "$1" = py ]; then
    sed -e "s/^host = 'example.com'/host = '127.0.0.1'/" \
      -e "s/^port = 80$/port = $port/" examples/python/http_get_raw.py \
      > "$tmp/http_get_raw.py"
  fi
  for _ in $(seq 100); do
    if [ "$1" = py ]; then
      out=$(timeout 10 python3 "$tmp/http_get_raw.py" 2>/dev/null) && break
    else
      out=$(timeout 10 "$NETSH" examples/http_get_raw_literal.lua \
        127.0.0.1 "$port" 2>/dev/null) && break
    fi
    sleep 0.1
  done
  check "http: $1 raw GET: status line" "HTTP/1.1 200 OK" \
    "$(printf '%s\n' "$out" | head -1 | tr -d '\r')"
  check "http: $1 raw GET: the server saw the request line" \
    "got GET / HTTP/1.1" "$(printf '%s\n' "$out" | grep '^got ' | tr -d '\r')"
  wait "$srv"
  check "http: $1 raw GET: the server exits 0" 0 $?
}
http_pair lua
http_pair py

# A failure prints as Python's, from the script's top level.
port=$(free_port tcp)
err=$("$NETSH" examples/tcp_client_literal.lua "$port" 2>&1 >/dev/null)
check "refused: the error as Python prints it" \
  "netsh: ConnectionRefusedError: [Errno 111] Connection refused" \
  "$(printf '%s\n' "$err" | head -1)"

# Ctrl-C on a literal server waiting in accept: netsh's usual exit
port=$(free_port tcp)
"$NETSH" examples/tcp_server_literal.lua "$port" 2>"$tmp/int.err" &
pids+=($!)
srv=$!
sleep 0.5
kill -INT "$srv"
wait "$srv"
check "Ctrl-C: exit status 130" 130 $?
check "Ctrl-C: the message" "netsh: interrupted" "$(head -1 "$tmp/int.err")"

finish
