#!/usr/bin/env bash
# http_serve_conns.sh NETSH -- http.server holding 10,000 idle keep-alive
# connections (each has had one request answered) while it keeps serving
# other clients quickly, then letting them all go. Server and clients are
# two netsh processes (each needs ~10,050 descriptors: RLIMIT_NOFILE is
# raised to the hard limit; below 10,200 the test fails and says so).
set -u
NETSH=${1:?usage: http_serve_conns.sh path/to/netsh}
N=${HTTP_SERVE_CONNS:-10000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 200)) ]; then
  echo "FAIL descriptor limit $(ulimit -n) < $((N + 200)) (raise ulimit -Hn)"
  exit 1
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat > "$tmp/server.lua" <<'LUA'
local srv = assert(http.server{port = 0, keepalive_timeout = 120,
  max_connections = 20000, backlog = 4096,
  handler = function(req)
    if req.path == "/count" then return 200, nil, tostring(SRV:connections()) end
    return 200, nil, "ok"
  end})
SRV = srv
io.stderr:write("port ", srv.port, "\n")
srv:serve()
LUA
cat > "$tmp/clients.lua" <<'LUA'
local port, n, ready = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local conns, failed = {}, 0
local function one(i)
  local c, err = socket.connect("127.0.0.1", port)
  if not c then failed = failed + 1 return end
  c:settimeout(30)
  c:send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
  local line = c:receive("*l")
  if line ~= "HTTP/1.1 200 OK" then failed = failed + 1 end
  repeat line = c:receive("*l") until not line or line == ""
  c:receive(2)
  conns[i] = c
end
for b = 0, n - 1, 250 do                  -- 250 connects at a time
  task.group(function(g)
    for i = b + 1, math.min(b + 250, n) do g:spawn(one, i) end
  end)
end
local f = io.open(ready, "w") f:write(failed, "\n") f:close()
sleep(tonumber(arg[4]) or 60)             -- hold them (killed before)
LUA

"$NETSH" "$tmp/server.lua" 2>"$tmp/server.err" & pids+=($!)
for _ in $(seq 100); do
  port=$(sed -n 's/^port //p' "$tmp/server.err")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL server did not start"; cat "$tmp/server.err"; exit 1; }
"$NETSH" "$tmp/clients.lua" "$port" "$N" "$tmp/ready" 120 & pids+=($!)
clients=$!
for _ in $(seq 1200); do [ -s "$tmp/ready" ] && break; sleep 0.1; done
echo "# clients connected after ${SECONDS}s"
fail=0
failed=$(cat "$tmp/ready" 2>/dev/null)
if [ "$failed" != 0 ]; then echo "FAIL $failed of $N clients failed"; fail=1
else echo "ok   $N keep-alive connections answered"; fi
count=$(curl -s "http://127.0.0.1:$port/count")
if [ "$count" -ge "$N" ] 2>/dev/null; then echo "ok   server holds $count connections"
else echo "FAIL server holds '$count' connections"; fail=1; fi
# another client is served quickly meanwhile
t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/")
if awk "BEGIN{exit !($t < 0.5)}"; then echo "ok   a new client served in ${t}s"
else echo "FAIL a new client took ${t}s"; fail=1; fi
kill "$clients"; wait "$clients" 2>/dev/null
for _ in $(seq 100); do
  count=$(curl -s "http://127.0.0.1:$port/count")
  [ "$count" = 1 ] && break
  sleep 0.1
done
echo "# released after ${SECONDS}s"
if [ "$count" = 1 ]; then echo "ok   all connections released"
else echo "FAIL $count connections left"; fail=1; fi
if grep -q . "$tmp/server.err" && grep -qv '^port ' "$tmp/server.err"; then
  echo "FAIL server stderr:"; grep -v '^port ' "$tmp/server.err" | head; fail=1
fi
exit $fail
