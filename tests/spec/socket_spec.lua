-- socket_spec.lua -- the socket module on real loopback sockets, IPv4 and
-- IPv6: every method, LuaSocket's return conventions and error strings,
-- timeouts in both modes, errors (refused, reset, closed, busy), select,
-- Happy Eyeballs, big and many transfers, GC without fd leaks.
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local socket = require "socket"
local fds = require "fds"
local blackhole = require "blackhole"
local responder = require "dns"

local function listen(host)
  local s = assert(socket.bind(host or "127.0.0.1", 0))
  local _, port = s:getsockname()
  return s, port
end

-- a connected pair: our client and the server's side of it
local function pair(host)
  local s, port = listen(host)
  local c = assert(socket.connect(host or "127.0.0.1", port))
  local p = assert(s:accept())
  s:close()
  return c, p
end

local fdcount = fds.count

local function elapsed(f, ...)
  local t0 = task.now()
  local r = table.pack(f(...))
  return task.now() - t0, table.unpack(r, 1, r.n)
end

-- an echo server task: serve() with receiveany/send
local function echo_server(host)
  local s, port = listen(host)
  local t = spawn(function()
    s:serve(function(c)
      while true do
        local data = c:receiveany(65536)
        if not data then return end
        assert(c:send(data))
      end
    end)
  end)
  return s, port, t
end

-- the message of the error f raises, position included (busted's
-- error_matches drops positions)
local function raised(f)
  local ok, e = pcall(f)
  assert.is_false(ok)
  return e
end

describe("socket objects", function()
  it("are LuaSocket's master, client and server", function()
    local m = socket.tcp()
    assert.matches("^tcp{master}: 0x%x+$", tostring(m))
    assert.equal(-1, m:getfd())
    assert.equal("unspec", m:getfamily())
    local m4, m6 = socket.tcp4(), socket.tcp6()
    assert.is_true(m4:getfd() >= 0)
    assert.equal("inet", m4:getfamily())
    assert.equal("inet6", m6:getfamily())
    assert.is_true(m6:getoption("ipv6-v6only"))
    m:close(); m4:close(); m6:close()
    local s, port = listen()
    assert.matches("^tcp{server}: 0x%x+ 127%.0%.0%.1:" .. port .. "$",
      tostring(s))
    local c = assert(socket.connect("127.0.0.1", port))
    assert.matches("^tcp{client}: 0x%x+ 127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:"
      .. port .. "$", tostring(c))
    c:close()
    assert.matches("%(closed%)$", tostring(c))
    s:close()
  end)

  it("raise on misuse, naming the argument", function()
    local m = socket.tcp()
    local ok, err = pcall(m.receive, m)
    assert.is_false(ok)
    assert.matches("tcp{client} expected, got tcp{master}", err, 1, true)
    assert.has_error(function() m.send(nil, "x") end)
    local c, p = pair()
    assert.has_error(function() c:receive("x") end,
      "bad argument #1 to 'receive' (invalid receive pattern)")
    assert.has_error(function() c:setoption("bogus", 1) end)
    assert.has_error(function() c:settimeout(1, "x") end)
    c:close(); p:close(); m:close()
  end)

  it("bind, listen and accept; address already in use", function()
    local m = socket.tcp()
    assert.equal(1, m:bind("127.0.0.1", 0))
    local ip, port, family = m:getsockname()
    assert.same({"127.0.0.1", "inet"}, {ip, family})
    assert.equal(1, m:listen(8))
    assert.matches("^tcp{server}", tostring(m))
    assert.same({nil, "address already in use"},
      {socket.bind("127.0.0.1", port)})
    local c = assert(socket.connect("127.0.0.1", port))
    local p = assert(m:accept())
    assert.same({c:getsockname()}, {p:getpeername()})
    assert.same({c:getpeername()}, {p:getsockname()})
    c:close(); p:close(); m:close()
  end)

  it("binds \"*\" dual-stack", function()
    local s, port = listen("*")
    for _, host in ipairs{"127.0.0.1", "::1"} do
      local c = assert(socket.connect(host, port))
      local p = assert(s:accept())
      local ip = p:getsockname()
      assert.is_truthy(ip:find(host, 1, true), ip)
      c:close(); p:close()
    end
    s:close()
  end)

  it("IPv6 scope ids (RFC 4007): %name and %number in connect and bind",
    function()
    local s, port = listen("::1")
    for _, host in ipairs{"::1%lo", "::1%1"} do
      local c = assert(socket.connect(host, port))
      assert.equal("::1", (c:getpeername()))
      assert(s:accept()):close()
      c:close()
    end
    s:close()
    s = assert(socket.bind("::1%lo", 0))
    s:close()
    assert.same({nil, "host not found"},
      {socket.connect("::1%no_such_if0", port)})
    assert.same({nil, "address family not supported"},
      {socket.connect4("::1%lo", port)})
  end)

  it("connect4 and connect6 keep to their family", function()
    local s, port = listen("::1")
    assert.same({nil, "address family not supported"},
      {socket.connect4("::1", port)})
    local c = assert(socket.connect6("::1", port))
    assert.equal("inet6", select(3, c:getpeername()))
    c:close(); s:close()
  end)

  it("close twice, and closed objects say closed", function()
    local c, p = pair()
    assert.equal(1, c:close())
    assert.equal(1, c:close())
    assert.same({nil, "closed", ""}, {c:receive()})
    assert.same({nil, "closed", 0}, {c:send("x")})
    assert.same({nil, "closed"}, {c:connect("127.0.0.1", 1)})
    p:close()
  end)
end)

for _, host in ipairs{"127.0.0.1", "::1"} do
  describe("receive over " .. host, function()
    local c, p
    before_each(function() c, p = pair(host) end)
    after_each(function() c:close(); p:close() end)

    it("reads lines, dropping CRs, in both spellings", function()
      p:send("one\r\ntwo\nthr\ree\n")
      assert.equal("one", c:receive())
      assert.equal("two", c:receive("*l"))
      assert.equal("three", c:receive("l"))
    end)

    it("reads counts, with a prefix that counts toward n", function()
      p:send("abcdefghij")
      assert.equal("abc", c:receive(3))
      assert.equal("XYde", c:receive(4, "XY"))
      assert.equal("fg", c:receive("2"))
      assert.equal("prefix", c:receive(3, "prefix"))
      assert.equal("hij", c:receive(3))
      assert.equal("", c:receive(0))
    end)

    it("reads everything until the peer closes", function()
      p:send("a\nb\n")
      p:send("c")
      p:close()
      assert.equal("a\nb\nc", c:receive("*a"))
      assert.same({nil, "closed", ""}, {c:receive("a")})
    end)

    it("returns partial data on close, by pattern", function()
      p:send("no newline")
      p:close()
      assert.same({nil, "closed", "no newline"}, {c:receive()})
    end)

    it("returns partial data on timeout, never losing bytes", function()
      c:settimeout(0.05)
      p:send("par")
      assert.same({nil, "timeout", "par"}, {c:receive()})
      p:send("tial\nrest")
      assert.equal("partial", c:receive("*l", "par"))
      assert.same({nil, "timeout", "rest"}, {c:receive(10)})
      assert.same({nil, "timeout", "pre"}, {c:receive("*a", "pre")})
    end)

    it("receiveany and recv return what is there", function()
      p:send("hello")
      assert.equal("hel", c:receiveany(3))
      assert.equal("lo", c:recv(100))
      p:close()
      assert.equal("", c:recv(10))
      assert.same({nil, "closed", ""}, {c:receiveany(10)})
    end)

    it("receiveuntil iterates as OpenResty's", function()
      p:send("--b\r\nfirst part--b\r\nsecond--b\r\n123456789--b\r\n")
      local it = c:receiveuntil("--b\r\n")
      assert.equal("", it())
      assert.equal("first part", it())
      local incl = c:receiveuntil("--b\r\n", {inclusive = true})
      assert.equal("second--b\r\n", incl())
      local chunks = {}
      while true do
        local data, err = it(4)
        assert.is_nil(err)
        if not data then break end
        chunks[#chunks + 1] = data
      end
      assert.same({"1234", "5678", "9"}, chunks)
      c:settimeout(0.05)
      p:send("tail")
      assert.same({nil, "timeout", "tail"}, {it()})
    end)

    it("lines() iterates until EOF", function()
      p:send("x\ny\r\nz")
      p:close()
      local got = {}
      for line in c:lines() do got[#got + 1] = line end
      assert.same({"x", "y", "z"}, got)
    end)

    it("sends ranges as string.sub and reports the last index", function()
      assert.equal(5, c:send("hello"))
      assert.equal(4, c:send("abcdef", 2, 4))
      assert.equal(6, c:send("abcdef", -2))
      assert.equal(0, c:send(""))
      assert.equal(3, c:send({"a", "b", "c"}))
      assert.equal("hellobcdefabc", p:receive(13))
      -- OpenResty's fragments: nested tables and numbers
      assert.equal(6, c:send({"x=", {1, {"2", ""}}, {}, ";", {"\n"}}))
      assert.equal("x=12;", p:receive())
      assert.has_error(function() c:send({"a", false}) end,
        "bad argument #1 to 'send' (table of strings expected, got boolean "
        .. "at index 2)")
      local loop = {"l"}
      loop[2] = loop
      assert.has_error(function() c:send(loop) end)
    end)

    it("half-closes", function()
      c:send("request")
      c:shutdown("send")
      assert.equal("request", p:receive("*a"))
      p:send("response")
      p:close()
      assert.equal("response", c:receive("*a"))
    end)

    it("sees a reset by peer as closed", function()
      p:setoption("linger", {on = true, timeout = 0})
      assert.same({on = true, timeout = 0}, p:getoption("linger"))
      c:send("x")
      p:close()
      sleep(0.05)
      local data, err = c:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      local last
      for _ = 1, 10 do
        local ok, e = c:send(("x"):rep(1000))
        if not ok then last = e break end
        sleep(0.01)
      end
      assert.equal("closed", last)
    end)

    it("counts bytes in getstats, and setstats", function()
      c:send("12345")
      p:receive(5)
      p:send("abc")
      c:receive(3)
      local r, s, age = c:getstats()
      assert.same({3, 5}, {r, s})
      assert.is_true(age >= 0 and age < 10)
      assert.equal(1, c:setstats(10, 20, 100))
      r, s, age = c:getstats()
      assert.same({10, 20}, {r, s})
      assert.is_true(age >= 100)
    end)
  end)
end

describe("timeouts", function()
  it("block mode bounds each wait; 0 does not wait", function()
    local c, p = pair()
    assert.same({-1, -1}, {c:gettimeout()})
    c:settimeout(0.1)
    assert.same({0.1, -1}, {c:gettimeout()})
    local dt, data, err = elapsed(c.receive, c)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt >= 0.09 and dt < 0.5, dt)
    c:settimeout(0)
    dt, data, err = elapsed(c.receive, c)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt < 0.05)
    -- block mode: a trickle every 50 ms never trips a 0.2 s timeout
    c:settimeout(0.2)
    spawn(function()
      for i = 1, 5 do sleep(0.05); p:send(tostring(i)) end
      p:send("\n")
    end)
    assert.equal("12345", c:receive())
    c:settimeout(nil)
    assert.same({-1, -1}, {c:gettimeout()})
    c:close(); p:close()
  end)

  it("total mode bounds the whole call", function()
    local c, p = pair()
    c:settimeout(0.2, "t")
    local feeder = spawn(function()
      for i = 1, 10 do sleep(0.05); p:send(tostring(i % 10)) end
    end)
    local dt, data, err, partial = elapsed(c.receive, c)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(#partial >= 2 and #partial <= 4, partial)
    assert.is_true(dt >= 0.19 and dt < 0.5, dt)
    feeder:join()
    c:close(); p:close()
  end)

  it("applies to accept and connect", function()
    local s = listen()
    s:settimeout(0.05)
    assert.same({nil, "timeout"}, {s:accept()})
    s:settimeout(0)
    assert.same({nil, "timeout"}, {s:accept()})
    s:close()
    assert.equal(30, socket.CONNECT_TIMEOUT)
    assert.equal(0.25, socket.HAPPY_EYEBALLS_DELAY)
  end)

  it("send: timeout reports what was sent, the rest follows in order",
    function()
    local c, p = pair()
    local block = {}
    for i = 1, 1024 do block[i] = string.char(i % 251) end
    block = table.concat(block)
    local data = block:rep(16 * 1024)            -- 16 MiB
    c:settimeout(0.2)
    local last, err, sent = c:send(data)
    assert.is_nil(last)
    assert.equal("timeout", err)
    assert.is_true(sent > 0 and sent < #data, sent)
    -- the peer gets exactly data[1..sent], then the rest when resent
    local reader = spawn(function() return p:receive(#data) end)
    c:settimeout(nil)
    assert.equal(#data, c:send(data, sent + 1))
    assert.is_true(reader:join() == data)
    c:close(); p:close()
  end)

  it("settimeouts(connect, send, read) as OpenResty's, in seconds",
     function()
    local c, p = pair()
    assert.equal(1, c:settimeouts(nil, 0.2, 0.1))
    -- read: 0.1 s per wait, restarted by progress
    local dt, data, err = elapsed(c.receive, c)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt >= 0.09 and dt < 0.5, dt)
    spawn(function()
      for i = 1, 4 do sleep(0.05); p:send(tostring(i)) end
      p:send("\n")
    end)
    assert.equal("1234", c:receive())
    -- send: 0.2 s, what was sent is reported
    local big = ("x"):rep(16 * 1024 * 1024)
    local last, serr, sent
    dt, last, serr, sent = elapsed(c.send, c, big)
    assert.is_nil(last)
    assert.equal("timeout", serr)
    assert.is_true(sent > 0 and sent < #big)
    assert.is_true(dt >= 0.19 and dt < 1, dt)
    c:close(); p:close()
    -- settimeout() sets every kind again, as OpenResty's does
    c, p = pair()
    c:settimeouts(0.05, 0.05, 0.05)
    c:settimeout(0.3)
    dt, data, err = elapsed(c.receive, c)
    assert.equal("timeout", err)
    assert.is_true(dt >= 0.29, dt)
    -- an unset kind follows settimeout; a negative one waits for ever
    c:settimeouts(nil, nil, -1)
    local r = spawn(function() return c:receive() end)
    sleep(0.4)
    assert.equal("waiting", r:status())
    p:send("late\n")
    assert.equal("late", r:join())
    assert.has_error(function() c:settimeouts("x") end)
    c:close(); p:close()
  end)

  it("task.timeout scopes end any wait", function()
    local c, p = pair()
    assert.same({nil, "timeout"}, {task.timeout(0.05, c.receive, c)})
    -- the socket stays usable and no byte is lost
    p:send("after\n")
    assert.equal("after", c:receive())
    c:close(); p:close()
  end)
end)

-- LuaSocket's non-blocking I/O: with settimeout(0) each call asks the
-- kernel and answers at once, so a task that polls without ever yielding
-- (a game loop, LuaSocket's test_nonblocking) still moves data. These
-- loops never yield: the event loop does not run inside them.
describe("settimeout(0) polling without yielding", function()
  -- calls f() until it returns true, for at most `limit` seconds
  local function poll(f, limit)
    local deadline = task.now() + (limit or 2)
    repeat
      if f() then return true end
    until task.now() > deadline
    return false
  end

  it("receive sees what was sent a moment ago, with partials", function()
    local c, p = pair()
    c:settimeout(0); p:settimeout(0)
    assert.equal(6, c:send("hello\n"))
    local line, err
    assert.is_true(poll(function()
      line, err = p:receive("*l")
      return err ~= "timeout"
    end), "receive never saw the line")
    assert.equal("hello", line)
    -- partial lines come back as LuaSocket's third value, then the rest
    c:send("par")
    local part = ""
    assert.is_true(poll(function()
      local _, e, partial = p:receive("*l", part)
      assert.equal("timeout", e)
      part = partial
      return part == "par"
    end))
    c:send("tial\nnext")
    assert.is_true(poll(function()
      line, err, part = p:receive("*l", part)
      return line ~= nil
    end))
    assert.equal("partial", line)
    assert.is_true(poll(function()
      local data = p:receiveany(10)
      return data == "next"
    end))
    assert.is_true(poll(function() return p:recv(10) == nil end))
    c:send("abc")
    assert.is_true(poll(function()
      line, err, part = p:receive(3)
      return line == "abc"
    end))
    -- the end of the stream too
    c:close()
    assert.is_true(poll(function()
      line, err, part = p:receive("*a")
      return err ~= "timeout"
    end))
    assert.same({nil, "closed", ""}, {line, err, part})
    p:close()
  end)

  it("moves 4 MB both ways in LuaSocket's test_nonblocking loop",
     function()
    local c, p = pair()
    c:settimeout(0); p:settimeout(0)
    local block = {}
    for i = 1, 1024 do block[i] = string.char((i * 7) % 256) end
    local data = table.concat(block):rep(4 * 1024)
    local sent, parts, have = 0, {}, 0
    local deadline = task.now() + 10
    while (sent < #data or have < #data) and task.now() < deadline do
      if sent < #data then
        local last, err, partial = c:send(data, sent + 1)
        if last then
          sent = last
        else
          assert.equal("timeout", err)
          assert.is_true(partial >= sent)
          sent = partial
        end
      end
      local all, err, partial = p:receive("*a")
      assert.is_nil(all)
      assert.equal("timeout", err)
      if #partial > 0 then
        parts[#parts + 1] = partial
        have = have + #partial
      end
    end
    assert.equal(#data, sent)
    assert.equal(#data, have)
    assert.is_true(table.concat(parts) == data, "data differs")
    c:close(); p:close()
  end)

  it("send reports what the kernel took: the peer gets just that",
     function()
    local c, p = pair()
    c:settimeout(0)
    local big = ("z"):rep(32 * 1024 * 1024)
    local last, err, sent = c:send(big)
    assert.same({nil, "timeout"}, {last, err})
    assert.is_true(sent > 0 and sent < #big, sent)
    -- the kernel is full: a second try takes little or nothing
    local more
    last, err, more = c:send(big, sent + 1)
    assert.same({nil, "timeout"}, {last, err})
    assert.is_true(more >= sent and more < #big)
    sent = more
    -- the peer gets exactly `sent` bytes, nothing more follows
    p:settimeout(5)
    assert.equal(sent, #p:receive(sent))
    p:settimeout(0.2)
    assert.same({nil, "timeout", ""}, {p:receive(1)})
    c:close(); p:close()
  end)

  it("accept sees a pending connection; connect reports progress",
     function()
    local s, port = listen()
    s:settimeout(0)
    local m = socket.tcp()
    m:settimeout(0)
    assert.same({nil, "timeout"}, {m:connect("127.0.0.1", port)})
    local a, err, res
    assert.is_true(poll(function()
      a, err = s:accept()
      return err ~= "timeout"
    end), "accept never saw the connection")
    assert.is_nil(err)
    assert.matches("^tcp{client}", tostring(a))
    assert.is_true(poll(function()
      res = {m:connect("127.0.0.1", port)}
      return res[2] ~= "timeout"
    end), "connect never finished")
    assert.same({nil, "already connected"}, res)
    assert.matches("^tcp{client}", tostring(m))
    -- the two ends of one connection, in both directions
    assert.same({m:getsockname()}, {a:getpeername()})
    assert.equal(3, m:send("hi\n"))
    a:settimeout(1); m:settimeout(1)
    assert.equal("hi", a:receive())
    assert.equal(4, a:send("yes\n"))
    assert.equal("yes", m:receive())
    a:close(); m:close()
    -- a refused connect polls to its error
    s:close()
    local r = socket.tcp()
    r:settimeout(0)
    res = {r:connect("127.0.0.1", port)}
    if res[2] == "timeout" then
      assert.is_true(poll(function()
        res = {r:connect("127.0.0.1", port)}
        return res[2] ~= "timeout"
      end))
    end
    assert.same({nil, "connection refused"}, res)
    r:close()
  end)

  it("select(r, w, 0) sees readiness and a finished connect", function()
    local s, port = listen()
    local m = socket.tcp()
    m:settimeout(0)
    assert.same({nil, "timeout"}, {m:connect("127.0.0.1", port)})
    local r, w
    assert.is_true(poll(function()
      r, w = socket.select({s}, {m}, 0)
      return r[s] and w[m]
    end), "select never saw them ready")
    assert.same({nil, "already connected"}, {m:connect("127.0.0.1", port)})
    s:settimeout(0)
    local a = assert(s:accept())
    m:send("ping")
    assert.is_true(poll(function()
      r = socket.select({a}, nil, 0)
      return r[a] ~= nil
    end), "select never saw the data")
    a:settimeout(0)
    assert.equal("ping", a:receive(4))
    a:close(); m:close(); s:close()
  end)

  it("select that returns at once reports every ready socket, as "
    .. "select(2) does", function()
    local c, p = pair()
    p:send("data\n")             -- in c's kernel buffer; the loop has not
    local r, w = socket.select({c}, {p}, 1)     -- run since
    assert.is_truthy(w[p])
    assert.is_truthy(r[c], "readable socket missed")
    assert.equal("data", c:receive())
    c:close(); p:close()
  end)

  it("a polled select takes nothing away from a parked accept",
     function()
    local s, port = listen()
    local acceptor = spawn(function() return s:accept() end)
    sleep(0.01)                            -- parked in accept()
    local m = socket.tcp()
    m:settimeout(0)
    m:connect("127.0.0.1", port)
    local r
    assert.is_true(poll(function()
      r = socket.select({s}, nil, 0)
      return r[s] ~= nil
    end))
    local a = task.timeout(2, acceptor.join, acceptor)
    assert.matches("^tcp{client}", tostring(a))
    a:close(); m:close(); s:close()
  end)

  it("accept takes every pending connection in order", function()
    local s, port = listen()
    s:settimeout(0)
    local ms = {}
    for i = 1, 3 do
      ms[i] = socket.tcp()
      ms[i]:settimeout(0)
      ms[i]:connect("127.0.0.1", port)
    end
    local got = {}
    assert.is_true(poll(function()
      local a = s:accept()
      if a then got[#got + 1] = a end
      return #got == 3
    end))
    for i = 1, 3 do
      assert.is_true(poll(function()
        return select(2, ms[i]:connect("127.0.0.1", port)) ~= "timeout"
      end))
      assert.same({ms[i]:getsockname()}, {got[i]:getpeername()})
      ms[i]:close(); got[i]:close()
    end
    s:close()
  end)
end)

-- A reset (RST) after part of a response is a failure, not the end of
-- the data: LuaSocket returns nil, "closed", partial for "*a" on
-- ECONNRESET, and the data only on a clean close (FIN).
describe("a reset by the peer", function()
  -- p sends data, then resets the connection (SO_LINGER 0, close)
  local function reset_after(p, data)
    assert.equal(1, p:setoption("linger", {on = true, timeout = 0}))
    if data then assert.equal(#data, p:send(data)) end
    p:close()
    sleep(0.05)
  end

  it("fails receive(\"*a\") with the partial data", function()
    local c, p = pair()
    reset_after(p, "HTTP/1.0 200 OK\r\n\r\ntruncat")
    assert.same({nil, "closed", "HTTP/1.0 200 OK\r\n\r\ntruncat"},
      {c:receive("*a")})
    assert.equal("connection reset by peer", c:readerror())
    assert.same({nil, "closed", ""}, {c:receive("*a")})
    c:close()
    -- a clean close still returns the data, and readerror() says nothing
    c, p = pair()
    p:send("all of it")
    p:close()
    assert.equal("all of it", c:receive("*a"))
    assert.is_nil(c:readerror())
    c:close()
  end)

  it("fails every pattern, once the bytes before it are read", function()
    local c, p = pair()
    reset_after(p, "line\npart")
    assert.equal("line", c:receive())
    assert.same({nil, "closed", "part"}, {c:receive()})
    c:close()
    c, p = pair()
    reset_after(p, "12345")
    assert.equal("123", c:receive(3))
    assert.same({nil, "closed", "45"}, {c:receive(5)})
    c:close()
    c, p = pair()
    reset_after(p, "a--b")
    local it = c:receiveuntil("--")
    assert.equal("a", it())
    assert.same({nil, "closed", "b"}, {it()})
    c:close()
    -- also when polled with settimeout(0)
    c, p = pair()
    c:settimeout(0)
    reset_after(p, "polled")
    local res
    for _ = 1, 100 do
      res = {c:receive("*a")}
      if res[2] ~= "timeout" then break end
    end
    assert.same({nil, "closed", "polled"}, res)
    c:close()
  end)

  it("ends recv() with an error, not as a clean end (\"\")", function()
    local c, p = pair()
    reset_after(p, "abc")
    assert.equal("abc", c:recv(10))
    assert.same({nil, "closed", ""}, {c:recv(10)})
    c:close()
    c, p = pair()
    p:send("abc")
    p:close()
    assert.equal("abc", c:recv(10))
    assert.equal("", c:recv(10))
    c:close()
  end)

  it("makes lines() raise instead of ending", function()
    local c, p = pair()
    reset_after(p, "x\ny")
    local got = {}
    local ok, err = pcall(function()
      for line in c:lines() do got[#got + 1] = line end
    end)
    assert.is_false(ok)
    assert.matches("connection reset by peer", err)
    assert.same({"x"}, got)
    c:close()
  end)
end)

describe("errors", function()
  it("refuses names and paths with a NUL byte, which C would cut",
     function()
    -- to C, "localhost\0.evil.com" is "localhost": it must not connect
    local s, port = listen()
    local inval = {nil, "invalid argument"}
    assert.same(inval, {socket.connect("127.0.0.1\0.evil.com", port)})
    assert.same(inval, {socket.connect("localhost\0.evil.com", port)})
    local t = socket.tcp()
    assert.same(inval, {t:connect("localhost\0x", port)})
    assert.same(inval, {t:bind("127.0.0.1\0x", 0)})
    t:close()
    assert.same(inval, {socket.bind("127.0.0.1\0x", 0)})
    local p = os.tmpname()
    os.remove(p)
    local u = assert(socket.bind("unix:" .. p))
    assert.same(inval, {socket.connect("unix:" .. p .. "\0junk")})
    assert.same(inval, {socket.bind("unix:" .. p .. ".x\0y")})
    assert.is_nil(io.open(p .. ".x"))
    u:close()
    os.remove(p)
    -- the resolver's entry points too
    local dns = socket.dns
    assert.same(inval, {dns.toip("localhost\0.evil.com")})
    assert.same(inval, {dns.getaddrinfo("localhost\0.evil.com")})
    assert.same(inval, {dns.tohostname("localhost\0.evil.com")})
    assert.same(inval, {dns.query("localhost\0.evil.com", "A", 1)})
    -- programmer errors raise: option names, module names
    local c = assert(socket.connect("127.0.0.1", port))
    assert.has_error(function() c:setoption("tcp-nodelay\0x", true) end,
      "bad argument #1 to 'setoption' (option name must not contain a NUL "
      .. "byte)")
    c:close()
    assert.is_false((pcall(require, "socket\0.evil")))
    s:close()
  end)

  it("connection refused on a port just closed", function()
    local s, port = listen()
    s:close()
    assert.same({nil, "connection refused"},
      {socket.connect("127.0.0.1", port)})
    assert.same({nil, "connection refused"}, {socket.connect("::1", port)})
  end)

  it("a second reader or writer gets busy", function()
    local c, p = pair()
    local r = spawn(c.receive, c)
    sleep(0.01)
    assert.same({nil, "busy"}, {c:receive()})
    p:send("x\n")
    assert.equal("x", r:join())
    c:close(); p:close()
  end)

  it("close wakes every waiting task with closed", function()
    local c, p = pair()
    local s = listen()
    local big = ("x"):rep(32 * 1024 * 1024)
    local r = spawn(function() return c:receive() end)
    local w = spawn(function() return c:send(big) end)
    local a = spawn(function() return s:accept() end)
    sleep(0.05)
    assert.equal("waiting", r:status())
    assert.equal("waiting", w:status())
    c:close()
    s:close()
    assert.same({nil, "closed", ""}, {r:join()})
    local _, err, sent = w:join()
    assert.equal("closed", err)
    assert.is_true(sent > 0 and sent < #big)
    assert.same({nil, "closed"}, {a:join()})
    p:close()
  end)

  it("stays usable after both sides shut down, until close()", function()
    local c, p = pair()
    local _, pport = p:getsockname()
    local _, cport = c:getsockname()
    p:close()
    assert.same({nil, "closed", ""}, {c:receive()})
    assert.equal(1, c:shutdown("send"))
    sleep(0.1)                       -- the FIN is acknowledged: CLOSED
    assert.same({"127.0.0.1", pport, "inet"}, {c:getpeername()})
    assert.same({"127.0.0.1", cport, "inet"}, {c:getsockname()})
    local r, sent = c:getstats()
    assert.equal(0, r); assert.equal(0, sent)
    assert.is_false(c:getoption("tcp-nodelay"))
    assert.equal(1, c:setoption("tcp-nodelay", true))
    assert.same({nil, "closed", ""}, {c:receive()})
    assert.same({nil, "closed", 0}, {c:send("x")})
    assert.matches("^tcp{client}", tostring(c))
    c:close()
    assert.same({nil, "closed"}, {c:getpeername()})
  end)

  it("argument errors name what the user called, at the user's line",
     function()
    local c, p = pair()
    assert.matches("^[^:]*socket_spec%.lua:%d+: bad argument #1 to 'recv' "
      .. "%(positive size expected%)$", raised(function() c:recv(-1) end))
    local m = socket.tcp()
    assert.matches("^[^:]*socket_spec%.lua:%d+: calling 'sendall' on bad "
      .. "self %(socket is not connected: tcp{client} expected, got "
      .. "tcp{master}%)$", raised(function() m:sendall("x") end))
    assert.matches("calling 'send' on bad self %(socket is not connected",
      raised(function() m:send("x") end))
    assert.matches("^[^:]*socket_spec%.lua:%d+: bad argument #2 to "
      .. "'connect' %(port expected, got no value: host and port are two "
      .. 'arguments, connect%("127%.0%.0%.1", 18080%)%)$',
      raised(function() socket.connect("127.0.0.1:18080") end))
    assert.matches('connect6%("::1", 80%)',
      raised(function() socket.connect6("[::1]:80") end))
    assert.matches("^[^:]*socket_spec%.lua:%d+: bad argument #1 to 'sleep' "
      .. "%(number expected, got string%)$",
      raised(function() socket.sleep("x") end))
    m:close(); c:close(); p:close()
  end)

  it("full duplex: one reader and one writer share a socket", function()
    local c, p = pair()
    local n = 200
    local reader = spawn(function()
      local got = 0
      for _ = 1, n do
        assert(c:receive())
        got = got + 1
      end
      return got
    end)
    local writer = spawn(function()
      for i = 1, n do assert(c:send("c" .. i .. "\n")) end
    end)
    for i = 1, n do
      assert.equal("c" .. i, p:receive())
      p:send("p" .. i .. "\n")
    end
    writer:join()
    assert.equal(n, reader:join())
    c:close(); p:close()
  end)
end)

describe("options", function()
  it("sets and gets every option", function()
    local c, p = pair()
    for _, name in ipairs{"keepalive", "reuseaddr", "tcp-nodelay"} do
      assert.equal(1, c:setoption(name, true))
      assert.is_true(c:getoption(name))
      assert.equal(1, c:setoption(name, false))
      assert.is_false(c:getoption(name))
    end
    assert.equal(1, c:setoption("reuseport", true))
    assert.is_true(c:getoption("reuseport"))
    assert.equal(1, c:setoption("tcp-keepidle", 30))
    assert.equal(30, c:getoption("tcp-keepidle"))
    assert.equal(1, c:setoption("send-buffer-size", 65536))
    assert.is_true(c:getoption("send-buffer-size") >= 65536)
    assert.is_nil(c:getoption("error"))
    c:close(); p:close()
  end)

  it("remembers options set before the socket exists", function()
    local s, port = listen()
    local m = socket.tcp()
    assert.equal(1, m:setoption("tcp-nodelay", true))
    assert.is_true(m:getoption("tcp-nodelay"))
    assert(m:connect("127.0.0.1", port))
    assert.is_true(m:getoption("tcp-nodelay"))
    m:close(); s:close()
  end)

  it("dirty, getfd and setfd", function()
    local c, p = pair()
    local fd = c:getfd()
    assert.is_true(fd > 2)
    assert.is_false(c:dirty())
    p:send("a\nb\n")
    assert.equal("a", c:receive())
    assert.is_true(c:dirty())
    -- setfd(-1) lets go of the descriptor without closing it
    assert.equal(1, c:setfd(-1))
    assert.equal(-1, c:getfd())
    local d = socket.tcp()
    assert.equal(1, d:setfd(fd))
    assert.matches("^tcp{client}", tostring(d))
    p:send("c\n")
    assert.equal("c", d:receive())
    d:close(); c:close(); p:close()
  end)
end)

describe("select", function()
  it("reports readable and writable, keyed both ways", function()
    local c, p = pair()
    local r, w, err = socket.select({c}, {c}, 0)
    assert.same({}, r)
    assert.equal(c, w[1])
    assert.equal(1, w[c])
    assert.is_nil(err)
    local dt
    dt, r, w, err = elapsed(socket.select, {c}, nil, 0.05)
    assert.same({{}, {}, "timeout"}, {r, w, err})
    assert.is_true(dt >= 0.04)
    spawn(function() sleep(0.02); p:send("x") end)
    r = socket.select({c, p}, nil, 1)
    assert.equal(c, r[1])
    assert.equal(1, r[c])
    assert.is_nil(r[2])
    c:close(); p:close()
  end)

  it("runs an unmodified LuaSocket select loop over several clients",
    function()
    local server, port = listen()
    -- the classic LuaSocket chat-style loop, as written for LuaSocket
    local srv = spawn(function()
      local clients = {server}
      local served = 0
      server:settimeout(0)
      while served < 5 do
        local readable, _, err = socket.select(clients, nil, 2)
        if err then error(err) end
        for _, s in ipairs(readable) do
          if s == server then
            local client = server:accept()
            if client then
              client:settimeout(0)
              table.insert(clients, client)
            end
          else
            local line, rerr = s:receive()
            if line then
              s:send("echo " .. line .. "\n")
            elseif rerr == "closed" then
              for i, v in ipairs(clients) do
                if v == s then table.remove(clients, i) end
              end
              s:close()
              served = served + 1
            end
          end
        end
      end
      return served
    end)
    local cs = {}
    for i = 1, 5 do
      cs[i] = assert(socket.connect("127.0.0.1", port))
    end
    for i = 5, 1, -1 do
      cs[i]:send("hi " .. i .. "\n")
      assert.equal("echo hi " .. i, cs[i]:receive())
    end
    for i = 1, 5 do cs[i]:close() end
    assert.equal(5, srv:join())
    server:close()
  end)

  it("completes a non-blocking connect", function()
    local s, port = listen()
    local m = socket.tcp()
    m:settimeout(0)
    assert.same({nil, "timeout"}, {m:connect("127.0.0.1", port)})
    local _, w = socket.select(nil, {m}, 1)
    assert.equal(m, w[1])
    assert.same({nil, "already connected"}, {m:connect("127.0.0.1", port)})
    s:close()
    local r = socket.tcp()
    r:settimeout(0)
    assert.same({nil, "timeout"}, {r:connect("127.0.0.1", port)})
    _, w = socket.select(nil, {r}, 1)
    assert.equal(r, w[1])
    assert.same({nil, "connection refused"}, {r:connect("127.0.0.1", port)})
    m:close(); r:close()
  end)
end)

describe("connect by name", function()
  setup(function() responder.start() end)
  teardown(function() responder.stop() end)

  it("tries every address: ::1 refused, then 127.0.0.1", function()
    local s, port = listen("127.0.0.1")
    local c = assert(socket.connect("test.netsh", port))
    assert.equal("127.0.0.1", (c:getpeername()))
    local t = c:timings()
    assert.is_true(t.dns > 0 and t.connect >= t.dns)
    c:close(); s:close()
    assert.same({nil, "host not found"},
      {socket.connect("nx.test.netsh", port)})
  end)

  it("settimeout(0): the lookup is part of the call, then it polls",
     function()
    -- LuaSocket resolves (blocking) before its non-blocking connect; a
    -- zero timeout must not end every lookup at once, or a polled
    -- connect to a name would never get anywhere
    local s, port = listen("127.0.0.1")
    local m = socket.tcp()
    m:settimeout(0)
    local r = {m:connect("v4.test.netsh", port)}
    local deadline = task.now() + 5
    while r[2] == "timeout" and task.now() < deadline do
      r = {m:connect("v4.test.netsh", port)}
    end
    assert.same({nil, "already connected"}, r)
    assert.equal("127.0.0.1", (m:getpeername()))
    m:close(); s:close()
  end)

  it("close() during the name lookup wakes connect at once", function()
    local c = socket.tcp()
    c:settimeout(10)
    local closer = spawn(function() sleep(0.2); c:close() end)
    local dt, ok, err = elapsed(function()
      return c:connect("slow.test.netsh", 80)   -- never answered
    end)
    assert.is_nil(ok)
    assert.equal("closed", err)
    assert.is_true(dt >= 0.15 and dt < 2, "connect returned after " .. dt)
    closer:join()
    -- the lookup's own bound still applies without a close
    c = socket.tcp()
    c:settimeout(0.3)
    dt, ok, err = elapsed(function() return c:connect("slow.test.netsh", 80) end)
    assert.equal("timeout", err)
    assert.is_true(dt < 2)
    c:close()
    -- a connecting task cancelled in the lookup, then its socket closed
    c = socket.tcp()
    local t = spawn(function() return c:connect("slow.test.netsh", 80) end)
    sleep(0.05)
    t:cancel()
    c:close()
    collectgarbage()
    assert.equal("closed", select(2, c:connect("127.0.0.1", 1)))
  end)


  it("races IPv4 250 ms after a silent IPv6 (RFC 8305)", function()
    local port, stop = blackhole("::1")
    local s = assert(socket.bind("127.0.0.1", port))
    local dt, c = elapsed(socket.connect, "test.netsh", port)
    assert(c)
    assert.equal("127.0.0.1", (c:getpeername()))
    assert.is_true(dt >= 0.24 and dt < 1, dt)
    c:close(); s:close(); stop()
  end)

  it("prefers IPv6 when it answers first", function()
    local port, stop = blackhole("127.0.0.1")
    local s = assert(socket.bind("::1", port))
    local dt, c = elapsed(socket.connect, "test.netsh", port)
    assert.equal("::1", (c:getpeername()))
    assert.is_true(dt < 0.2, dt)
    c:close(); s:close(); stop()
  end)

  it("bounds a connect nobody answers by the socket timeout", function()
    local port, stop = blackhole("127.0.0.1")
    local m = socket.tcp()
    m:settimeout(0.3)
    local dt, ok, err = elapsed(m.connect, m, "127.0.0.1", port)
    assert.same({nil, "timeout"}, {ok, err})
    assert.is_true(dt >= 0.29 and dt < 1, dt)
    m:close()
    -- or by settimeouts' connect timeout, which wins over settimeout
    m = socket.tcp()
    m:settimeout(5)
    m:settimeouts(0.2, nil, nil)
    dt, ok, err = elapsed(m.connect, m, "127.0.0.1", port)
    assert.same({nil, "timeout"}, {ok, err})
    assert.is_true(dt >= 0.19 and dt < 1, dt)
    m:close(); stop()
  end)
end)

describe("unix domain sockets", function()
  local function tmp_path()
    local p = os.tmpname()
    os.remove(p)
    return p
  end

  it("echo over a path: unix: in bind and connect, every pattern",
     function()
    local path = tmp_path()
    local srv = assert(socket.bind("unix:" .. path))
    assert.same({path, nil, "unix"}, {srv:getsockname()})
    assert.matches("^unix{server}: 0x%x+ " .. path:gsub("%p", "%%%0") .. "$",
      tostring(srv))
    local served = spawn(function()
      srv:serve(function(c)
        assert.equal("unix", c:getfamily())
        assert.same({"", nil, "unix"}, {c:getpeername()})  -- unnamed
        while true do
          local line = c:receive()
          if not line then return end
          c:send("Recu: " .. line .. "\n")
        end
      end)
    end)
    local c = assert(socket.connect("unix:" .. path))
    assert.same({path, nil, "unix"}, {c:getpeername()})
    assert.matches("^unix{client}: 0x%x+ %-> ", tostring(c))
    assert.equal(6, c:send("hello\n"))
    assert.equal("Recu: hello", c:receive())
    assert(c:send({"a", {"b"}, "\n"}))
    assert.equal("Recu: ", c:receive(6))
    assert.equal("ab", c:receive("*l"))
    c:settimeout(0.05)
    local dt, data, err = elapsed(c.receive, c)
    assert.same({nil, "timeout"}, {data, err})
    assert.is_true(dt < 1)
    local r = socket.select({c}, nil, 0.05)
    assert.same({}, r)
    c:settimeout(nil)
    c:send("x\n")
    r = socket.select({c}, nil, 5)
    assert.equal(c, r[1])
    assert.equal("Recu: x", c:receive())
    c:send("last\n")
    c:shutdown("send")                  -- the server sees the end, closes
    assert.equal("Recu: last\n", c:receive("*a"))
    c:close()
    srv:close()
    served:join()
    os.remove(path)
  end)

  it("LuaSocket's socket.unix: unix(), stream(), connect/bind by path",
     function()
    local unix = require "socket.unix"
    assert.equal(unix, socket.unix)
    local path = tmp_path()
    local m = assert(unix())
    assert.equal("unix", m:getfamily())
    assert.same({nil, "bind a path first"}, {m:listen()})
    assert.equal(1, m:bind(path))
    assert.equal(1, m:listen(8))
    local c = assert(unix.stream())
    assert.equal(1, c:connect(path))
    local a = assert(m:accept())
    a:send("over unix\n")
    assert.equal("over unix", c:receive())
    a:close(); c:close(); m:close()
    os.remove(path)
  end)

  it("says clearly what went wrong", function()
    local path = tmp_path()
    assert.same({nil, "no such file or directory"},
      {socket.connect("unix:" .. path)})
    -- a socket file nobody listens on
    local m = assert(require("socket.unix")())
    assert(m:bind(path))
    assert.same({nil, "connection refused"}, {socket.connect("unix:" .. path)})
    assert.same({nil, "address already in use"},
      {socket.bind("unix:" .. path)})
    m:close()
    os.remove(path)
    local long = "unix:/tmp/" .. ("x"):rep(200)
    local ok, err = socket.connect(long)
    assert.is_nil(ok)
    assert.matches("too long", err)
    assert.same({nil, "invalid argument"}, {socket.connect("unix:")})
    -- a network socket cannot become a unix one
    local t = socket.tcp()
    assert(t:bind("127.0.0.1", 0))
    assert.is_nil((t:connect("unix:" .. path)))
    t:close()
  end)

  it("clients beyond the listener's queue wait for room, not fail",
     function()
    local path = tmp_path()
    local srv = assert(socket.bind("unix:" .. path, 4))   -- a short queue
    local served = spawn(function()
      srv:serve(function(c)
        local line = c:receive()
        if line then c:send(line .. "!\n") end
      end)
    end)
    local ok, errs, tasks = 0, {}, {}
    for i = 1, 100 do
      tasks[i] = spawn(function()
        local c, err = socket.connect("unix:" .. path)
        if not c then errs[#errs + 1] = err return end
        c:send(i .. "\n")
        if c:receive() == i .. "!" then ok = ok + 1 end
        c:close()
      end)
    end
    for _, t in ipairs(tasks) do t:join() end
    assert.equal("", table.concat(errs, ", "))
    assert.equal(100, ok)
    srv:close(); served:join()
    -- a full queue nobody drains (a listener outside netsh, which never
    -- accepts): the connect timeout ends the wait
    local p2 = path .. "2"
    local py = io.popen("exec python3 -c 'import socket, sys, time\n"
      .. "s = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
      .. "s.listen(0)\nprint(\"ready\", flush=True)\ntime.sleep(20)' "
      .. p2, "r")
    assert.equal("ready", py:read("l"))
    local held, err = {}, nil
    for _ = 1, 10 do
      local c = socket.tcp()
      c:settimeout(0.2)
      local dt, r
      dt, r, err = elapsed(c.connect, c, "unix:" .. p2)
      if not r then
        assert.equal("timeout", err)
        assert.is_true(dt >= 0.15 and dt < 2, dt)
        c:close()
        break
      end
      held[#held + 1] = c
    end
    assert.equal("timeout", err)
    assert.is_true(#held >= 1)
    for _, h in ipairs(held) do h:close() end
    os.execute("pkill -f '" .. p2 .. "' 2>/dev/null")
    py:close()
    os.remove(path); os.remove(p2)
  end)

  it("abstract names (@name) and no fd leak", function()
    local before = fds.settled()
    for i = 1, 20 do
      local name = "unix:@netsh-spec-" .. i .. "-" .. math.random(1e9)
      local srv = assert(socket.bind(name))
      local c = assert(socket.connect(name))
      local a = assert(srv:accept())
      assert(c:send("ping\n"))
      assert.equal("ping", a:receive())
      assert.equal(name:sub(6), (srv:getsockname()))
      a:close(); c:close(); srv:close()
    end
    -- closes finish on the loop: give them a moment, then count once
    local after
    for _ = 1, 40 do
      after = fdcount()
      if after <= before then break end
      sleep(0.05)
    end
    assert.is_true(after <= before, "fds: " .. before .. " -> " .. after)
  end)
end)

describe("python-style aliases", function()
  it("create_server, create_connection, sendall, recv, accept", function()
    local s = assert(socket.create_server({"127.0.0.1", 0}))
    local _, port = s:getsockname()
    local c = assert(socket.create_connection({"localhost", port}, 5))
    assert.same({5, -1}, {c:gettimeout()})
    local conn, ip, cport = s:accept()
    assert.equal("127.0.0.1", ip)
    assert.equal(select(2, c:getsockname()), cport)
    assert.is_true(c:sendall("Bonjour serveur"))
    assert.equal("Bonjour serveur", conn:recv(1024))
    conn:close()
    assert.equal("", c:recv(1024))
    c:close(); s:close()
  end)
end)

describe("at scale", function()
  it("1000 concurrent clients on one server", function()
    local s, port = listen()
    local srv = spawn(function()
      s:serve(function(c)
        local line = c:receive()
        c:send("echo " .. line .. "\n")
      end)
    end)
    local n = 1000
    local done = 0
    task.group(function(g)
      for i = 1, n do
        g:spawn(function()
          local c = assert(socket.connect("127.0.0.1", port))
          assert(c:send("client " .. i .. "\n"))
          assert.equal("echo client " .. i, c:receive())
          c:close()
          done = done + 1
        end)
      end
    end)
    assert.equal(n, done)
    s:close()
    srv:join()
  end)

  it("100 MB through an echo server, content checked", function()
    local s, port = echo_server()
    local c = assert(socket.connect("127.0.0.1", port))
    local chunk = {}
    math.randomseed(42)
    for i = 1, 1024 * 1024 do chunk[i] = string.char(math.random(0, 255)) end
    chunk = table.concat(chunk)
    local rounds = 100
    local writer = spawn(function()
      for _ = 1, rounds do assert(c:send(chunk)) end
    end)
    local ok = 0
    for _ = 1, rounds do
      local got = assert(c:receive(#chunk))
      if got == chunk then ok = ok + 1 end
    end
    writer:join()
    assert.equal(rounds, ok)
    local r, w = c:getstats()
    assert.same({rounds * #chunk, rounds * #chunk}, {r, w})
    c:close(); s:close()
  end)
end)

describe("garbage collection", function()
  it("closes unreferenced sockets: no fd leak", function()
    local before = fds.settled()
    do
      local s, port = listen()
      for _ = 1, 50 do
        local c = socket.connect("127.0.0.1", port)
        local p = s:accept()
        assert(c and p)
      end
      for _ = 1, 10 do socket.tcp4() end
    end
    assert.is_true(fdcount() >= before + 100)
    collectgarbage()
    collectgarbage()
    -- a leak leaves more descriptors than before (fewer would be another
    -- spec's socket finishing its close meanwhile); settled() lets closes
    -- the collector started finish on the next loop turns (ASan is slow)
    local after = fds.settled()
    assert.is_true(after <= before, ("fds: %d before, %d after"):format(before, after))
  end)

  it("closes on <close> scope exit", function()
    local s, port = listen()
    local outer
    do
      local c <close> = assert(socket.connect("127.0.0.1", port))
      outer = c
    end
    assert.matches("%(closed%)$", tostring(outer))
    s:close()
  end)
end)
