-- port_scan.lua -- concurrent TCP connect scan of one host
--
--   netsh -m port_scan 127.0.0.1 --ports 1-1024,8080 -c 200 --timeout 0.5
--
-- Open ports are printed as they are found (plain "PORT/tcp open" or
-- --json lines), then a summary on stderr. Scan only hosts you own.
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"

local opts, args = getopt.parse(arg, {
  name = "port_scan",
  usage = "HOST --ports LIST",
  summary = "Try a TCP connect to each port of HOST, -c at a time. "
    .. "LIST is ports and ranges: 22,80,8000-8100.",
  options = {
    {"p", "ports", arg = "LIST", help = "ports to try (required)"},
    {"c", "concurrency", arg = "N", type = "integer", default = 200,
     help = "connections in flight (at most 10000)"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 0.5,
     help = "per connection attempt"},
    {nil, "closed", help = "also print closed/filtered ports"},
    {nil, "json", help = "one JSON object per port on stdout"},
  },
  min_args = 1, max_args = 1,
  min_message = "give the HOST to scan explicitly (there is no default)",
  exit_codes = {"0  the scan ran (open ports or not)",
    "1  the host could not be resolved", "2  usage error"},
})

if not opts.ports then die("--ports is required, e.g. --ports 1-1024", 2) end
if opts.concurrency < 1 then die("-c must be at least 1", 2) end
if opts.concurrency > 10000 then die("-c is at most 10000", 2) end

local ports = {}
for item in opts.ports:gmatch("[^,]+") do
  local a, b = item:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
  if not a then a = item:match("^%s*(%d+)%s*$") b = a end
  a, b = tonumber(a), tonumber(b)
  if not a or a < 1 or b > 65535 or a > b then
    die(("bad port or range '%s' (1-65535)"):format(item), 2)
  end
  for p = a, b do ports[#ports + 1] = p end
end

local host = args[1]
-- resolve once: every attempt then connects to the same address
local ip, err = socket.dns.toip(host)
if not ip then die(("cannot resolve %s: %s"):format(host, err), 1) end

local t0 = task.now()
local open, next_i = 0, 1
local function worker()
  while next_i <= #ports do
    local port = ports[next_i]
    next_i = next_i + 1
    local started = task.now()
    local s, e = socket.create_connection({ip, port}, opts.timeout)
    local state = s and "open" or (e == "timeout" and "filtered" or "closed")
    if s then s:close() open = open + 1 end
    if s or opts.closed then
      if opts.json then
        json.print{host = host, ip = ip, port = port, state = state,
          seconds = task.now() - started}
      else
        printf("%d/tcp %s\n", port, state)
      end
    end
  end
end

task.group(function(g)
  for _ = 1, math.min(opts.concurrency, #ports) do g:spawn(worker) end
end)
io.stderr:write(("port_scan: %s (%s): %d open of %d ports in %.2fs\n")
  :format(host, ip, open, #ports, task.now() - t0))
