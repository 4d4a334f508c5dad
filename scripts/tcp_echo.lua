-- tcp_echo.lua -- concurrent TCP echo server, one task per client
--
--   netsh -m tcp_echo                      # localhost:12345
--   netsh -m tcp_echo '*' 7777 -q
--   netsh -m tcp_echo --tls cert.pem key.pem localhost 8443
--
-- Echoes back every byte each client sends; every client runs in its own
-- task (server:serve). Logs connections to stderr. Ctrl-C closes the
-- server and every client, then exits 0.
local getopt = require "getopt"
local socket = require "socket"

local opts, args = getopt.parse(arg, {
  name = "tcp_echo",
  usage = "[HOST] [PORT] | unix:PATH",
  summary = "Echo back every byte each client sends, every client in its "
    .. "own task. HOST defaults to localhost (\"*\": every address), PORT "
    .. "to 12345 (0: any free port, printed on stderr).",
  options = {
    {"q", "quiet", help = "log only start and stop"},
    {nil, "tls", arg = "CERT KEY", nargs = 2,
     help = "speak TLS with this certificate (chain) and key (PEM)"},
    {nil, "idle", arg = "SECONDS", type = "number", default = 300,
     help = "close a client silent this long (0: never)"},
  },
  max_args = 2,
  exit_codes = {"0  stopped with Ctrl-C", "1  could not listen",
    "2  usage error"},
})

local host = args[1] or "localhost"
local unix = host:match("^unix:") ~= nil       -- unix:PATH, no port
local port = not unix and tonumber(args[2] or 12345) or nil
if unix and args[2] then die("unix:PATH takes no PORT (try --help)", 2) end
if not unix and (not port or port < 0 or port > 65535) then
  die("bad PORT (try --help)", 2)
end
local tls = opts.tls and {certfile = opts.tls[1], keyfile = opts.tls[2]}
local quiet = opts.quiet

local function log(fmt, ...)
  io.stderr:write(("[%s] "):format(os.date("%H:%M:%S")), fmt:format(...),
    "\n")
end

local server, err = socket.bind(host, port, {backlog = 1024, tls = tls})
if not server then
  log("cannot listen on %s%s: %s", host, port and ":" .. port or "", err)
  os.exit(1)
end
local ip, bound = server:getsockname()
if unix then
  log("echo server listening on unix:%s%s", ip, tls and " (TLS)" or "")
else
  log("echo server listening on %s port %d%s", ip, bound,
    tls and " (TLS)" or "")
end

local live, total = 0, 0
local function echo(client)
  local peer, pport = client:getpeername()
  -- echo each chunk at once: Nagle would hold a partial echo back until
  -- the peer ACKs (up to 40 ms), as every low-latency server knows
  if not unix then client:setoption("tcp-nodelay", true) end
  if opts.idle > 0 then client:settimeout(opts.idle) end
  live, total = live + 1, total + 1
  -- a Unix client has no name: number them
  local who = unix and ("unix client #" .. total)
    or (tostring(peer) .. ":" .. tostring(pport))
  if not quiet then log("+ %s (%d connected)", who, live) end
  local why
  while true do
    -- receiveany + send without a Lua string per chunk (see forward)
    local n, e, sent = client:forward(client)
    if not n then
      if not sent then why = e end       -- the receive ended it
      break
    end
  end
  live = live - 1
  if not quiet then
    local received, sent, age = client:getstats()
    log("- %s in=%d out=%d %.1fs (%d connected)%s", who,
      received, sent, age, live,
      why and why ~= "closed" and ": " .. why or "")
  end
end

local ok, why = pcall(server.serve, server, echo)
server:close()
if unix then os.remove(ip) end           -- the socket file we made
if not ok and why ~= "interrupted" then error(why, 0) end
log("stopped after %d connection(s)", total)
