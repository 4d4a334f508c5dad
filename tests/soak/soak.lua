-- soak.lua -- the soak test's load, run by tests/soak/run.sh:
--   netsh tests/soak/soak.lua SECONDS HTTP_PORT [HTTPS_PORT CA]
-- In one netsh process, all at once and for SECONDS: a TCP echo server
-- and its clients, a UDP echo server and its clients, HTTP requests
-- against the test nginx (plain calls and a session), DNS lookups against
-- the test responder, and task spawn/cancel/timeout/group churn. Every
-- operation checks its answer; any error fails the run.
--
-- Every few seconds it samples its resident memory, its Lua heap and its
-- open descriptors. After a warm-up (the first 30% of the run, at least
-- 10 s) it fits a line through the memory samples; the run fails when
--   * resident memory grows faster than RSS_SLOPE KiB a minute, or
--   * the Lua heap grows faster than LUA_SLOPE KiB a minute, or
--   * descriptors, once the load has stopped and the clients are closed,
--     are more than FD_SLACK above the count taken before the load
--     started (libcurl keeps a few idle HTTP connections to nginx), or
--     any sample after the warm-up is more than FD_SLACK above the
--     highest sample during it.
-- A leak of one 64-byte block per operation at this rate (thousands of
-- operations a second) grows memory by several MiB a minute: far above
-- the thresholds; the allocator's and the GC's own breathing stays below.
local socket = require "socket"
local udp = require "udp"
local http = require "http"
local task = require "task"
local dns = require "socket.dns"

local SECONDS = assert(tonumber(arg[1]), "usage: soak.lua SECONDS HTTP_PORT")
local HTTP_PORT = assert(tonumber(arg[2]), "usage: soak.lua SECONDS HTTP_PORT")
local SRC = os.getenv("NETSH_SRC") or "."
local RSS_SLOPE = tonumber(os.getenv("SOAK_RSS_SLOPE")) or 1024  -- KiB/min
local LUA_SLOPE = tonumber(os.getenv("SOAK_LUA_SLOPE")) or 256   -- KiB/min
local OP_TIMEOUT = 10      -- no single operation may take longer
local FD_SLACK = 8

local responder = dofile(SRC .. "/tests/spec/helpers/dns.lua")
responder.start()

local pid do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("n")
  f:close()
end

local function rss_kib()
  local f = assert(io.open("/proc/" .. pid .. "/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end

local function fd_count()
  local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
  local n = p:read("n")
  p:close()
  return n - 1   -- the pipe of this popen
end

local ops, errors, first_error, errs = {}, 0, {}, {}
local stop = false

local function fail(kind, msg)
  errors = errors + 1
  errs[kind] = (errs[kind] or 0) + 1
  if not first_error[kind] then
    first_error[kind] = tostring(msg)
    io.stderr:write(("soak: %s failed: %s\n"):format(kind, tostring(msg)))
  end
end

-- run(kind, fn): fn() again and again until the end, each call bounded;
-- fn returns true or raises/returns false, message
local function worker(kind, fn)
  return task.spawn(function()
    while not stop do
      local ok, r, msg = pcall(task.timeout, OP_TIMEOUT, fn)
      if not ok then fail(kind, r)
      elseif r == nil then fail(kind, msg or "timeout")
      elseif r ~= true then fail(kind, msg)
      else ops[kind] = (ops[kind] or 0) + 1 end
    end
  end)
end

-- TCP echo: a server task per connection, lines back as they came.
local tcp_server = assert(socket.bind("127.0.0.1", 0))
local _, tcp_port = tcp_server:getsockname()
local conns = {}
local tcp_acceptor = task.spawn(function()
  while true do
    local c = tcp_server:accept()
    if not c then return end
    conns[c] = true
    task.spawn(function()
      c:settimeout(OP_TIMEOUT)
      while true do
        local line = c:receive("*l")
        if not line or not c:send(line .. "\n") then break end
      end
      conns[c] = nil
      c:close()
    end)
  end
end)

local function tcp_client()
  local c <close> = assert(socket.connect("127.0.0.1", tcp_port))
  c:settimeout(OP_TIMEOUT)
  for i = 1, 8 do
    local line = ("x"):rep(i * 500) .. i
    assert(c:send(line .. "\n"))
    local back, err = c:receive("*l")
    if back ~= line then return false, "echo: " .. tostring(err) end
  end
  return true
end

-- UDP echo: one server socket; a client socket per round.
local udp_server = assert(udp.bind("127.0.0.1", 0))
local _, udp_port = udp_server:getsockname()
local udp_echo = task.spawn(function()
  while true do
    local data, ip, port = udp_server:receivefrom()
    if not data then return end
    udp_server:sendto(data, ip, port)
  end
end)

local udp_round = 0
local function udp_client()
  local u <close> = assert(udp.udp())
  u:settimeout(2)
  udp_round = udp_round + 1
  local tag = udp_round .. ":"
  for i = 1, 8 do
    local msg = tag .. ("d"):rep(i * 100)
    assert(u:sendto(msg, "127.0.0.1", udp_port))
    local back, err = u:receive()
    -- a late echo meant for an earlier socket on the same port: skip it
    while back and back ~= msg and back:sub(1, #tag) ~= tag do
      back, err = u:receive()
    end
    if back ~= msg then
      return false, ("udp echo: %s (got %q)"):format(tostring(err),
        tostring(back):sub(1, 20))
    end
  end
  return true
end

-- HTTP against nginx: plain calls and a kept-alive session.
local base = "http://127.0.0.1:" .. HTTP_PORT
local session = http.session{timeout = OP_TIMEOUT}
local function http_plain()
  local res, err = http.get(base .. "/small.txt", {timeout = OP_TIMEOUT})
  if not res then return false, err end
  if res.status ~= 200 or res.body ~= "hello from nginx\n" then
    return false, "status " .. res.status
  end
  local miss = http.get(base .. "/missing", {timeout = OP_TIMEOUT})
  if not miss or miss.status ~= 404 then return false, "404 expected" end
  return true
end
local function http_session()
  local res, err = session:get(base .. "/data.json")
  if not res then return false, err end
  local doc = res:json()
  if res.status ~= 200 or not doc or doc.server ~= "nginx" then
    return false, "bad data.json"
  end
  return true
end

-- DNS against the responder: a query, a lookup and a name that is not.
local function dns_client()
  local recs, err = dns.query("test.netsh", "A")
  if not recs or not recs[1] then return false, "query: " .. tostring(err) end
  local ip = dns.toip("v4.test.netsh")
  if ip ~= "127.0.0.1" then return false, "toip: " .. tostring(ip) end
  local none = dns.toip("nope.test.netsh")
  if none ~= nil then return false, "nope.test.netsh resolved" end
  return true
end

-- Task churn: spawns, cancels, deadline scopes, a group that fails.
local function churn()
  local hs = {}
  for i = 1, 40 do
    hs[i] = task.spawn(task.sleep, (i % 5) * 0.002)
  end
  for i = 1, 40, 2 do hs[i]:cancel() end
  for i = 2, 40, 2 do hs[i]:join() end
  local r, err = task.timeout(0.001, task.sleep, 1)
  if r ~= nil or err ~= "timeout" then return false, "timeout scope" end
  local ok = pcall(task.group, function(g)
    g:spawn(task.sleep, 1)
    g:spawn(function() error("expected", 0) end)
  end)
  if ok then return false, "group swallowed a failure" end
  return true
end

local fds_before = fd_count()
local workers = {}
local function add(kind, fn, n)
  for _ = 1, n do workers[#workers + 1] = worker(kind, fn) end
end
add("tcp", tcp_client, 6)
add("udp", udp_client, 3)
add("http", http_plain, 2)
add("http-session", http_session, 2)
add("dns", dns_client, 2)
add("tasks", churn, 2)

-- Sampling
local interval = math.max(1, math.min(5, SECONDS / 40))
local warmup = math.max(10, SECONDS * 0.3)
local t0 = task.now()
local samples = {}
print(("soak: %d s, sampling every %.1f s, warm-up %.0f s, limits "
  .. "%d KiB/min resident, %d KiB/min Lua heap"):format(SECONDS, interval,
  warmup, RSS_SLOPE, LUA_SLOPE))
while task.now() - t0 < SECONDS do
  task.sleep(interval)
  local t = task.now() - t0
  collectgarbage()          -- the live heap, not the GC's sawtooth
  local s = {t = t, rss = rss_kib(), lua = collectgarbage("count"),
    fds = fd_count()}
  samples[#samples + 1] = s
  local total = 0
  for _, n in pairs(ops) do total = total + n end
  print(("t=%6.1f rss=%7d KiB lua=%7.0f KiB fds=%4d ops=%d errors=%d")
    :format(t, s.rss, s.lua, s.fds, total, errors))
  io.stdout:flush()
end

stop = true
for _, w in ipairs(workers) do
  w:join(OP_TIMEOUT + 5)
  if w:status() ~= "done" then fail("stop", "worker did not end") end
end
session:close()

-- slope(field) -> KiB a minute, least squares over the post-warm-up samples
local function slope(field)
  local n, sx, sy, sxx, sxy = 0, 0, 0, 0, 0
  for _, s in ipairs(samples) do
    if s.t >= warmup then
      n = n + 1
      sx, sy = sx + s.t, sy + s[field]
      sxx, sxy = sxx + s.t * s.t, sxy + s.t * s[field]
    end
  end
  if n < 3 then return 0, n end
  return (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60, n
end

local rss_slope, n = slope("rss")
local lua_slope = slope("lua")
local fds_warm, fds_late = 0, 0
for _, s in ipairs(samples) do
  if s.t < warmup then fds_warm = math.max(fds_warm, s.fds)
  else fds_late = math.max(fds_late, s.fds) end
end
local fds_after
for _ = 1, 50 do   -- closes finish on the next loop turns
  collectgarbage()
  task.sleep(0.05)
  fds_after = fd_count()
  if fds_after <= fds_before then break end
end

local names = {}
for k in pairs(ops) do names[#names + 1] = k end
table.sort(names)
local parts = {}
for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. ops[k] end
print("soak: operations " .. table.concat(parts, " "))
print(("soak: over %d samples after warm-up: resident %+.0f KiB/min, "
  .. "Lua heap %+.0f KiB/min; descriptors %d before, %d after, "
  .. "at most %d during warm-up and %d after it")
  :format(n, rss_slope, lua_slope, fds_before, fds_after, fds_warm,
    fds_late))

local bad = {}
if errors > 0 then
  local e = {}
  for k, n in pairs(errs) do e[#e + 1] = k .. "=" .. n end
  bad[#bad + 1] = errors .. " errors (" .. table.concat(e, " ") .. ")"
end
if n < 3 then bad[#bad + 1] = "too few samples after warm-up" end
if rss_slope > RSS_SLOPE then bad[#bad + 1] = "resident memory grows" end
if lua_slope > LUA_SLOPE then bad[#bad + 1] = "Lua heap grows" end
if fds_after > fds_before + FD_SLACK or fds_late > fds_warm + FD_SLACK then
  bad[#bad + 1] = "descriptors leak"
end
for kind in pairs({tcp = 1, udp = 1, http = 1, ["http-session"] = 1,
    dns = 1, tasks = 1}) do
  if not ops[kind] then bad[#bad + 1] = "no " .. kind .. " operation ran" end
end

tcp_server:close()
udp_server:close()
for c in pairs(conns) do c:close() end
tcp_acceptor:join(1)
udp_echo:join(1)
responder.stop()

if #bad > 0 then
  print("soak: FAIL: " .. table.concat(bad, ", "))
  os.exit(1)
end
print("soak: PASS")
