-- layers_spec.lua -- what the shared layers under the socket kinds
-- (src/select.c, src/sockopt.c, src/addr.c, util.c's error table) promise:
-- options set before a socket exists all reach it, UDP honours settimeout's
-- modes as TCP does, and a kind joins select() by registering its ops.

local socket = require "socket"
local udp = require "udp"

local function elapsed(f, ...)
  local t0 = task.now()
  local r = table.pack(f(...))
  return task.now() - t0, table.unpack(r, 1, r.n)
end

describe("options set before connect", function()
  it("every one reaches the socket connect() makes, not only 8", function()
    local srv <close> = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local c <close> = socket.tcp()
    local want = {
      {"keepalive", true}, {"reuseaddr", true}, {"reuseport", true},
      {"tcp-nodelay", true}, {"linger", {on = true, timeout = 1}},
      {"tcp-keepidle", 30}, {"send-buffer-size", 65536},
      {"recv-buffer-size", 65536},
      {"tcp-keepintvl", 7}, {"tcp-keepcnt", 5},    -- the 9th and 10th
    }
    for _, o in ipairs(want) do assert.equal(1, c:setoption(o[1], o[2])) end
    assert.equal(1, c:connect("127.0.0.1", port))
    local a <close> = assert(srv:accept())
    assert.equal(30, c:getoption("tcp-keepidle"))
    assert.equal(7, c:getoption("tcp-keepintvl"))
    assert.equal(5, c:getoption("tcp-keepcnt"))
    assert.is_true(c:getoption("tcp-nodelay"))
    assert.same({on = true, timeout = 1}, c:getoption("linger"))
  end)

  it("a later value of the same option replaces the earlier one", function()
    local c <close> = socket.tcp()
    for i = 1, 20 do assert.equal(1, c:setoption("tcp-keepcnt", i)) end
    assert.equal(20, c:getoption("tcp-keepcnt"))
  end)
end)

describe("udp settimeout modes", function()
  it("'b' and 't' are kept apart and the smaller bounds a receive",
    function()
    local s <close> = assert(udp.bind("127.0.0.1", 0))
    assert.same({-1, -1}, {s:gettimeout()})
    assert.equal(1, s:settimeout(0.05))
    assert.equal(1, s:settimeout(5, "t"))
    assert.same({0.05, 5}, {s:gettimeout()})
    local dt, data, err = elapsed(s.receive, s)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt < 1, dt)
    assert.equal(1, s:settimeout(nil))
    assert.equal(1, s:settimeout(0.05, "t"))
    assert.same({-1, 0.05}, {s:gettimeout()})
    dt, data, err = elapsed(s.receive, s)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt < 1, dt)
  end)

  it("an unknown mode is an error naming the argument, as for TCP",
    function()
    local s <close> = assert(udp.udp())
    local ok, err = pcall(function() return s:settimeout(1, "x") end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'settimeout' %(invalid timeout mode",
                   err)
  end)
end)

describe("a kind joins select by registering its ops", function()
  -- netsh_selftest.so (tests/c/select_kind.c, built with the tests)
  -- registers {ready, watch} for its metatable and nothing else: no file
  -- of src/ knows it
  local path = os.getenv("NETSH_SELFTEST") or "build/tests/netsh_selftest.so"
  local probe = assert(package.loadlib(path, "luaopen_netsh_selftest"))()

  it("is returned when ready, and wakes a parked select", function()
    local o = probe.new()
    local r, w, err = socket.select({o}, {o}, 0)
    assert.same({{}, {}, "timeout"}, {r, w, err})
    o:set(true, false)
    r, w = socket.select({o}, {o}, 0)
    assert.same({o, [o] = 1}, r)
    assert.same({}, w)
    o:set(false, false)
    local t = task.spawn(function()
      task.sleep(0.05)
      o:set(false, true)
    end)
    local dt
    dt, r, w, err = elapsed(socket.select, {o}, {o}, 2)
    assert.is_nil(err)
    assert.same({}, r)
    assert.same({o, [o] = 1}, w)
    assert.is_true(dt >= 0.04 and dt < 1, dt)
    t:join()
  end)

  it("mixes with sockets, through a wrapper's _socket, and close wakes",
    function()
    local o = probe.new()
    local u <close> = assert(udp.bind("127.0.0.1", 0))
    local wrapper = {_socket = o}
    local t = task.spawn(function()
      task.sleep(0.05)
      o:set(true, false)
    end)
    local r, _, err = socket.select({u, wrapper}, nil, 2)
    assert.is_nil(err)
    assert.same({wrapper, [wrapper] = 1}, r)
    t:join()
    o:set(false, false)
    t = task.spawn(function()
      task.sleep(0.05)
      o:close()
    end)
    local dt
    dt, r, _, err = elapsed(socket.select, {o}, nil, 0.3)
    assert.equal("timeout", err)      -- closed: never ready, not an error
    assert.is_true(dt >= 0.25, dt)
    t:join()
  end)
end)
