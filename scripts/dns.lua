-- dns.lua -- resolve names through netsh's asynchronous resolver
--
--   netsh -m dns example.com localhost --type any
--   netsh -m dns example.com --type MX --json
--
-- A, AAAA and any use the system's rules (/etc/hosts, then DNS, as
-- getaddrinfo); MX TXT SRV CNAME NS PTR ask DNS and show TTLs. --json
-- writes docs/json-lines.md's envelope (target: the name), --shard I/N
-- resolves this copy's share of the names, --nagios is a Nagios plugin
-- (--warn/--crit: seconds a name takes).
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"
local exitcodes = require "netsh.exitcodes"
local jsonl = require "netsh.jsonl"
local shard = require "netsh.shard"

local usage_error, on_usage_error = exitcodes.usage(arg, "DNS")
local opts, names = getopt.parse(arg, {
  name = "dns",
  usage = "NAME...",
  summary = "Resolve each NAME (also from stdin, one per line, when none "
    .. "is given), all at once.",
  options = exitcodes.add_nagios(jsonl.add{
    {"t", "type", arg = "TYPE", default = "any",
     choices = {"any", "A", "AAAA", "MX", "TXT", "SRV", "CNAME", "NS", "PTR"},
     help = "record type"},
    {nil, "server", arg = "IP[:PORT]", help = "ask this DNS server"},
    {nil, "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "per name"},
    {nil, "json", help = "one JSON object per record on stdout"},
    shard.option,
  }, {warn = "with --nagios: WARNING when a name takes seconds outside "
       .. "RANGE", crit = "with --nagios: CRITICAL when outside RANGE"}),
  on_usage_error = on_usage_error,
  exit_codes = {"0  every name resolved", "1  some name did not resolve",
    "2  usage error", "with --nagios: 0 OK, 1 WARNING (slow), 2 CRITICAL "
      .. "(a name did not resolve, or too slow), 3 UNKNOWN"},
})
if (opts.warn or opts.crit) and not opts.nagios then
  usage_error("--warn and --crit go with --nagios")
end
local sh = shard.from(opts.shard, usage_error)
local out = opts.json and jsonl.new("dns", opts.tag, usage_error)
local nag = opts.nagios and exitcodes.nagios("DNS", opts)

if #names == 0 then
  for line in io.lines() do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line:sub(1, 1) ~= "#" then names[#names + 1] = line end
  end
end
if #names == 0 then usage_error("no NAME given") end
local given = #names
names = shard.filter(names, sh)
if #names == 0 then
  io.stderr:write(("dns: shard %s: none of the %d names is this copy's\n")
    :format(tostring(sh), given))
  if nag then
    nag:exit(("shard %s: no name to resolve"):format(tostring(sh)))
  end
  os.exit(0)
end
if opts.server then
  local ok, err = socket.dns.setservers{opts.server}
  if not ok then usage_error("bad --server: " .. tostring(err)) end
end

local function addresses(name)
  local list, err = task.timeout(opts.timeout, socket.dns.getaddrinfo, name)
  if not list then return nil, err end
  local out = {}
  for _, a in ipairs(list) do
    local t = a.family == "inet6" and "AAAA" or "A"
    if opts.type == "any" or opts.type == t then
      out[#out + 1] = {name = name, type = t, address = a.addr}
    end
  end
  return out
end

local function show(r)
  if nag then return end
  if out then
    -- the envelope's target is the name asked; a record's own target
    -- (SRV, CNAME, NS, PTR) is points_to
    local fields = {}
    for k, v in pairs(r) do
      if k == "target" then fields.points_to = v
      elseif k ~= "name" and k ~= "asked" then fields[k] = v end
    end
    if r.name ~= r.asked then fields.name = r.name end
    return out:emit(r.asked, true, nil, fields)
  end
  local value = r.address or r.exchange or r.target or r.text
  if r.type == "MX" then value = ("%d %s"):format(r.preference, r.exchange)
  elseif r.type == "SRV" then
    value = ("%d %d %d %s"):format(r.priority, r.weight, r.port, r.target)
  end
  printf("%s\t%s\t%s%s\n", r.name, r.type, value,
    r.ttl and ("\tttl=" .. r.ttl) or "")
end

local failed = 0
local results = {}
task.group(function(g)
  for i, name in ipairs(names) do
    g:spawn(function()
      local t0 = task.now()
      local recs, err
      if opts.type == "any" or opts.type == "A" or opts.type == "AAAA" then
        recs, err = addresses(name)
      else
        recs, err = socket.dns.query(name, opts.type, opts.timeout)
        if recs then for _, r in ipairs(recs) do r.name = r.name or name end end
      end
      for _, r in ipairs(recs or {}) do r.asked = name
      end
      if recs and #recs == 0 then recs, err = nil, "no " .. opts.type .. " record" end
      results[i] = {name = name, recs = recs, err = err,
        seconds = task.now() - t0}
    end)
  end
end)
-- print in the order given, whatever order the answers came in
for _, r in ipairs(results) do
  if nag then
    if r.recs then
      local state = nag:judge(r.seconds)
      nag:status(state, state > 0
        and ("%s: %.3f s"):format(r.name, r.seconds) or nil)
    else
      nag:status(2, ("%s: %s"):format(r.name, r.err))
    end
    nag:perf(r.name, r.seconds, "s", 0)
  end
  if r.recs then
    for _, rec in ipairs(r.recs) do show(rec) end
  else
    failed = failed + 1
    if out then out:emit(r.name, false, r.err, {type = opts.type})
    elseif not nag then
      io.stderr:write(("dns: %s: %s\n"):format(r.name, r.err))
    end
  end
end
if nag then
  nag:exit(("%d of %d names resolved"):format(#names - failed, #names))
end
os.exit(failed == 0 and 0 or 1)
