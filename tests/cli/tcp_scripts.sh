#!/usr/bin/env bash
# tcp_scripts.sh NETSH -- run the TCP examples and scripts as a user would:
# the seed's server/client pair on localhost:12345, tcp_echo with
# tcp_client in a pipeline, --help, errors, and Ctrl-C on the server.
set -u
NETSH=${1:?usage: tcp_scripts.sh path/to/netsh}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. examples/tcp_server.lua + examples/tcp_client.lua
timeout 10 "$NETSH" examples/tcp_server.lua & pids+=($!)
server=$!
for _ in $(seq 50); do
  out=$(timeout 10 "$NETSH" examples/tcp_client.lua 2>/dev/null) && break
  sleep 0.1
done
check "example client prints the reply" "Recu: Bonjour serveur" "$out"
wait "$server"
check "example server exits 0" 0 $?

# 2. scripts/tcp_echo.lua on a free port, tcp_client in pipelines
# --foreground: forward our SIGINT once, not to the whole process group
timeout --foreground 60 "$NETSH" -m tcp_echo 127.0.0.1 0 \
  2>"$tmp/echo.log" & pids+=($!)
echo_pid=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/.*listening on .* port \([0-9]*\).*/\1/p' "$tmp/echo.log")
  [ -n "$port" ] && break
  sleep 0.1
done
out=$(printf 'hello\nworld\n' |
  timeout 10 "$NETSH" -m tcp_client 127.0.0.1 "$port")
check "tcp_client pipes stdin through the echo" $'hello\nworld' "$out"
out=$(timeout 10 "$NETSH" scripts/tcp_client.lua -n 127.0.0.1 "$port" msg)
check "tcp_client sends a message" "msg" "$out"
head -c 3000000 /dev/urandom > "$tmp/big"
timeout 20 "$NETSH" -m tcp_client 127.0.0.1 "$port" \
  < "$tmp/big" > "$tmp/big.out"
cmp -s "$tmp/big" "$tmp/big.out"
check "3 MB of binary through the echo, unchanged" 0 $?
grep -q '^\[.*\] + 127.0.0.1:' "$tmp/echo.log"
check "tcp_echo logs connections to stderr" 0 $?
kill -INT "$echo_pid"
wait "$echo_pid"
check "tcp_echo exits 0 on Ctrl-C" 0 $?
grep -q 'stopped after 3 connection(s)' "$tmp/echo.log"
check "tcp_echo says goodbye" 0 $?

# 2b. the same over a Unix socket (unix:PATH, as nc -U)
sock="$tmp/echo.sock"
timeout --foreground 60 "$NETSH" -m tcp_echo "unix:$sock" \
  2>"$tmp/uecho.log" & pids+=($!)
uecho_pid=$!
for _ in $(seq 50); do
  grep -q 'listening on unix:' "$tmp/uecho.log" && break
  sleep 0.1
done
out=$(printf 'over\nunix\n' | timeout 10 "$NETSH" -m tcp_client "unix:$sock")
check "tcp_client unix:PATH pipes stdin through tcp_echo unix:PATH" \
  $'over\nunix' "$out"
out=$(timeout 10 "$NETSH" -m tcp_client "unix:$sock" 'Bonjour serveur')
check "tcp_client unix:PATH MESSAGE" "Bonjour serveur" "$out"
grep -q '^\[.*\] + unix client #1 ' "$tmp/uecho.log"
check "tcp_echo numbers its Unix clients" 0 $?
kill -INT "$uecho_pid"
wait "$uecho_pid"
check "tcp_echo unix:PATH exits 0 on Ctrl-C" 0 $?
[ -e "$sock" ]
check "tcp_echo unix:PATH removes its socket file" 1 $?
err=$("$NETSH" -m tcp_client "unix:$tmp/none.sock" x 2>&1 >/dev/null)
check "tcp_client reports a missing socket file" \
  "tcp_client: unix:$tmp/none.sock: no such file or directory" "$err"
"$NETSH" -m tcp_client "unix:$sock" a b >/dev/null 2>&1
check "tcp_client unix:PATH with a PORT exits 2" 2 $?

# 3. help and errors
"$NETSH" -m tcp_echo --help | grep -q '^usage: tcp_echo'
check "tcp_echo --help" 0 $?
"$NETSH" -m tcp_client --help | grep -q '^usage: tcp_client'
check "tcp_client --help" 0 $?
"$NETSH" -m tcp_client >/dev/null 2>&1
check "tcp_client without arguments exits 2" 2 $?
err=$("$NETSH" -m tcp_client 127.0.0.1 "$port" x 2>&1 >/dev/null)
check "tcp_client reports refused" \
  "tcp_client: 127.0.0.1:$port: connection refused" "$err"
finish
