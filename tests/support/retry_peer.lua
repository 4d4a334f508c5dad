-- retry_peer.lua -- a small HTTP server for tests/cli/retry_scripts.sh:
-- flaky answers and a server-sent event stream, on netsh's http.server
-- (it replaced a Python stand-in).
--
--   netsh retry_peer.lua PORTFILE [LIFETIME_SECONDS]
--
-- Binds 127.0.0.1:0 and writes "PORT PID" to PORTFILE (atomically) once it
-- listens; exits by itself after LIFETIME_SECONDS (default 120). Every
-- connection is closed after one response. Counters are per path.
--
-- Routes:
--   /flaky/K/N     the first N requests drop the connection (no answer),
--                  then 200 "ok"
--   /busy/K/N      the first N requests get 503 with Retry-After: 0
--   /sse/K         1st request: retry: 100, event 1, half of event 2, drop;
--                  2nd (Last-Event-ID: 1 expected): event 2 (type "tick",
--                  two data lines), CR line ends; then 204
--   /count/K       how many requests /.../K got so far
local portfile, lifetime = arg[1], tonumber(arg[2]) or 120
local counts = {}
local function bump(k)
  counts[k] = (counts[k] or 0) + 1
  return counts[k]
end
local close = {Connection = "close"}
local sse = {["Content-Type"] = "text/event-stream", Connection = "close"}

local r = http.router()
r:get("/count/:k", function(req, p)
  return 200, close, tostring(counts[p.k] or 0)
end)
r:get("/flaky/:k/:n", function(req, p)
  if bump(p.k) <= tonumber(p.n) then
    local sock = req:hijack()      -- closed without an answer
    sock:close()
    return
  end
  return 200, close, "ok"
end)
r:get("/busy/:k/:n", function(req, p)
  if bump(p.k) <= tonumber(p.n) then
    return 503, {["Retry-After"] = "0", Connection = "close"}, "busy"
  end
  return 200, close, "ok"
end)
r:get("/sse/:k", function(req, p)
  local n = bump(p.k)
  if n == 1 then                   -- no framing: the drop cuts event 2
    local sock = req:hijack()
    for _, piece in ipairs{"HTTP/1.1 200 OK\r\nContent-Type: "
        .. "text/event-stream\r\nConnection: close\r\n\r\n",
        "retry: 100\n\n", "id: 1\n", "data: one\n\n", "id: 2\ndata: tw"} do
      sock:send(piece)
      sleep(0.02)
    end
    sock:close()
    return
  elseif n == 2 then
    local last = req.headers["last-event-id"] or "none"
    return 200, sse, "id: 2\revent: tick\rdata: two\rdata: after " .. last
      .. "\r\r"
  end
  return 204, close
end)

local srv = assert(http.server{port = 0, handler = r})
local f = assert(io.open(portfile .. ".tmp", "w"))
local pf = assert(io.open("/proc/self/stat"))
f:write(srv.port, " ", pf:read("n"), "\n")
pf:close()
f:close()
assert(os.rename(portfile .. ".tmp", portfile))
spawn(function() sleep(lifetime) srv:close() end)
srv:serve()
