-- dns.lua -- resolve names through netsh's asynchronous resolver
--
--   netsh -m dns example.com localhost --type any
--   netsh -m dns example.com --type MX --json
--
-- A, AAAA and any use the system's rules (/etc/hosts, then DNS, as
-- getaddrinfo); MX TXT SRV CNAME NS PTR ask DNS and show TTLs.
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"

local opts, names = getopt.parse(arg, {
  name = "dns",
  usage = "NAME...",
  summary = "Resolve each NAME (also from stdin, one per line, when none "
    .. "is given), all at once.",
  options = {
    {"t", "type", arg = "TYPE", default = "any",
     choices = {"any", "A", "AAAA", "MX", "TXT", "SRV", "CNAME", "NS", "PTR"},
     help = "record type"},
    {nil, "server", arg = "IP[:PORT]", help = "ask this DNS server"},
    {nil, "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "per name"},
    {nil, "json", help = "one JSON object per record on stdout"},
  },
  exit_codes = {"0  every name resolved", "1  some name did not resolve",
    "2  usage error"},
})

if #names == 0 then
  for line in io.lines() do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line:sub(1, 1) ~= "#" then names[#names + 1] = line end
  end
end
if #names == 0 then die("no NAME given (try --help)", 2) end
if opts.server then
  local ok, err = socket.dns.setservers{opts.server}
  if not ok then die("bad --server: " .. tostring(err), 2) end
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
  if opts.json then return json.print(r) end
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
      local recs, err
      if opts.type == "any" or opts.type == "A" or opts.type == "AAAA" then
        recs, err = addresses(name)
      else
        recs, err = socket.dns.query(name, opts.type, opts.timeout)
        if recs then for _, r in ipairs(recs) do r.name = r.name or name end end
      end
      if recs and #recs == 0 then recs, err = nil, "no " .. opts.type .. " record" end
      results[i] = {name = name, recs = recs, err = err}
    end)
  end
end)
-- print in the order given, whatever order the answers came in
for _, r in ipairs(results) do
  if r.recs then
    for _, rec in ipairs(r.recs) do show(rec) end
  else
    failed = failed + 1
    if opts.json then json.print{name = r.name, error = r.err}
    else io.stderr:write(("dns: %s: %s\n"):format(r.name, r.err)) end
  end
end
os.exit(failed == 0 and 0 or 1)
