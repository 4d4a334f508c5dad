-- faults_spec.lua -- fault injection with real loopback peers: running out
-- of descriptors, a peer that never reads, slowloris clients, cancelling
-- DNS lookups (descriptors back to the baseline), and close while other
-- tasks wait on the same socket. Each answer must be nil, err within its
-- bound: never a crash, a hang, a spin or a leak. (dns_faults_spec and
-- cancel_faults_spec cover misbehaving DNS servers and cancelling
-- connects, TLS handshakes and HTTP transfers.)
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local NETSH = os.getenv("NETSH") or (src .. "/build/netsh")
local socket = require "socket"
local udp = require "udp"
local dns = require "socket.dns"
local fds = require "fds"
local blackhole = require "blackhole"

local function listen()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  return s, port
end

-- ASan holds freed memory in quarantine: resident memory is a coarse
-- measure there (LeakSanitizer checks the C side at exit instead)
local ASAN = os.execute("nm " .. NETSH .. " 2>/dev/null | grep -q __asan_init")
local MEM_SLACK = ASAN and 128 * 1024 or 8 * 1024   -- KiB

local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end

local function cpu_seconds(pid)   -- user + system time of a process
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  local rest = line:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

local function tmpfile(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

-- run(script_text, limit) -> stdout, ok: the script in a child netsh
-- with at most `limit` open descriptors
local function run_limited(text, limit)
  local path = tmpfile(text)
  local p = io.popen(("ulimit -n %d; exec %s %s 2>&1"):format(limit, NETSH,
    path))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end

describe("out of descriptors", function()
  it("connect and accept answer 'too many open files'; both work again "
    .. "once descriptors are free", function()
    local out = run_limited([[
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local held, err = {}
      for _ = 1, 200 do
        local c, e = socket.connect("127.0.0.1", port)
        if not c then err = e break end
        held[#held + 1] = c
        local s, e2 = srv:accept()
        if not s then err = "accept " .. e2 break end
        held[#held + 1] = s
      end
      print("exhausted:", err)   -- by connect, or by accept
      -- the last descriptors go to files: a pending connection cannot be
      -- accepted
      local files = {}
      local peer = socket.connect("127.0.0.1", port)
      while true do
        local f = io.open("/dev/null")
        if not f then break end
        files[#files + 1] = f
      end
      srv:settimeout(0.5)
      local t0 = os.clock()
      local a, aerr = srv:accept()
      print("accept:", a, aerr)
      print("cpu<0.2:", os.clock() - t0 < 0.2)
      for _, f in ipairs(files) do f:close() end
      for _, c in ipairs(held) do c:close() end
      collectgarbage()
      sleep(0.05)
      local c = assert(socket.connect("127.0.0.1", port))
      assert(c:send("again\n"))
      -- connections queued while descriptors ran out come first
      for _ = 1, 10 do
        local s2 = assert(srv:accept())
        s2:settimeout(1)
        local line = s2:receive()
        if line then print("after:", line) break end
      end
    ]], 48)
    assert.matches("exhausted:%s+[a-z ]*too many open files", out)
    assert.matches("accept:%s+nil%s+too many open files", out)
    assert.matches("cpu<0.2:%s+true", out)
    assert.matches("after:%s+again", out)
  end)

  it("tcp_echo keeps serving once descriptors are free, without spinning",
    function()
    local port
    do local s, p = listen(); port = p; s:close() end
    local p = io.popen(("ulimit -n 24; exec %s -m tcp_echo 127.0.0.1 %d "
      .. "-q >/dev/null 2>&1 & echo $!"):format(NETSH, port))
    local pid = tonumber(p:read("l"))
    local up
    for _ = 1, 100 do
      up = socket.connect("127.0.0.1", port)
      if up then break end
      sleep(0.05)
    end
    assert(up, "tcp_echo did not start")
    up:close()
    -- more clients than it has descriptors for
    local clients = {}
    for i = 1, 40 do
      clients[i] = socket.connect("127.0.0.1", port)
    end
    sleep(0.3)
    local cpu0 = cpu_seconds(pid)
    sleep(1)
    local spent = cpu_seconds(pid) - cpu0
    assert.is_true(spent < 0.3, "tcp_echo spun: " .. spent .. " s CPU in 1 s")
    for _, c in pairs(clients) do c:close() end
    sleep(0.3)
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(5)
    assert(c:send("still here\n"))
    assert.equal("still here", c:receive())
    c:close()
    os.execute("kill -INT " .. pid)
    p:close()
  end)
end)

describe("a peer that never reads", function()
  it("send ends with nil, 'timeout', last and memory stays bounded",
    function()
    local s, port = listen()
    local c = assert(socket.connect("127.0.0.1", port))
    local peer = assert(s:accept())
    c:settimeout(0.05)
    local chunk = ("x"):rep(1024 * 1024)
    local before = rss_kib()
    local timeouts = 0
    for _ = 1, 64 do
      local n, err, last = c:send(chunk)
      if not n then
        assert.equal("timeout", err)
        assert.is_true(last >= 0 and last < #chunk)
        timeouts = timeouts + 1
      end
    end
    assert.is_true(timeouts > 50, "only " .. timeouts .. " timeouts")
    local grown = rss_kib() - before
    assert.is_true(grown < 2 * MEM_SLACK, "memory grew by " .. grown
      .. " KiB")
    c:close(); peer:close(); s:close()
  end)
end)

describe("slowloris clients on tcp_echo", function()
  it("the idle limit frees silent clients; others are served meanwhile",
    function()
    local port
    do local s, p = listen(); port = p; s:close() end
    local p = io.popen(("exec %s -m tcp_echo 127.0.0.1 %d --idle 1 -q "
      .. "2>/dev/null & echo $!"):format(NETSH, port))
    local pid = tonumber(p:read("l"))
    local idle = {}
    for _ = 1, 100 do
      local c = socket.connect("127.0.0.1", port)
      if not c then sleep(0.05) else idle[#idle + 1] = c end
    end
    assert.is_true(#idle >= 90, "connected " .. #idle)
    -- trickling clients: one byte every 0.3 s
    local trickle = {}
    for i = 1, 5 do
      trickle[i] = spawn(function()
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(2)
        for _ = 1, 6 do
          assert(c:send("z"))
          sleep(0.3)
        end
        local got = c:receive(6)
        c:close()
        return got
      end)
    end
    -- a normal client is served at once
    local t0 = task.now()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(2)
    assert(c:send("ping\n"))
    assert.equal("ping", c:receive())
    assert.is_true(task.now() - t0 < 0.5)
    c:close()
    -- after the idle limit the silent ones are closed by the server
    sleep(1.5)
    local closed = 0
    for _, s in ipairs(idle) do
      s:settimeout(1)
      local _, err = s:receive(1)
      if err == "closed" then closed = closed + 1 end
      s:close()
    end
    assert.equal(#idle, closed)
    for i = 1, 5 do assert.equal("zzzzzz", trickle[i]:join()) end
    os.execute("kill -INT " .. pid)
    p:close()
  end)
end)

-- A DNS server on UDP that never answers: lookups wait until cancelled
-- (dns_faults_spec covers servers that answer badly or late)
local function silent_dns()
  local u = assert(udp.bind("127.0.0.1", 0))
  local _, port = u:getsockname()
  local t = spawn(function()
    while u:receivefrom() do end
  end)
  return u, port, t
end

describe("cancel in the middle of a DNS lookup leaks nothing", function()
  local function churn(n, start)
    for _ = 1, n do
      local h = spawn(start)
      for _ = 1, 200 do               -- until it waits (slow builds too)
        sleep(0.005)
        if h:status() ~= "ready" then break end
      end
      assert.equal("waiting", h:status())
      h:cancel()
      assert.equal("cancelled", h:status())
    end
  end

  it("during DNS lookups", function()
    local u, port, t = silent_dns()
    assert(dns.setservers{"127.0.0.1:" .. port})
    churn(2, function() dns.toip("drop.test") end)
    local fd0 = fds.settled()
    churn(100, function() dns.toip("drop.test") end)
    churn(50, function() socket.connect("drop.test", 80) end)
    local fd1 = fds.settled()
    assert.is_true(fd1 <= fd0, ("fds %d -> %d"):format(fd0, fd1))
    u:close()
    t:join()
  end)
end)

describe("close while other tasks wait on the same socket", function()
  it("wakes the reader and the writer with 'closed'; a select drops it",
    function()
    local s, port = listen()
    local c = assert(socket.connect("127.0.0.1", port))
    local peer = assert(s:accept())
    local r = spawn(function() return c:receive("*l") end)
    local w = spawn(function() return c:send(("y"):rep(64 * 1024 * 1024)) end)
    local sel = spawn(function() return socket.select({c}, nil, 0.3) end)
    sleep(0.05)
    assert.equal("waiting", r:status())
    assert.equal("waiting", w:status())
    local closer = spawn(function() c:close() end)
    closer:join()
    local _, rerr = r:join()
    assert.equal("closed", rerr)
    local _, werr = w:join()
    assert.equal("closed", werr)
    -- as LuaSocket's select skips a closed socket: nothing to report
    local rd, wr, serr = sel:join(1)
    assert.same({{}, {}, "timeout"}, {rd, wr, serr})
    peer:close(); s:close()
  end)

  it("wakes a waiting accept and a waiting connect", function()
    local s = listen()
    local a = spawn(function() return s:accept() end)
    local bport, bstop = blackhole()
    local c = socket.tcp()
    local k = spawn(function() return c:connect("127.0.0.1", bport) end)
    sleep(0.05)
    assert.equal("waiting", a:status())
    assert.equal("waiting", k:status())
    spawn(function() s:close() c:close() end):join()
    assert.same({nil, "closed"}, {a:join()})
    local _, kerr = k:join()
    assert.equal("closed", kerr)
    bstop()
  end)

  it("a UDP receiver wakes with 'closed' when another task closes",
    function()
    local u = assert(udp.bind("127.0.0.1", 0))
    local r1 = spawn(function() return u:receive() end)
    local r2 = spawn(function() return u:receivefrom() end)
    sleep(0.02)
    spawn(function() u:close() end):join()
    assert.same({nil, "closed"}, {r1:join()})
    assert.same({nil, "closed"}, {r2:join()})
  end)
end)
