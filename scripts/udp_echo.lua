-- udp_echo.lua -- a UDP echo server: sends every datagram back to its sender
-- usage: netsh scripts/udp_echo.lua [options] [host] [port]
--        (or netsh -m udp_echo ...; defaults: localhost 12345)
-- One task reads the datagrams and answers each at once; replies the
-- kernel cannot take right away wait without blocking the next receive.
local getopt = require "getopt"

local opts, args = getopt.parse(arg, {
  name = "udp_echo", usage = "[host] [port] | unix:PATH",
  summary = "A UDP echo server: every datagram goes back to its sender.",
  options = {
    {"n", "count", arg = "N", type = "integer",
     help = "exit after echoing N datagrams"},
    {"t", "idle", arg = "SECONDS", type = "number",
     help = "exit after SECONDS without a datagram"},
    {"q", "quiet", help = "do not print the listening address"},
  },
  max_args = 2,
  exit_codes = {"0  stopped by --count, --idle or Ctrl-C", "1  cannot bind",
    "2  usage error"},
})

local host = args[1] or "localhost"
local unix = host:match("^unix:") ~= nil    -- unix:PATH, no port
local port = not unix and math.tointeger(tonumber(args[2] or 12345)) or nil
if unix and args[2] then
  io.stderr:write("udp_echo: unix:PATH takes no port\n")
  os.exit(2)
end
if not unix and not (port and port >= 0 and port <= 65535) then
  io.stderr:write("udp_echo: port must be a number from 0 to 65535\n")
  os.exit(2)
end

local sock, err = udp.bind(host, port)
if not sock then
  io.stderr:write(("udp_echo: cannot bind %s%s: %s\n"):format(host,
    port and ":" .. port or "", err))
  os.exit(1)
end
-- the socket file we make goes when we end, also on Ctrl-C (an error
-- unwinding through this to-be-closed variable)
local name = unix and sock:getsockname()
local remove_file <close> = setmetatable({}, {__close = function()
  if name then os.remove(name) end
end})
if opts.idle then sock:settimeout(opts.idle) end
if not opts.quiet then
  local ip, p = sock:getsockname()
  io.stderr:write(unix and ("udp_echo: listening on unix:%s\n"):format(ip)
    or ("udp_echo: listening on %s port %d\n"):format(ip, p))
end

-- Every datagram becomes a Lua string that dies at once: the generational
-- collector frees those young strings cheaply, where the default
-- incremental one re-marks the whole heap every few hundred KiB received
-- (about 1 us of CPU per 16 KiB datagram at full load).
collectgarbage("generational")

local count, limit = 0, opts.count
local ok, why = pcall(function()
  for data, ip, p in sock:datagrams() do
    sock:sendto(data, ip, p)     -- a failed reply is dropped, as UDP may
    count = count + 1
    if limit and count >= limit then break end
  end
end)
sock:close()
-- Ctrl-C is a normal way to stop a server: exit 0, as --help says
if not ok and why ~= "interrupted" then error(why, 0) end
