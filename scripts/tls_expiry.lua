-- tls_expiry.lua -- days until the TLS certificates of hosts expire; a
-- cron/pipeline check. Hosts come from the arguments, or from stdin (one
-- per line, # comments) when there are none or one is "-".
--
--   netsh -m tls_expiry example.org mail.example.org:465 [::1]:8443
--   netsh -m tls_expiry --json --warn 30 < hosts.txt
--
-- Prints one line per host (plain, or JSON lines with --json): target,
-- days left, notAfter, status (ok, expiring, expired, invalid, error) and
-- the reason. The certificate is fetched without failing the handshake
-- so an expired or untrusted one still shows its date. Exits 1 if
-- any certificate expires within --warn days (default 14), fails to
-- verify (chain, expiry, host name), or the host cannot be reached.
local task = require "task"
local socket = require "socket"

local USAGE = [[
usage: netsh -m tls_expiry [options] host[:port] ...
Prints the days until each host's TLS certificate expires (port 443
unless given; IPv6 as [addr]:port). Hosts are read from stdin, one per
line, when none is given or one is "-".
  --warn DAYS      fail when a certificate expires within DAYS (14)
  --json           JSON lines instead of text
  --timeout S      per host connect+handshake limit in seconds (10)
  --cafile FILE    trust FILE instead of the system store
  --servername N   name to send and check instead of the host
  --parallel N     hosts checked at once (8)
  -h, --help       this text
Exit status: 0 all fine, 1 a certificate expires soon, fails to verify
or a host fails, 2 usage error.]]

local function usage_error(msg)
  io.stderr:write("tls_expiry: ", msg, "\n", USAGE, "\n")
  os.exit(2)
end

local function parse_args(argv)
  local o = {warn = 14, timeout = 10, parallel = 8, hosts = {}}
  local i = 1
  local function value(name)
    i = i + 1
    local v = argv[i]
    if v == nil then usage_error(name .. " needs a value") end
    return v
  end
  local function number(name)
    local v = tonumber(value(name))
    if not v or v < 0 then usage_error(name .. " needs a number >= 0") end
    return v
  end
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      print(USAGE)
      os.exit(0)
    elseif a == "--json" then o.json = true
    elseif a == "--warn" then o.warn = number(a)
    elseif a == "--timeout" then o.timeout = number(a)
    elseif a == "--parallel" then o.parallel = math.max(1, number(a) // 1)
    elseif a == "--cafile" then o.cafile = value(a)
    elseif a == "--servername" then o.servername = value(a)
    elseif a == "-" then o.stdin = true
    elseif a:sub(1, 2) == "--" then usage_error("unknown option " .. a)
    else o.hosts[#o.hosts + 1] = a end
    i = i + 1
  end
  if #o.hosts == 0 then o.stdin = true end
  return o
end

-- "host", "host:port", "[v6]:port", "v6" -> host, port | nil, err
local function split_target(s)
  local h, p = s:match("^%[(.+)%]:(%d+)$")
  if not h then h = s:match("^%[(.+)%]$") end
  if not h then
    local colons = select(2, s:gsub(":", ""))
    if colons == 1 then h, p = s:match("^(.+):(%d+)$")
    elseif colons >= 2 or colons == 0 then h = s end
  end
  if not h or h == "" then return nil, "bad target" end
  p = tonumber(p or 443)
  if not p or p < 1 or p > 65535 then return nil, "bad port" end
  return h, p
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n',
      ['\r'] = '\\r', ['\t'] = '\\t'}
    return map[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_line(r)
  local keys = {"target", "host", "port", "status", "days", "not_after",
    "subject", "issuer", "error"}
  local out = {}
  for _, k in ipairs(keys) do
    local v = r[k]
    if v ~= nil then
      local enc = type(v) == "number" and ("%d"):format(v)
        or json_string(tostring(v))
      out[#out + 1] = json_string(k) .. ":" .. enc
    end
  end
  return "{" .. table.concat(out, ",") .. "}"
end

-- Connects, fetches the certificate without failing on verification (so
-- an expired certificate still shows its date), then judges it.
local function check(target, o)
  local r = {target = target}
  local host, port = split_target(target)
  if not host then
    r.status, r.error = "error", port
    return r
  end
  r.host, r.port = host, port
  local tls = {verify = false, servername = o.servername or host,
    cafile = o.cafile}
  local sock, err = task.timeout(o.timeout, socket.connect, host, port,
    {tls = tls, timeout = o.timeout})
  if not sock then
    r.status, r.error = "error", err
    return r
  end
  local cert = sock:getpeercertificate()
  sock:close()
  if not cert then
    r.status, r.error = "error", "no certificate"
    return r
  end
  r.not_after = cert.not_after_iso
  r.subject, r.issuer = cert.subject, cert.issuer
  r.days = math.floor((cert.not_after - os.time()) / 86400)
  if r.days < 0 then
    r.status, r.error = "expired", cert.verify_error
  elseif not cert.verified then
    r.status, r.error = "invalid", cert.verify_error
  elseif r.days < o.warn then
    r.status = "expiring"
  else
    r.status = "ok"
  end
  return r
end

local function print_result(r, o)
  if o.json then
    print(json_line(r))
  elseif r.days then
    print(("%-32s %5d days  %s  %s%s"):format(r.target, r.days,
      r.not_after, r.status, r.error and (": " .. r.error) or ""))
  else
    print(("%-32s     -       %s: %s"):format(r.target, r.status, r.error))
  end
end

local function read_stdin_hosts(list)
  local stdin = require "netsh.stdin"
  for line in function() return stdin.read("l") end do
    line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
    for word in line:gmatch("%S+") do list[#list + 1] = word end
  end
end

local function main(argv)
  local o = parse_args(argv)
  local targets = {}
  for _, h in ipairs(o.hosts) do
    if h ~= "-" then targets[#targets + 1] = h end
  end
  if o.stdin then read_stdin_hosts(targets) end
  if #targets == 0 then usage_error("no hosts") end
  -- a few workers take targets in turn; results print in input order
  local results, next_i, printed = {}, 1, 0
  local done = task.cond()
  local function worker()
    while next_i <= #targets do
      local i = next_i
      next_i = i + 1
      local ok, r = pcall(check, targets[i], o)
      if not ok then r = {target = targets[i], status = "error",
        error = tostring(r)} end
      results[i] = r
      done:signal()
    end
  end
  for _ = 1, math.min(o.parallel, #targets) do spawn(worker) end
  local bad = false
  while printed < #targets do
    while results[printed + 1] do
      printed = printed + 1
      local r = results[printed]
      print_result(r, o)
      if r.status ~= "ok" then bad = true end
    end
    if printed < #targets then done:wait() end
  end
  io.stdout:flush()
  os.exit(bad and 1 or 0)
end

main({...})
