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
-- so an expired or untrusted one still shows its date; --chain judges
-- every certificate the server sends (an intermediate can expire first).
-- Exits 1 if any certificate expires within --warn days (default 14),
-- fails to verify (chain, expiry, host name), or the host cannot be
-- reached. --json lines carry docs/json-lines.md's envelope; --shard I/N
-- checks this copy's share of the hosts; --nagios is a Nagios plugin
-- (WARNING within --warn days, CRITICAL within --crit days, invalid or
-- unreachable; as check_http -C).
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"
local retryopt = require "netsh.retryopt"
local exitcodes = require "netsh.exitcodes"
local jsonl = require "netsh.jsonl"
local shard = require "netsh.shard"

local usage_error, on_usage_error = exitcodes.usage(arg, "TLS_EXPIRY")

local function parse_args(argv)
  local o, hosts = getopt.parse(argv, {
    name = "tls_expiry",
    usage = "[HOST[:PORT]...] [-]",
    summary = "Print the days until each host's TLS certificate expires "
      .. "(port 443 unless given; IPv6 as [addr]:port). Hosts are read "
      .. "from stdin, one per line (# comments), when none is given or "
      .. "one is \"-\".",
    options = exitcodes.add_nagios(jsonl.add(retryopt.add{
      {"w", "warn", arg = "DAYS", type = "number", default = 14,
       help = "fail when a certificate expires within DAYS"},
      {nil, "json", help = "JSON lines instead of text"},
      {"t", "timeout", arg = "SECONDS", type = "number", default = 10,
       help = "per host connect + handshake limit"},
      {nil, "cafile", arg = "FILE", help = "trust FILE, not the system store"},
      {nil, "servername", arg = "NAME",
       help = "name to send and check instead of the host"},
      {nil, "chain", help = "judge every certificate the server sends: "
        .. "days, notAfter and subject are then those of the one that "
        .. "expires first (an intermediate may expire before the leaf)"},
      {"p", "parallel", arg = "N", type = "integer", default = 8,
       help = "hosts checked at once (at most 10000)"},
      {nil, "crit", arg = "DAYS", type = "number", default = 0,
       help = "with --nagios: CRITICAL when a certificate expires within "
         .. "DAYS (default 0: expired)"},
      shard.option,
    })),
    on_usage_error = on_usage_error,
    exit_codes = {"0  every certificate verifies and lasts beyond --warn",
      "1  one expires within --warn, fails to verify, or a host fails",
      "2  usage error", "with --nagios: 0 OK, 1 WARNING (within --warn "
        .. "days), 2 CRITICAL (within --crit days, invalid, unreachable), "
        .. "3 UNKNOWN"},
  })
  o.hosts = hosts
  retryopt.check(o)
  o.parallel = math.max(1, o.parallel)
  if o.parallel > 10000 then usage_error("-p is at most 10000") end
  o.shard = shard.from(o.shard, usage_error)
  o.out = o.json and jsonl.new("tls_expiry", o.tag, usage_error)
  for _, h in ipairs(hosts) do if h == "-" then o.stdin = true end end
  if #hosts == 0 then o.stdin = true end
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
  -- connect + handshake, each attempt within --timeout; --retry retries
  local sock, err = retryopt.run(o, "tls_expiry", target, function()
    return task.timeout(o.timeout, socket.connect, host, port,
      {tls = tls, timeout = o.timeout})
  end)
  if not sock then
    r.status, r.error = "error", err
    return r
  end
  local cert = sock:getpeercertificate()
  local first = cert
  if cert and o.chain then
    for _, c in ipairs(sock:getpeerchain() or {}) do
      if c.not_after < first.not_after then first = c end
    end
  end
  sock:close()
  if not cert then
    r.status, r.error = "error", "no certificate"
    return r
  end
  if first ~= cert then
    -- the verdict stays the chain's; the dates become the weakest link's
    first = setmetatable({verified = cert.verified,
      verify_error = cert.verify_error}, {__index = first})
  end
  cert = first
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
  if o.nagios then
    local state = 0
    if r.status == "ok" or r.status == "expiring" then
      if r.days < o.crit then state = 2
      elseif r.days < o.warn then state = 1 end
    else
      state = 2
    end
    o.nag:status(state, state > 0 and ("%s: %s%s"):format(r.target,
      r.days and (r.days .. " days") or r.status,
      r.error and (" (" .. r.error .. ")") or "") or nil)
    if r.days then
      o.nag:perf(r.target, r.days, nil, nil, nil, ("%g:"):format(o.warn),
        ("%g:"):format(o.crit))
    end
  elseif o.out then
    local err = r.error
    if r.status == "expiring" then
      err = ("expires in %d days (--warn %g)"):format(r.days, o.warn)
    elseif r.status ~= "ok" and not err then
      err = r.status
    end
    o.out:emit(r.target, r.status == "ok", err, {peer = r.host,
      port = r.port, status = r.status, days = r.days,
      not_after = r.not_after, subject = r.subject, issuer = r.issuer})
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

local function main()
  local o = parse_args(arg)
  local targets = {}
  for _, h in ipairs(o.hosts) do
    if h ~= "-" then
      -- a bad target given as an argument is a usage error (on stdin,
      -- data: that line's result says what is wrong)
      local ok, err = split_target(h)
      if not ok then
        usage_error(("'%s': %s"):format(h, err))
      end
      targets[#targets + 1] = h
    end
  end
  if o.stdin then read_stdin_hosts(targets) end
  if #targets == 0 then usage_error("no hosts") end
  o.nag = o.nagios and exitcodes.nagios("TLS_EXPIRY")
  local given = #targets
  targets = shard.filter(targets, o.shard)
  if #targets == 0 then
    io.stderr:write(("tls_expiry: shard %s: none of the %d hosts is this "
      .. "copy's\n"):format(tostring(o.shard), given))
    if o.nag then
      o.nag:exit(("shard %s: no host to check"):format(tostring(o.shard)))
    end
    os.exit(0)
  end
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
  if o.nag then
    o.nag:exit(("%d hosts checked"):format(#targets))
  end
  os.exit(bad and 1 or 0)
end

main()
