-- tcp_proxy.lua -- forward TCP connections to a target, both ways at once
--
--   netsh -m tcp_proxy 8080 127.0.0.1:80 --log
--
-- Each client gets its own connection to the target and two tasks, one per
-- direction (full duplex). When one side finishes sending, the other side
-- is told (half-close), so request/response protocols work through it.
-- With --log, one line per connection on stderr: peer, bytes each way, time.
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"

local opts, args = getopt.parse(arg, {
  name = "tcp_proxy",
  usage = "LISTEN_PORT TARGET_HOST:PORT",
  summary = "Accept on LISTEN_PORT and forward every connection to the "
    .. "target, in both directions.",
  options = {
    {"b", "bind", arg = "HOST", default = "127.0.0.1",
     help = "address to listen on (* for all)"},
    {"l", "log", help = "log each connection on stderr"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "connect timeout to the target"},
    {nil, "idle", arg = "SECONDS", type = "number", default = 300,
     help = "close a connection idle this long in both directions"},
  },
  min_args = 2, max_args = 2,
  exit_codes = {"0  stopped cleanly (Ctrl-C)", "1  could not listen",
    "2  usage error"},
})

local port = tonumber(args[1])
if not port or port < 0 or port > 65535 then die("bad LISTEN_PORT", 2) end
local thost, tport = args[2]:match("^%[(.+)%]:(%d+)$")
if not thost then thost, tport = args[2]:match("^(.+):(%d+)$") end
if not thost then die("TARGET must be HOST:PORT", 2) end
tport = tonumber(tport)
if tport < 1 or tport > 65535 then die("bad TARGET port (1-65535)", 2) end

local server, err = socket.bind(opts.bind, port)
if not server then die(("cannot listen on %s:%d: %s"):format(opts.bind, port, err), 1) end
local _, lport = server:getsockname()
io.stderr:write(("tcp_proxy: %s:%d -> %s\n"):format(opts.bind, lport, args[2]))

-- copy src -> dst until EOF or error; returns bytes copied
local function pump(src, dst, idle)
  local n = 0
  src:settimeout(idle)
  while true do
    -- receiveany + send, without a Lua string per chunk
    local k, e, sent = src:forward(dst)
    if not k then
      if sent then return n + sent, e end    -- the send failed
      if e == "closed" then dst:shutdown("send") end
      return n, e
    end
    n = n + k
  end
end

local count = 0
local ok, why = pcall(server.serve, server, function(client)
  count = count + 1
  local id = count
  local peer, pport = client:getpeername()
  local t0 = task.now()
  local upstream, cerr = socket.create_connection({thost, tport}, opts.timeout)
  if not upstream then
    if opts.log then
      io.stderr:write(("tcp_proxy: #%d %s:%s -> %s failed: %s\n")
        :format(id, peer, pport, args[2], cerr))
    end
    return
  end
  local up, down
  local ok, e = pcall(task.group, function(g)
    g:spawn(function() up = pump(client, upstream, opts.idle) end)
    g:spawn(function() down = pump(upstream, client, opts.idle) end)
  end)
  upstream:close()
  if opts.log then
    io.stderr:write(("tcp_proxy: #%d %s:%s up %d B, down %d B, %.3fs%s\n")
      :format(id, peer, pport, up or 0, down or 0, task.now() - t0,
        ok and "" or (" (" .. tostring(e) .. ")")))
  end
end)
server:close()
-- Ctrl-C is how a proxy stops: exit 0, as --help says
if not ok and why ~= "interrupted" then error(why, 0) end
