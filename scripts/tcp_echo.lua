-- tcp_echo: concurrent TCP echo server, one task per client (Ctrl-C stops)
local usage = [[
usage: netsh -m tcp_echo [-q] [--tls CERT KEY] [host] [port]
Echoes back every byte each client sends; every client runs in its own
task. Logs connections to stderr (-q: only start and stop). Ctrl-C closes
the server and every client, then exits.
  host   address to listen on (default localhost; "*" = every address)
  port   TCP port (default 7777; 0 = any free port, printed on stderr)
  --tls CERT KEY  speak TLS, with this certificate (chain) and key (PEM)]]

local socket = require "socket"

local argv, args, quiet, tls = {...}, {}, false, nil
local i = 1
while i <= #argv do
  local a = argv[i]
  if a == "-h" or a == "--help" then print(usage) return end
  if a == "-q" then quiet = true
  elseif a == "--tls" then
    if not argv[i + 2] then
      io.stderr:write(usage, "\n")
      os.exit(2)
    end
    tls = {certfile = argv[i + 1], keyfile = argv[i + 2]}
    i = i + 2
  else args[#args + 1] = a end
  i = i + 1
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

local server, err = socket.bind(host, port, {backlog = 1024, tls = tls})
if not server then
  log("cannot listen on %s:%d: %s", host, port, err)
  os.exit(1)
end
local ip, bound = server:getsockname()
log("echo server listening on %s port %d%s", ip, bound,
  tls and " (TLS)" or "")

local live, total = 0, 0
local function echo(client)
  local peer, pport = client:getpeername()
  -- echo each chunk at once: Nagle would hold a partial echo back until
  -- the peer ACKs (up to 40 ms), as every low-latency server knows
  client:setoption("tcp-nodelay", true)
  live, total = live + 1, total + 1
  if not quiet then log("+ %s:%s (%d connected)", peer, pport, live) end
  local why
  while true do
    local data, e = client:receiveany(65536)
    if not data then why = e break end
    if not client:send(data) then break end
  end
  live = live - 1
  if not quiet then
    local received, sent, age = client:getstats()
    log("- %s:%s in=%d out=%d %.1fs (%d connected)%s", peer, pport,
      received, sent, age, live,
      why and why ~= "closed" and ": " .. why or "")
  end
end

local ok, why = pcall(server.serve, server, echo)
server:close()
if not ok and why ~= "interrupted" then error(why, 0) end
log("stopped after %d connection(s)", total)
