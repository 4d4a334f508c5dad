-- port_scan.lua -- concurrent TCP connect scan of one host
--
--   netsh -m port_scan 127.0.0.1 --ports 1-1024,8080 -c 200 --timeout 0.5
--
-- Open ports are printed as they are found (plain "PORT/tcp open" or
-- --json lines), then a summary on stderr. Scan only hosts you own.
-- --json lines carry docs/json-lines.md's envelope (target HOST:PORT, ok
-- when open); --shard I/N tries this copy's share of the ports; --nagios
-- judges the number of open ports (--warn/--crit ranges, e.g. 2:2).
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"
local exitcodes = require "netsh.exitcodes"
local jsonl = require "netsh.jsonl"
local shard = require "netsh.shard"

local usage_error, on_usage_error = exitcodes.usage(arg, "PORT_SCAN")
local opts, args = getopt.parse(arg, {
  name = "port_scan",
  usage = "HOST --ports LIST",
  summary = "Try a TCP connect to each port of HOST, -c at a time. "
    .. "LIST is ports and ranges: 22,80,8000-8100.",
  options = exitcodes.add_nagios(jsonl.add{
    {"p", "ports", arg = "LIST", help = "ports to try (required)"},
    {"c", "concurrency", arg = "N", type = "integer", default = 200,
     help = "connections in flight (at most 10000)"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 0.5,
     help = "per connection attempt"},
    {nil, "closed", help = "also print closed/filtered ports"},
    {nil, "json", help = "one JSON object per port on stdout"},
    shard.option,
  }, {warn = "with --nagios: WARNING when the number of open ports is "
       .. "outside RANGE (2:2: exactly two)",
     crit = "with --nagios: CRITICAL when it is outside RANGE"}),
  on_usage_error = on_usage_error,
  min_args = 1, max_args = 1,
  min_message = "give the HOST to scan explicitly (there is no default)",
  exit_codes = {"0  the scan ran (open ports or not)",
    "1  the host could not be resolved", "2  usage error",
    "with --nagios: 0 OK, 1 WARNING / 2 CRITICAL (open ports outside "
      .. "--warn / --crit, or 2: the host cannot be resolved), 3 UNKNOWN"},
})

if not opts.ports then
  usage_error("--ports is required, e.g. --ports 1-1024")
end
if opts.concurrency < 1 then usage_error("-c must be at least 1") end
if opts.concurrency > 10000 then usage_error("-c is at most 10000") end
if (opts.warn or opts.crit) and not opts.nagios then
  usage_error("--warn and --crit go with --nagios")
end
local sh = shard.from(opts.shard, usage_error)
local out = opts.json and jsonl.new("port_scan", opts.tag, usage_error)
local nag = opts.nagios and exitcodes.nagios("PORT_SCAN", opts)

local ports = {}
for item in opts.ports:gmatch("[^,]+") do
  local a, b = item:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
  if not a then a = item:match("^%s*(%d+)%s*$") b = a end
  a, b = tonumber(a), tonumber(b)
  if not a or a < 1 or b > 65535 or a > b then
    usage_error(("bad port or range '%s' (1-65535)"):format(item))
  end
  for p = a, b do ports[#ports + 1] = p end
end

local host = args[1]
-- a target is HOST:PORT ([v6]:PORT), as the JSON lines and --shard see it
local function target(port)
  local h = host:find(":", 1, true) and "[" .. host .. "]" or host
  return h .. ":" .. port
end
local given = #ports
if sh then
  local mine = {}
  for _, p in ipairs(ports) do
    if sh:mine(target(p)) then mine[#mine + 1] = p end
  end
  ports = mine
end
-- resolve once: every attempt then connects to the same address
local ip, err = socket.dns.toip(host)
if not ip then
  if nag then
    nag:status(2, ("cannot resolve %s: %s"):format(host, err))
    nag:exit()
  end
  die(("cannot resolve %s: %s"):format(host, err), 1)
end

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
    if nag then
      -- only the count matters
    elseif s or opts.closed then
      if out then
        out:emit(target(port), s ~= nil, e, {ip = ip, port = port,
          state = state, seconds = task.now() - started})
      else
        printf("%d/tcp %s\n", port, state)
      end
    end
  end
end

task.group(function(g)
  for _ = 1, math.min(opts.concurrency, #ports) do g:spawn(worker) end
end)
io.stderr:write(("port_scan: %s (%s): %d open of %d ports in %.2fs%s\n")
  :format(host, ip, open, #ports, task.now() - t0,
    sh and (" (shard %s of %d ports)"):format(tostring(sh), given) or ""))
if nag then
  nag:status(nag:judge(open))
  nag:perf("open", open, nil, 0, #ports)
  nag:exit(("%d of %d ports open on %s"):format(open, #ports, host))
end
