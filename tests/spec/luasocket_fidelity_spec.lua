-- luasocket_fidelity_spec.lua -- where netsh must answer as LuaSocket 3.1
-- does, found by running LuaSocket's own test suite (tests/luasocket/):
-- ports given as strings or service names, the objects' class, setfd,
-- select's argument checks and socket.url on odd URLs.
local socket = require "socket"
local url = require "socket.url"

-- a TCP port nobody listens on now
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("ports as strings and service names", function()
  it("socket.bind and socket.connect take a numeric string", function()
    local port = free_port()
    local s = assert(socket.bind("127.0.0.1", tostring(port)))
    assert.are.equal(port, select(2, s:getsockname()))
    local c = assert(socket.connect("127.0.0.1", tostring(port)))
    assert.are.equal(port, select(2, c:getpeername()))
    c:close()
    s:close()
  end)

  it("tcp bind/connect take numeric strings and service names", function()
    local port = free_port()
    local s = socket.tcp()
    assert.are.equal(1, s:bind("127.0.0.1", " " .. port .. " "))
    assert.are.equal(1, s:listen())
    local c = socket.tcp()
    assert.are.equal(1, c:connect("127.0.0.1", tostring(port)))
    c:close()
    s:close()
    -- tcpmux is port 1 in /etc/services: nobody listens there
    assert.are.same({nil, "connection refused"},
      {socket.connect("127.0.0.1", "tcpmux")})
  end)

  it("an unknown service is a failure, not an error", function()
    assert.are.same({nil, "service not supported for socket type"},
      {socket.connect("127.0.0.1", "no-such-service")})
    assert.are.same({nil, "service not supported for socket type"},
      {socket.bind("127.0.0.1", "no-such-service")})
    local u = socket.udp()
    assert.are.same({nil, "service not supported for socket type"},
      {u:sendto("x", "127.0.0.1", "no-such-service")})
    assert.are.same({nil, "service not supported for socket type"},
      {u:setsockname("127.0.0.1", "no-such-service")})
    assert.are.same({nil, "service not supported for socket type"},
      {u:setpeername("127.0.0.1", "no-such-service")})
    u:close()
  end)

  it("udp setsockname, setpeername and sendto take strings", function()
    local r = socket.udp()
    assert.are.equal(1, r:setsockname("127.0.0.1", "0"))
    local _, port = r:getsockname()
    r:settimeout(2)
    local s = socket.udp()
    assert.is_truthy(s:sendto("one", "127.0.0.1", tostring(port)))
    assert.are.equal("one", r:receive())
    assert.are.equal(1, s:setpeername("127.0.0.1", tostring(port)))
    assert.is_truthy(s:send("two"))
    assert.are.equal("two", r:receive())
    assert.are.equal(1, s:setpeername("127.0.0.1", "domain"))
    assert.are.equal(53, select(2, s:getpeername()))
    s:close()
    r:close()
    local c = assert(udp.connect("127.0.0.1", "domain"))
    assert.are.equal(53, select(2, c:getpeername()))
    c:close()
  end)

  it("a bad port raises the same message in TCP and UDP", function()
    local t, u = socket.tcp(), socket.udp()
    for _, bad in ipairs{70000, -1, 8.5, "70000", "-1", "8.5"} do
      assert.has_error(function() t:bind("127.0.0.1", bad) end,
        "bad argument #2 to 'bind' (invalid port)")
      assert.has_error(function() t:connect("127.0.0.1", bad) end,
        "bad argument #2 to 'connect' (invalid port)")
      assert.has_error(function() u:setsockname("127.0.0.1", bad) end,
        "bad argument #2 to 'setsockname' (invalid port)")
      assert.has_error(function() u:sendto("x", "127.0.0.1", bad) end,
        "bad argument #3 to 'sendto' (invalid port)")
    end
    assert.has_error(function() t:bind("127.0.0.1", true) end,
      "bad argument #2 to 'bind' (port number or service name expected,"
      .. " got boolean)")
    assert.has_error(function() u:setpeername("127.0.0.1") end,
      "bad argument #2 to 'setpeername' (port number or service name"
      .. " expected, got no value)")
    t:close()
    u:close()
  end)

  it("socket.bind on a Unix path still takes a backlog", function()
    local path = os.tmpname()
    os.remove(path)
    local s = assert(socket.bind("unix:" .. path, 5))
    assert.are.equal("unix{server}", s.class)
    s:close()
    os.remove(path)
  end)
end)

describe("the object surface", function()
  it("sockets carry LuaSocket's class", function()
    local m = socket.tcp()
    assert.are.equal("tcp{master}", m.class)
    local s = assert(socket.bind("127.0.0.1", 0))
    assert.are.equal("tcp{server}", s.class)
    local ip, port = s:getsockname()
    local c = assert(socket.connect(ip, port))
    assert.are.equal("tcp{client}", c.class)
    assert.are.equal("tcp{client}", assert(s:accept()).class)
    assert.is_nil(c.nonesuch)
    assert.is_function(c.receive)
    local u = socket.udp()
    assert.are.equal("udp{unconnected}", u.class)
    assert(u:setpeername("127.0.0.1", port))
    assert.are.equal("udp{connected}", u.class)
    assert(u:setpeername("*"))
    assert.are.equal("udp{unconnected}", u.class)
    for _, x in ipairs{m, s, c, u} do x:close() end
  end)

  -- As LuaSocket's: each class has a metatable whose __index table holds
  -- the methods and `class`, so a method lookup runs no function (an
  -- __index function cost an echo server ~8% of its instructions).
  it("a method lookup is a table hit; the class follows the state", function()
    local m = socket.tcp()
    local idx = getmetatable(m).__index
    assert.is_table(idx)
    assert.are.equal("tcp{master}", rawget(idx, "class"))
    assert.are.equal(m.send, rawget(idx, "send"))
    local u = socket.udp()
    assert.is_table(getmetatable(u).__index)
    -- a connection completed while nobody waited (settimeout(0) connect)
    local s = assert(socket.bind("127.0.0.1", 0))
    local ip, port = s:getsockname()
    m:settimeout(0)
    local ok, err = m:connect(ip, port)
    if not ok then
      assert.are.equal("timeout", err)
      assert(socket.select(nil, {m}, 5))
    end
    assert(m:getpeername())                       -- any method brings it up to date
    assert.are.equal("tcp{client}", m.class)
    assert.are.equal("tcp{client}", rawget(getmetatable(m).__index, "class"))
    -- methods added to the methods table reach every class
    local methods = getmetatable(m).__methods
    methods.netsh_test_hello = function() return "hi" end
    assert.are.equal("hi", s:netsh_test_hello())
    assert.are.equal("hi", m:netsh_test_hello())
    methods.netsh_test_hello = nil
    -- metatables of other classes still name the kind in errors
    assert.has_error(function() m.send({}) end)
    assert.has_error(function() s.accept(u) end)
    for _, x in ipairs{m, s, u} do x:close() end
  end)

  it("UDP sockets have setfd", function()
    local a = assert(udp.bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local b = socket.udp()
    assert.is_function(b.setfd)
    assert.are.equal(1, b:setfd(a:getfd()))
    a:setfd(-1)                      -- b owns the descriptor now
    assert.are.equal(port, select(2, b:getsockname()))
    local c = assert(udp.connect("127.0.0.1", port))
    c:send("hi")
    b:settimeout(2)
    assert.are.equal("hi", b:receive())
    for _, x in ipairs{a, b, c} do x:close() end
  end)

  it("a listening descriptor handed on by setfd is served by its new "
    .. "owner only, and the old one stops watching it", function()
    local a = assert(socket.bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local fd = a:getfd()
    a:setfd(-1)                        -- a forgets it without closing
    local b = socket.tcp()
    assert.are.equal(1, b:setfd(fd))
    assert.are.equal("tcp{server}", b.class)
    local c = assert(socket.connect("127.0.0.1", port))
    local t0 = os.clock()
    b:settimeout(2)
    local p = assert(b:accept())
    sleep(0.2)                         -- nothing may spin meanwhile
    assert.is_true(os.clock() - t0 < 0.1, "CPU spent: " .. os.clock() - t0)
    p:close(); c:close(); b:close(); a:close()
  end)

  it("a server stays a server after setfd", function()
    local d = assert(socket.bind("127.0.0.1", 0))
    local c = socket.tcp4()            -- a descriptor that does not listen
    local fd = c:getfd()
    assert.is_true(fd >= 0)
    assert.are.equal(1, d:setfd(fd))
    c:setfd(-1)
    assert.are.equal("tcp{server}", d.class)
    d:settimeout(2)
    local r, err = d:accept()
    assert.is_nil(r)
    assert.are.equal("invalid argument", err)
    d:setfd(-1)
    assert.are.same({nil, "closed"}, {d:accept()})
    d:close()
  end)

  it("select raises on list members that cannot be sockets", function()
    assert.has_error(function() socket.select({1, 2}, nil, 0) end,
      "bad argument #1 to 'select' (socket expected at index 1, got number)")
    local c = socket.tcp()
    assert.has_error(function() socket.select(nil, {c, true}, 0) end,
      "bad argument #2 to 'select' (socket expected at index 2, got boolean)")
    assert.has_error(function() socket.select({print}, nil, 0) end)
    -- tables and strings are skipped, as LuaSocket skips them
    local r, w, err = socket.select({{}, "x"}, nil, 0)
    assert.are.same({}, r)
    assert.are.same({}, w)
    assert.are.equal("timeout", err)
    c:close()
  end)
end)

describe("socket.url answers as LuaSocket 3.1", function()
  it("parses LuaSocket's odd URL as its urltest.lua expects", function()
    local u = "scheme://user:pass$%?#wd@host:port/path;params?query#fragment"
    assert.are.same({
      scheme = "scheme", authority = "user:pass$%?#wd@host:port",
      host = "host", port = "port", userinfo = "user:pass$%?#wd",
      password = "pass$%?#wd", user = "user", path = "/path",
      params = "params", query = "query", fragment = "fragment"},
      url.parse(u))
    assert.are.equal(u, url.build(url.parse(u)))
  end)

  it("a scheme may start with a digit; the authority runs to '/'", function()
    assert.are.same({scheme = "1a", path = "b"}, url.parse("1a:b"))
    assert.are.same({scheme = "http", authority = "h?q#f", host = "h?q#f"},
      url.parse("http://h?q#f"))
  end)

  it("absolute() keeps the base's params and removes dots anywhere",
    function()
    local base = "http://a/b/c/d;p?q"
    assert.are.equal("http://a/b/c/d;x", url.absolute(base, ";x"))
    assert.are.equal("http://a/b/c/x", url.absolute(base, "g?y/../x"))
    assert.are.equal("http://a/b/c/g#s/x", url.absolute(base, "g#s/./x"))
    assert.are.equal("http://a/b/c/d;p?q", url.absolute(base, ""))
    assert.are.equal("/b", url.absolute("?", "b"))
    assert.are.equal("http:/1", url.absolute("http:x", "1"))
  end)
end)

describe("a non-blocking connect", function()
  it("leaves its failure in getoption('error'), as SO_ERROR does",
    function()
    local port = free_port()
    local sock = socket.tcp()
    sock:settimeout(0)
    assert.are.same({nil, "timeout"}, {sock:connect("127.0.0.1", port)})
    local _, w = socket.select(nil, {sock}, 2)
    assert.are.equal(sock, w[1])
    assert.are.equal("connection refused", sock:getoption("error"))
    sock:close()
  end)
end)
