-- exitcodes.lua -- the exit-code contract of the bundled scripts.
-- 0 all good, 1 a check failed, 2 usage error. Scripts that make one
-- fetch or one connection can also speak curl's numbers (--curl-codes),
-- so they drop into shell scripts written around `curl -f`:
--   6 could not resolve, 7 could not connect, 22 HTTP error (>= 400),
--   28 timeout, 35 TLS handshake failed, 60 certificate problem.
-- Checks also speak Nagios (--nagios, below): 0 OK, 1 WARNING,
-- 2 CRITICAL, 3 UNKNOWN, one status line with performance data.
local M = {OK = 0, FAILED = 1, USAGE = 2}

-- curl(err [, status]) -> curl's exit code for a netsh error string (or
-- an HTTP status >= 400 when err is nil)
function M.curl(err, status)
  if err == nil then
    if status and status >= 400 then return 22 end
    return 0
  end
  err = tostring(err)
  if err:find("host not found", 1, true) or err:find("resolve", 1, true)
      or err:find("name resolution", 1, true) then
    return 6
  elseif err:find("certificate", 1, true) or err:find("hostname mismatch", 1, true) then
    return 60
  elseif err == "timeout" or err:find("timed out", 1, true)
      or err:find("timeout", 1, true) then
    return 28
  elseif err:find("tls", 1, true) or err:find("ssl", 1, true)
      or err:find("handshake", 1, true) then
    return 35
  elseif err:find("refused", 1, true) or err:find("unreachable", 1, true)
      or err:find("connect", 1, true) then
    return 7
  end
  return 1
end

---------------------------------------------------------------------------
-- The Nagios plugin profile (also Icinga, Naemon, Sensu, Consul):
--
--   options = exitcodes.add_nagios(options [, {warn = ..., crit = ...}])
--   local USAGE = exitcodes.usage_code(arg)   -- 3 with --nagios, else 2
--   getopt.parse(arg, {..., usage_exit = USAGE})
--   local nag = exitcodes.nagios("HTTP_CHECK", opts)  -- bad range: UNKNOWN
--   nag:status(nag:judge(0.8), "slow: http://x/")     -- worst state wins
--   nag:perf("time", 0.8, "s", 0)                     -- warn/crit ranges
--   nag:exit("3 of 3 URLs passed")
--   -- HTTP_CHECK WARNING: slow: http://x/ | time=0.8s;0.5;2;0;
--
-- --warn/--crit take Nagios ranges: "10" alerts outside 0..10, "10:"
-- below 10, "~:10" above 10, "10:20" outside 10..20, "@10:20" inside.
M.NAGIOS = {[0] = "OK", "WARNING", "CRITICAL", "UNKNOWN"}
M.nagios_options = {
  {nil, "nagios", help = "be a Nagios plugin: exit 0 OK, 1 WARNING, "
     .. "2 CRITICAL, 3 UNKNOWN; print one status line with performance data"},
}

-- add_nagios(options [, help]) -> options with --nagios (and --warn and
-- --crit RANGE rows when help gives their texts) appended
function M.add_nagios(options, help)
  for _, o in ipairs(M.nagios_options) do options[#options + 1] = o end
  if help and help.warn then
    options[#options + 1] = {nil, "warn", arg = "RANGE", help = help.warn}
  end
  if help and help.crit then
    options[#options + 1] = {nil, "crit", arg = "RANGE", help = help.crit}
  end
  return options
end

-- usage_code(argv) -> 3 (UNKNOWN) when argv asks for --nagios, else 2
function M.usage_code(argv)
  for _, a in ipairs(argv or {}) do
    if a == "--" then break end
    if a == "--nagios" then return 3 end
  end
  return 2
end

-- usage(argv, name) -> usage_error(msg), on_usage_error: a usage error
-- prints "script: msg (try --help)" on stderr and exits 2; with --nagios
-- it also prints "NAME UNKNOWN: msg" on stdout and exits 3. Give
-- on_usage_error to getopt.parse's spec.
function M.usage(argv, name)
  local nagios = M.usage_code(argv) == 3
  local function on_usage_error(msg)
    if not nagios then return end
    io.stdout:write(("%s UNKNOWN: %s\n"):format(name, msg))
    io.stdout:flush()
    os.exit(3)
  end
  local function usage_error(msg)
    local script = (arg and arg[0] or "netsh"):match("([^/]+)$")
    io.stdout:flush()
    io.stderr:write(("%s: %s (try --help)\n"):format(script, msg))
    on_usage_error(msg)
    os.exit(2)
  end
  return usage_error, on_usage_error
end

-- range(spec) -> r | nil, err: a Nagios threshold range; r:alert(x)
-- says whether x raises the alert, r.text is spec
function M.range(spec)
  local s = tostring(spec)
  local inside = s:sub(1, 1) == "@"
  local body = inside and s:sub(2) or s
  local lo, hi
  local a, b = body:match("^([^:]*):(.*)$")
  if a then
    lo = a == "~" and -math.huge or (a == "" and 0 or tonumber(a))
    hi = b == "" and math.huge or tonumber(b)
  else
    lo, hi = 0, tonumber(body)
  end
  if body == "" or not lo or not hi or lo ~= lo or hi ~= hi then
    return nil, ("bad range '%s' (N, N:, ~:N, N:M or @N:M)"):format(s)
  end
  if lo > hi then
    return nil, ("bad range '%s' (start above end)"):format(s)
  end
  local r = {text = s, lo = lo, hi = hi, inside = inside}
  function r.alert(_, x)
    local within = x >= lo and x <= hi
    if inside then return within end
    return not within
  end
  return r
end

local Nagios = {}
Nagios.__index = Nagios

-- nagios(name, opts) -> a collector; opts.warn / opts.crit are range
-- texts (a bad one exits 3 with "NAME UNKNOWN: ...")
function M.nagios(name, opts)
  local n = setmetatable({name = name, state = 0, texts = {}, perfs = {}},
    Nagios)
  for _, k in ipairs{"warn", "crit"} do
    if opts and opts[k] then
      local r, err = M.range(opts[k])
      if not r then n:unknown("--" .. k .. ": " .. err) end
      n[k] = r
    end
  end
  return n
end

-- n:judge(x) -> 2 when x is in --crit's alert, 1 in --warn's, else 0
function Nagios:judge(x)
  if self.crit and self.crit:alert(x) then return 2 end
  if self.warn and self.warn:alert(x) then return 1 end
  return 0
end

-- n:status(state [, text]): keeps the worst state; texts of the worst
-- state make the status line
function Nagios:status(state, text)
  if state > self.state then
    self.state, self.texts = state, {}
  end
  if text and state == self.state and state > 0 then
    self.texts[#self.texts + 1] = text
  end
end

local function label(s)
  s = tostring(s):gsub("=", "_")
  if s:match("^[%w_%.%-/]+$") then return s end
  return "'" .. s:gsub("'", "''") .. "'"
end

local function num(x)
  if math.type(x) == "integer" then return tostring(x) end
  local s = ("%.6f"):format(x):gsub("0+$", ""):gsub("%.$", "")
  return s
end

-- n:perf(label, value [, uom [, min [, max [, warn, crit] ] ] ]): one
-- performance datum, label=value[UOM];warn;crit;min;max; warn and crit
-- default to the --warn / --crit ranges
function Nagios:perf(name, value, uom, min, max, warn, crit)
  warn = warn or (self.warn and self.warn.text) or ""
  crit = crit or (self.crit and self.crit.text) or ""
  local s = ("%s=%s%s;%s;%s;%s;%s"):format(label(name), num(value),
    uom or "", warn, crit, min and num(min) or "", max and num(max) or "")
  self.perfs[#self.perfs + 1] = (s:gsub(";+$", ""))
end

-- n:line(summary) -> "NAME STATE: text | perfdata"
function Nagios:line(summary)
  local text = #self.texts > 0 and table.concat(self.texts, ", ") or summary
  if #self.texts > 0 and summary then text = text .. "; " .. summary end
  local s = ("%s %s: %s"):format(self.name, M.NAGIOS[self.state], text)
  s = s:gsub("[\r\n|]", " ")
  if #self.perfs > 0 then s = s .. " | " .. table.concat(self.perfs, " ") end
  return s
end

-- n:exit(summary): prints the status line and exits with the state
function Nagios:exit(summary)
  io.stdout:write(self:line(summary), "\n")
  io.stdout:flush()
  os.exit(self.state)
end

-- n:unknown(text): UNKNOWN at once (bad arguments, cannot check)
function Nagios:unknown(text)
  self.state, self.texts, self.perfs = 3, {text}, {}
  self:exit()
end

return M
