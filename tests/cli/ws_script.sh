#!/usr/bin/env bash
# ws_script.sh -- scripts/ws.lua as a user runs it: an echo and a
# broadcast server (--listen), the client's stdin/stdout, --json,
# --binary, -n, exit codes (usage, abnormal close, --curl-codes).
# usage: tests/cli/ws_script.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: ws_script.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/../.."

free_port() { "$N" -e 'local s = socket.bind("127.0.0.1", 0) local _, p = s:getsockname() s:close() print(p)'; }
listen() {  # args... -> sets PORT (a server started on a free port)
  PORT=$(free_port)
  "$N" -m ws --listen "127.0.0.1:$PORT" "$@" 2>"$T/listen.$PORT" & pids+=($!)
  for _ in $(seq 100); do grep -q listening "$T/listen.$PORT" && return; sleep 0.05; done
  echo "server did not start: $(cat "$T/listen.$PORT")"; exit 1
}

listen
E=$PORT
out=$(printf 'hello\nwörld\n' | timeout 20 "$N" -m ws "ws://127.0.0.1:$E/"); rc=$?
[ $rc = 0 ] && [ "$out" = "$(printf 'hello\nwörld')" ] && ok "echo: lines out, lines in, exit 0" \
  || ko "echo (rc=$rc)" "$out"
out=$(printf 'a\n' | timeout 20 "$N" -m ws --json "ws://127.0.0.1:$E/")
echo "$out" | "$N" -e 'local r = json.decode(io.read("l")) assert(r.kind == "text" and r.data == "a" and r.tool == "ws" and r.ok == true and r.target:match("^ws://") and r.ts:match("Z$"))' \
  && ok "--json: the envelope with kind and data" || ko "--json" "$out"
out=$(printf 'bin\n' | timeout 20 "$N" -m ws --json --binary "ws://127.0.0.1:$E/")
echo "$out" | "$N" -e 'local r = json.decode(io.read("l")) assert(r.kind == "binary" and r.data == "Ymlu")' \
  && ok "--binary: binary messages, Base64 in JSON" || ko "--binary" "$out"
out=$(printf '1\n2\n3\n' | timeout 20 "$N" -m ws -n 2 --no-compress "ws://127.0.0.1:$E/"); rc=$?
[ $rc = 0 ] && [ "$out" = "$(printf '1\n2')" ] && ok "-n 2 stops after two messages" \
  || ko "-n 2 (rc=$rc)" "$out"

listen --broadcast
B=$PORT
(sleep 1.5; echo) | timeout 20 "$N" -m ws -n 1 "ws://127.0.0.1:$B/" >"$T/a" 2>&1 & pa=$!
sleep 0.7
out=$( (printf 'from-b\n'; sleep 1) | timeout 20 "$N" -m ws -n 1 "ws://127.0.0.1:$B/"); rc=$?
wait $pa; rca=$?
[ $rc = 0 ] && [ "$out" = "from-b" ] && [ $rca = 0 ] && [ "$(cat "$T/a")" = "from-b" ] \
  && ok "--broadcast relays to every client" || ko "--broadcast (rc=$rc/$rca)" "$out" "$(cat "$T/a")"

# a server that closes with 4005: exit 1 and the code on stderr
C=$(free_port)
"$N" -e 'local ws = require "websocket"
ws.server{port = '"$C"', handler = function(req)
  local w = req:websocket() w:receive() w:close(4005, "go away") end}
io.stderr:write("listening\n")' 2>"$T/c" & pids+=($!)
for _ in $(seq 100); do grep -q listening "$T/c" && break; sleep 0.05; done
printf 'x\n' | timeout 20 "$N" -m ws "ws://127.0.0.1:$C/" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "closed with 4005 (go away)" "$T/err" && ok "an abnormal close: exit 1, code on stderr" \
  || ko "abnormal close (rc=$rc)" "$(cat "$T/err")"

CLOSED=$(free_port)
timeout 20 "$N" -m ws --curl-codes "ws://127.0.0.1:$CLOSED/" </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 7 ] && ok "--curl-codes: refused -> 7" || ko "--curl-codes refused: got $rc"
timeout 20 "$N" -m ws "ws://127.0.0.1:$CLOSED/" </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 1 ] && ok "refused -> 1" || ko "refused: got $rc"
"$N" -m ws </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "no URL: exit 2" || ko "no URL: got $rc"
"$N" -m ws http://127.0.0.1/ </dev/null >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "ws:// or wss://" "$T/err" && ok "not a ws URL: exit 2" || ko "http URL: got $rc"
"$N" -m ws --listen 99999 >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "bad --listen port: exit 2" || ko "bad --listen: got $rc"

finish
