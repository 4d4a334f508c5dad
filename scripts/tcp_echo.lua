-- tcp_echo: concurrent TCP echo server, one task per client (Ctrl-C stops)
local usage = [[
usage: netsh -m tcp_echo [-q] [host] [port]
Echoes back every byte each client sends; every client runs in its own
task. Logs connections to stderr (-q: only start and stop). Ctrl-C closes
the server and every client, then exits.
  host   address to listen on (default localhost; "*" = every address)
  port   TCP port (default 7777; 0 = any free port, printed on stderr)]]

local socket = require "socket"

local args, quiet = {}, false
for _, a in ipairs{...} do
  if a == "-h" or a == "--help" then print(usage) return end
  if a == "-q" then quiet = true else args[#args + 1] = a end
end
local host = args[1] or "localhost"
local port = tonumber(args[2] or 7777)
if not port then
  io.stderr:write(usage, "\n")
  os.exit(2)
end

local function log(fmt, ...)
  io.stderr:write(("[%s] "):format(os.date("%H:%M:%S")), fmt:format(...),
    "\n")
end

local server, err = socket.bind(host, port, 1024)
if not server then
  log("cannot listen on %s:%d: %s", host, port, err)
  os.exit(1)
end
local ip, bound = server:getsockname()
log("echo server listening on %s port %d", ip, bound)

local live, total = 0, 0
local function echo(client)
  local peer, pport = client:getpeername()
  live, total = live + 1, total + 1
  if not quiet then log("+ %s:%s (%d connected)", peer, pport, live) end
  while true do
    local data = client:receiveany(65536)
    if not data or not client:send(data) then break end
  end
  live = live - 1
  if not quiet then
    local received, sent, age = client:getstats()
    log("- %s:%s in=%d out=%d %.1fs (%d connected)", peer, pport, received,
      sent, age, live)
  end
end

local ok, why = pcall(server.serve, server, echo)
server:close()
if not ok and why ~= "interrupted" then error(why, 0) end
log("stopped after %d connection(s)", total)
