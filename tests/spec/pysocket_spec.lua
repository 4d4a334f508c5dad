-- pysocket_spec.lua -- the Python-literal socket API (lua/socket/python.lua)
-- on loopback: every method of socket.socket objects over TCP, UDP and
-- Unix sockets, the address forms and how they print, the error kinds
-- raised (refused, timeout, would block, gaierror, bad descriptor...),
-- getaddrinfo's shape, and a literal server made concurrent by spawn.
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local socket = require "socket"
local py = require "socket.python"
local responder = require "dns"
local fds = require "fds"

-- a listening literal server on 127.0.0.1 -> server, its address
local function listener(family, host)
  local s = socket.socket(family or socket.AF_INET, socket.SOCK_STREAM)
  s:bind({host or "127.0.0.1", 0})
  s:listen()
  return s, s:getsockname()
end

-- a connected pair: client, server side
local function pair()
  local s, addr = listener()
  local c = socket.socket()
  c:connect(addr)
  local conn = s:accept()
  s:close()
  return c, conn
end

-- raised(f, ...) -> the error object f raised
local function raised(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return e
end

local function closed_port()
  local s, addr = listener()
  s:close()
  return addr[2]
end

describe("socket.python: the module", function()
  it("puts Python's names on the socket module, LuaSocket's unchanged",
    function()
    assert.equal(py.socket, socket.socket)
    assert.equal(2, socket.AF_INET)
    assert.equal(10, socket.AF_INET6)
    assert.equal(1, socket.AF_UNIX)
    assert.equal(1, socket.SOCK_STREAM)
    assert.equal(2, socket.SOCK_DGRAM)
    assert.same({1, 2, 6, 1, 0, 1, 2},
      {socket.SOL_SOCKET, socket.SO_REUSEADDR, socket.IPPROTO_TCP,
       socket.TCP_NODELAY, socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR})
    assert.equal(6, socket.SO_BROADCAST)
    assert.equal("TimeoutError", socket.timeout)
    assert.equal("OSError", socket.error)
    assert.equal("gaierror", socket.gaierror)
    -- LuaSocket's create_connection: its object, nil, err on failure
    assert.same({nil, "connection refused"},
      {socket.create_connection({"127.0.0.1", closed_port()}, 2)})
    local s, addr = listener()
    local c = assert(socket.create_connection({"127.0.0.1", addr[2]}, 2))
    assert.matches("^tcp{client}", tostring(c))
    c:close()
    s:close()
    -- and socket.dns.getaddrinfo stays LuaSocket's
    assert.same({family = "inet", addr = "127.0.0.1"},
      socket.dns.getaddrinfo("127.0.0.1")[1])
  end)

  it("socket() defaults to AF_INET, SOCK_STREAM and prints as Python's",
    function()
    local s <close> = socket.socket()
    assert.equal(socket.AF_INET, s.family)
    assert.equal(socket.SOCK_STREAM, s.type)
    assert.equal(0, s.proto)
    assert.matches("^<socket.socket fd=%d+, family=AF_INET, "
      .. "type=SOCK_STREAM, proto=0, laddr=%('0.0.0.0', 0%)>$", tostring(s))
    s:close()
    assert.equal("<socket.socket [closed] fd=-1, family=AF_INET, "
      .. "type=SOCK_STREAM, proto=0>", tostring(s))
  end)

  it("refuses unknown families and types with OSError", function()
    local e = raised(socket.socket, 99)
    assert.equal("OSError", e.kind)
    assert.equal(97, e.errno)
    e = raised(socket.socket, socket.AF_INET, socket.SOCK_RAW)
    assert.equal(94, e.errno)
    e = raised(socket.socket, socket.AF_UNIX, socket.SOCK_DGRAM)
    assert.equal(97, e.errno)
    assert.has_error(function() socket.socket("inet") end,
      "bad argument #1 to 'socket' (number expected, got string)")
  end)
end)

describe("socket.python: TCP", function()
  it("bind, listen, accept, connect, recv, sendall, close", function()
    local s, addr = listener()
    assert.equal("127.0.0.1", addr[1])
    assert.is_true(addr[2] > 0)
    local c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    assert.is_nil(c:connect(addr))
    local conn, caddr = s:accept()
    assert.equal(c:getsockname(), caddr)
    assert.equal(addr, c:getpeername())
    assert.equal(addr, conn:getsockname())
    assert.is_nil(c:sendall("Bonjour serveur"))
    assert.equal("Bonjour serveur", conn:recv(1024))
    assert.equal(5, conn:send("Recu:"))
    assert.equal("Re", c:recv(2))
    assert.equal("cu:", c:recv(1024))
    assert.equal("", c:recv(0))
    conn:close()
    assert.equal("", c:recv(1024))          -- EOF
    assert.equal("", c:recv(1024))
    c:close()
    s:close()
  end)

  it("takes an address as a table or as two arguments", function()
    local s, addr = listener()
    local c = socket.socket()
    c:connect("127.0.0.1", addr[2])
    local conn = s:accept()
    c:sendall("x")
    assert.equal("x", conn:recv(1))
    c:close()
    conn:close()
    s:close()
    local s2 = socket.socket()
    s2:bind("127.0.0.1", 0)
    assert.equal("127.0.0.1", s2:getsockname()[1])
    s2:close()
    local s3 = socket.socket()
    s3:bind({"", 0})                          -- "" is every address
    assert.equal("0.0.0.0", s3:getsockname()[1])
    s3:close()
  end)

  it("prints addresses as Python's tuples; IPv6 has four fields",
    function()
    assert.equal("('127.0.0.1', 12345)", tostring(socket.address(
      "127.0.0.1", 12345)))
    local s, addr = listener(socket.AF_INET6, "::1")
    assert.equal(4, #addr)
    assert.equal(("('::1', %d, 0, 0)"):format(addr[2]), tostring(addr))
    local c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    c:connect({"::1", addr[2]})
    local conn, caddr = s:accept()
    assert.equal("::1", caddr[1])
    assert.equal(c:getsockname(), caddr)
    c:close()
    conn:close()
    s:close()
  end)

  it("rejects bad addresses as argument errors", function()
    local s <close> = socket.socket()
    assert.has_error(function() s:connect(42) end,
      "bad argument #1 to 'connect' (address {host, port} expected, "
      .. "got number)")
    assert.has_error(function() s:connect({"127.0.0.1", 70000}) end,
      "bad argument #1 to 'connect' (port must be 0-65535)")
    assert.has_error(function() s:recv("x") end,
      "bad argument #1 to 'recv' (non-negative integer expected, got string)")
  end)

  it("recv after a reset raises ConnectionResetError; after a FIN, \"\"",
    function()
    local srv = socket.socket()
    srv:bind{"127.0.0.1", 0}
    srv:listen()
    local c = socket.socket()
    c:connect(srv:getsockname())
    local conn = srv:accept()
    conn:cosocket():setoption("linger", {on = true, timeout = 0})
    conn:close()                      -- an RST
    sleep(0.05)
    local e = raised(c.recv, c, 100)
    assert.equal("ConnectionResetError", e.kind)
    assert.equal(104, e.errno)
    c:close()
    local c2 = socket.socket()
    c2:connect(srv:getsockname())
    local conn2 = srv:accept()
    conn2:close()                     -- a FIN
    assert.equal("", c2:recv(100))
    c2:close()
    srv:close()
  end)

  it("connect to a closed port raises ConnectionRefusedError", function()
    local c = socket.socket()
    local e = raised(c.connect, c, {"127.0.0.1", closed_port()})
    assert.equal("ConnectionRefusedError", e.kind)
    assert.equal(111, e.errno)
    assert.equal("Connection refused", e.strerror)
    assert.equal("Connection refused", e.message)
    assert.equal("ConnectionRefusedError: [Errno 111] Connection refused",
      tostring(e))
    assert.is_true(e:is("ConnectionError"))
    assert.is_true(e:is(socket.error))
    assert.is_false(e:is(socket.timeout))
    c:close()
  end)

  it("connect_ex returns the errno instead", function()
    local c = socket.socket()
    assert.equal(111, c:connect_ex({"127.0.0.1", closed_port()}))
    c:close()
    local s, addr = listener()
    c = socket.socket()
    assert.equal(0, c:connect_ex(addr))
    c:close()
    s:close()
  end)

  it("bind twice, accept before listen: OSError 22 as Python's",
    function()
    local s = socket.socket()
    s:bind({"127.0.0.1", 0})
    assert.equal("OSError: [Errno 22] Invalid argument",
      tostring(raised(s.bind, s, {"127.0.0.1", 0})))
    assert.equal(22, raised(s.accept, s).errno)
    s:close()
  end)

  it("binding a port in use raises OSError 98", function()
    local s, addr = listener()
    local t = socket.socket()
    local e = raised(t.bind, t, addr)
    assert.equal("OSError", e.kind)
    assert.equal(98, e.errno)
    assert.equal("OSError: [Errno 98] Address already in use", tostring(e))
    t:close()
    s:close()
  end)

  it("settimeout: recv and accept raise TimeoutError", function()
    local c, conn = pair()
    assert.is_nil(c:gettimeout())
    c:settimeout(0.1)
    assert.equal(0.1, c:gettimeout())
    local t0 = task.now()
    local e = raised(c.recv, c, 10)
    assert.is_true(task.now() - t0 >= 0.09)
    assert.equal("TimeoutError", e.kind)
    assert.is_nil(e.errno)
    assert.equal("TimeoutError: timed out", tostring(e))
    assert.is_true(e:is(socket.timeout))
    assert.is_true(e:is("OSError"))
    c:settimeout(nil)
    assert.is_nil(c:gettimeout())
    c:close()
    conn:close()
    local s = listener()
    s:settimeout(0.05)
    assert.equal("TimeoutError", raised(s.accept, s).kind)
    s:close()
  end)

  it("setblocking(false): recv raises BlockingIOError at once", function()
    local c, conn = pair()
    assert.is_true(c:getblocking())
    c:setblocking(false)
    assert.is_false(c:getblocking())
    assert.equal(0, c:gettimeout())
    local e = raised(c.recv, c, 10)
    assert.equal("BlockingIOError", e.kind)
    assert.equal(11, e.errno)
    conn:sendall("now")
    task.sleep(0.05)
    assert.equal("now", c:recv(10))
    c:setblocking(true)
    assert.is_nil(c:gettimeout())
    c:close()
    conn:close()
  end)

  it("non-blocking connect: connect_ex gives 115, select says when done",
    function()
    local s, addr = listener()
    local c = socket.socket()
    c:setblocking(false)
    assert.equal(115, c:connect_ex(addr))             -- EINPROGRESS
    local _, w = socket.select(nil, {c}, 2)
    assert.equal(c, w[1])
    assert.equal(addr, c:getpeername())
    assert.equal(106, raised(c.connect, c, addr).errno)  -- EISCONN
    c:setblocking(true)
    c:sendall("x")
    local conn = s:accept()
    assert.equal("x", conn:recv(1))
    c:close()
    conn:close()
    s:close()
  end)

  it("setdefaulttimeout applies to new sockets", function()
    assert.is_nil(socket.getdefaulttimeout())
    socket.setdefaulttimeout(0.05)
    local c, conn = pair()
    socket.setdefaulttimeout(nil)
    assert.equal(0.05, c:gettimeout())
    assert.equal(0.05, conn:gettimeout())
    assert.equal("TimeoutError", raised(c.recv, c, 1).kind)
    c:close()
    conn:close()
  end)

  it("task.timeout bounds a literal call too", function()
    local c, conn = pair()
    local r = table.pack(task.timeout(0.05, function() return c:recv(1) end))
    assert.same({nil, "timeout", n = 2}, r)
    c:close()
    conn:close()
  end)

  it("setsockopt and getsockopt on Python's numbers", function()
    local c, conn = pair()
    c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert.equal(1, c:getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    assert.equal(0, c:getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    c:setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, true)
    assert.equal(1, c:getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    assert.is_true(c:getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > 0)
    assert.equal(0, c:getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    local e = raised(c.setsockopt, c, socket.SOL_SOCKET, 999, 1)
    assert.equal(92, e.errno)
    c:close()
    conn:close()
    local s = socket.socket()
    s:setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    assert.equal(1, s:getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
    s:close()
  end)

  it("shutdown(SHUT_WR) ends the peer's reads", function()
    local c, conn = pair()
    c:sendall("last")
    c:shutdown(socket.SHUT_WR)
    assert.equal("last", conn:recv(10))
    assert.equal("", conn:recv(10))
    conn:sendall("still open")
    assert.equal("still open", c:recv(100))
    assert.has_error(function() c:shutdown(7) end)
    c:close()
    conn:close()
  end)

  it("recv on an unconnected socket raises OSError 107", function()
    local s <close> = socket.socket()
    local e = raised(s.recv, s, 1)
    assert.equal(107, e.errno)
    e = raised(s.getpeername, s)
    assert.equal(107, e.errno)
    local f = s:makefile()
    assert.equal(107, raised(f.readline, f).errno)
    assert.equal(107, raised(s.sendall, s, "x").errno)
  end)

  it("close twice is fine; a closed socket raises OSError 9", function()
    local c, conn = pair()
    assert.is_true(c:fileno() > 2)
    c:close()
    c:close()
    assert.equal(-1, c:fileno())
    local e = raised(c.recv, c, 1)
    assert.equal("OSError: [Errno 9] Bad file descriptor", tostring(e))
    assert.equal(9, raised(c.sendall, c, "x").errno)
    conn:close()
  end)

  it("a task waiting in recv gets OSError 9 when the socket is closed",
    function()
    local c, conn = pair()
    local got
    local t = spawn(function()
      local ok, e = pcall(c.recv, c, 10)
      got = ok and "no error" or e
    end)
    task.sleep(0.02)
    c:close()
    task.timeout(2, t.join, t)
    assert.equal(9, got.errno)
    conn:close()
  end)

  it("send to a peer that is gone raises a ConnectionError", function()
    local c, conn = pair()
    conn:close()
    local e
    for _ = 1, 100 do
      local ok, err = pcall(c.sendall, c, ("x"):rep(65536))
      if not ok then e = err break end
      task.sleep(0.01)
    end
    assert.is_not_nil(e, "sendall never failed")
    assert.is_true(e:is("ConnectionError"), tostring(e))
    c:close()
  end)

  it("dropped objects close their sockets when collected", function()
    -- sockets only: fds.count() also sees a pipe now and then under load
    local function sockets()
      local f = assert(io.open("/proc/self/stat"))
      local pid = f:read("n")
      f:close()
      local p = io.popen("ls -l /proc/" .. pid .. "/fd | grep -c socket:")
      local n = p:read("n")
      p:close()
      return n
    end
    fds.settled()
    local before = sockets()
    do
      local s, addr = listener()
      for _ = 1, 20 do
        local c = socket.socket()
        c:connect(addr)
        s:accept()
        local u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u:bind({"127.0.0.1", 0})
      end
    end
    assert.is_true(sockets() >= before + 60)
    fds.settled()
    assert.equal(before, sockets())
  end)

  it("<close> closes the socket at the end of the block (Python's with)",
    function()
    local outer
    do
      local s <close> = socket.socket()
      outer = s
      assert.is_true(s:fileno() > 2)
    end
    assert.equal(-1, outer:fileno())
  end)

  it("makefile: readline keeps the newline, iteration, read(n)", function()
    local c, conn = pair()
    conn:sendall("one\ntwo\r\nthree\nrest-")
    local f = c:makefile("r")
    assert.equal("one\n", f:readline())
    assert.equal("two\r\n", f:readline())
    assert.equal("three\n", f:readline())
    assert.equal("rest-", f:read(5))
    conn:sendall("a\nb\nc")
    conn:close()
    local lines = {}
    for line in f do lines[#lines + 1] = line end
    assert.same({"a\n", "b\n", "c"}, lines)
    assert.equal("", f:readline())
    f:close()
    c:close()
    local c2, conn2 = pair()
    local w = conn2:makefile("w")
    assert.equal(6, w:write("x\ny\nz\n"))
    w:flush()
    conn2:close()
    local got = {}
    for l in c2:makefile():lines() do got[#got + 1] = l end
    assert.same({"x", "y", "z"}, got)
    c2:close()
  end)

  it("wraps a LuaSocket object (the fileno argument)", function()
    local s, addr = listener()
    local raw = assert(socket.connect("127.0.0.1", addr[2]))
    local c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, raw)
    local conn = s:accept()
    c:sendall("wrapped")
    assert.equal("wrapped", conn:recv(100))
    assert.equal(raw, c:cosocket())
    assert.has_error(function() socket.socket(2, 1, 0, 7) end,
      "bad argument #4 to 'socket' (a netsh socket expected (descriptor "
      .. "numbers cannot be adopted), got number)")
    local u = socket.socket(nil, nil, nil, assert(udp.udp4()))
    assert.equal(socket.SOCK_DGRAM, u.type)
    u:close()
    c:close()
    conn:close()
    s:close()
  end)
end)

describe("socket.python: with the rest of netsh", function()
  it("socket.select takes the objects and returns them", function()
    local c, conn = pair()
    local r, w, err = socket.select({c, conn}, nil, 0.05)
    assert.same({}, r)
    assert.equal("timeout", err)
    conn:sendall("ping")
    r = socket.select({c, conn}, nil, 1)
    assert.equal(c, r[1])
    assert.equal(1, r[c])
    assert.equal("ping", c:recv(10))
    c:close()
    conn:close()
  end)
end)

describe("socket.python: a literal server", function()
  it("becomes concurrent with one spawn", function()
    local server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server:bind({"127.0.0.1", 0})
    server:listen(5)
    local addr = server:getsockname()
    local served = 0
    local srv = spawn(function()
      while true do
        local ok, conn = pcall(server.accept, server)
        if not ok then return end
        spawn(function()
          local data = conn:recv(1024)
          conn:sendall("Recu: " .. data)
          conn:close()
          served = served + 1
        end)
      end
    end)
    -- three clients connect first and speak in reverse order: a server
    -- that handled one client at a time would wait on the first forever
    local clients = {}
    for i = 1, 3 do
      clients[i] = socket.socket()
      clients[i]:settimeout(5)
      clients[i]:connect(addr)
    end
    task.sleep(0.02)
    local answers = {}
    for i = 3, 1, -1 do
      clients[i]:sendall("client " .. i)
      answers[i] = clients[i]:recv(1024)
    end
    assert.same({"Recu: client 1", "Recu: client 2", "Recu: client 3"},
      answers)
    for i = 1, 3 do clients[i]:close() end
    server:close()
    task.timeout(2, srv.join, srv)
    assert.equal(3, served)
  end)
end)

describe("socket.python: UDP", function()
  it("bind, sendto, recvfrom with address tuples", function()
    local server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server:bind({"127.0.0.1", 0})
    local addr = server:getsockname()
    local client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert.equal(("('0.0.0.0', 0)"), tostring(client:getsockname()))
    assert.equal(15, client:sendto("Bonjour serveur", {"localhost",
      addr[2]}))
    local data, from = server:recvfrom(1024)
    assert.equal("Bonjour serveur", data)
    assert.equal(client:getsockname()[2], from[2])
    assert.equal("('127.0.0.1', " .. from[2] .. ")", tostring(from))
    server:sendto("Recu: " .. data, from)
    local response, raddr = client:recvfrom(1024)
    assert.equal("Recu: Bonjour serveur", response)
    assert.equal(addr, raddr)
    assert.equal("Recu", (function()
      client:sendto("Recu: x", 0, addr)          -- sendto(data, flags, addr)
      return server:recv(4)
    end)())
    client:close()
    server:close()
  end)

  it("connect, send, recv; ICMP refusal raises ConnectionRefusedError",
    function()
    local a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a:bind({"127.0.0.1", 0})
    local b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b:connect(a:getsockname())
    assert.equal(a:getsockname(), b:getpeername())
    assert.equal(2, b:send("hi"))
    assert.equal("hi", a:recv(100))
    b:close()
    local port = a:getsockname()[2]
    a:close()
    local c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:settimeout(2)
    c:connect({"127.0.0.1", port})
    c:send("anyone?")
    local e = raised(c.recv, c, 100)
    assert.equal("ConnectionRefusedError", e.kind)
    c:close()
  end)

  it("recvfrom with a timeout raises TimeoutError", function()
    local s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s:bind({"127.0.0.1", 0})
    s:settimeout(0.05)
    local e = raised(s.recvfrom, s, 100)
    assert.equal("TimeoutError", e.kind)
    s:setblocking(false)
    e = raised(s.recvfrom, s, 100)
    assert.equal("BlockingIOError", e.kind)
    s:close()
  end)

  it("SO_BROADCAST through setsockopt", function()
    local s <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s:setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    assert.equal(1, s:getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))
  end)
end)

describe("socket.python: AF_UNIX", function()
  it("addresses are paths", function()
    local path = os.tmpname()
    os.remove(path)
    local s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s:bind(path)
    s:listen(1)
    assert.equal(path, s:getsockname())
    local c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c:connect(path)
    local conn, addr = s:accept()
    assert.equal("", addr)
    c:sendall("over unix")
    assert.equal("over unix", conn:recv(100))
    assert.has_error(function() c:connect({"x", 1}) end,
      "bad argument #1 to 'connect' (path expected, got table)")
    c:close()
    conn:close()
    s:close()
    local d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    assert.equal("ConnectionRefusedError",     -- the file, nobody behind
      raised(d.connect, d, path).kind)
    os.remove(path)
    assert.equal("FileNotFoundError: [Errno 2] No such file or directory",
      tostring(raised(d.connect, d, path)))
    d:close()
  end)
end)

describe("socket.python: names and addresses", function()
  it("gethostbyname", function()
    assert.equal("127.0.0.1", socket.gethostbyname("localhost"))
    assert.equal("10.1.2.3", socket.gethostbyname("10.1.2.3"))
    assert.equal("string", type(socket.gethostname()))
    local name, aliases, addrs = socket.gethostbyaddr("127.0.0.1")
    assert.equal("localhost", name)
    assert.equal("[]", tostring(aliases))
    assert.equal("['127.0.0.1']", tostring(addrs))
  end)

  it("getaddrinfo has Python's shape and print", function()
    local list = socket.getaddrinfo("127.0.0.1", 80, socket.AF_INET,
      socket.SOCK_STREAM)
    assert.equal(1, #list)
    local family, stype, proto, canon, addr = table.unpack(list[1])
    assert.same({2, 1, 6, ""}, {family, stype, proto, canon})
    assert.equal(socket.address("127.0.0.1", 80), addr)
    assert.equal("[(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>"
      .. ", 6, '', ('127.0.0.1', 80))]", tostring(list))
    -- no type: stream, datagram and raw entries, as Python's
    list = socket.getaddrinfo("::1", "8080")
    assert.equal(3, #list)
    assert.same({10, 1, 6}, {list[1][1], list[1][2], list[1][3]})
    assert.same({10, 2, 17}, {list[2][1], list[2][2], list[2][3]})
    assert.equal("('::1', 8080, 0, 0)", tostring(list[1][5]))
    -- host nil: loopback; with AI_PASSIVE: every address
    list = socket.getaddrinfo(nil, 0, socket.AF_INET, socket.SOCK_DGRAM, 0,
      socket.AI_PASSIVE)
    assert.equal("0.0.0.0", list[1][5][1])
    list = socket.getaddrinfo(nil, 7, socket.AF_INET, socket.SOCK_DGRAM)
    assert.equal("('127.0.0.1', 7)", tostring(list[1][5]))
  end)

  it("getaddrinfo takes service names", function()
    local f = io.open("/etc/services")
    if not f then pending("no /etc/services here") return end
    f:close()
    local list = socket.getaddrinfo("127.0.0.1", "http", socket.AF_INET,
      socket.SOCK_STREAM)
    assert.equal(80, list[1][5][2])
    local e = raised(socket.getaddrinfo, "127.0.0.1", "no-such-service")
    assert.equal("gaierror", e.kind)
    assert.equal(-8, e.errno)
  end)

  it("getservbyname, byte order, inet_aton and inet_ntoa", function()
    local f = io.open("/etc/services")
    if f then
      f:close()
      assert.equal(80, socket.getservbyname("http"))
      assert.equal(53, socket.getservbyname("domain", "udp"))
      assert.equal("OSError", raised(socket.getservbyname, "nope").kind)
    end
    assert.equal(0x3930, socket.htons(12345))
    assert.equal(12345, socket.ntohs(socket.htons(12345)))
    assert.equal(0x0100007f, socket.htonl(0x7f000001))
    assert.equal("\127\0\0\1", socket.inet_aton("127.0.0.1"))
    assert.equal("10.1.2.3", socket.inet_ntoa("\10\1\2\3"))
    assert.equal("OSError: illegal IP address string passed to inet_aton",
      tostring(raised(socket.inet_aton, "1.2.3.256")))
  end)

  it("gaierror for unknown names", function()
    responder.start()
    local e = raised(socket.gethostbyname, "nx.test.netsh")
    assert.equal("gaierror", e.kind)
    assert.equal(-2, e.errno)
    assert.equal("socket.gaierror: [Errno -2] Name or service not known",
      tostring(e))
    assert.is_true(e:is(socket.error))
    e = raised(socket.getaddrinfo, "nx.test.netsh", 80)
    assert.equal(-2, e.errno)
    local c <close> = socket.socket()
    e = raised(c.connect, c, {"nx.test.netsh", 80})
    assert.equal("gaierror", e.kind)
    e = raised(c.connect_ex, c, {"nx.test.netsh", 80})
    assert.equal("gaierror", e.kind)
    assert.equal("127.0.0.1", socket.gethostbyname("test.netsh"))
    responder.stop()
    e = raised(socket.getaddrinfo, "::1", 80, socket.AF_INET)
    assert.equal(-9, e.errno)
  end)
end)

describe("socket.python: create_connection and create_server", function()
  it("return Python objects from require 'socket.python'", function()
    local server = py.create_server({"127.0.0.1", 0})
    assert.matches("^<socket.socket", tostring(server))
    local addr = server:getsockname()
    local c = py.create_connection({"127.0.0.1", addr[2]}, 2)
    assert.equal(2, c:gettimeout())
    local conn, caddr = server:accept()
    assert.equal(c:getsockname(), caddr)
    c:sendall("hi")
    assert.equal("hi", conn:recv(10))
    conn:close()
    c:close()
    server:close()
    local e = raised(py.create_connection, {"127.0.0.1", closed_port()}, 2)
    assert.equal("ConnectionRefusedError", e.kind)
    -- dualstack_ipv6: one server for both families
    server = py.create_server({"", 0}, {family = socket.AF_INET6,
      dualstack_ipv6 = true})
    local port = server:getsockname()[2]
    for _, host in ipairs({"127.0.0.1", "::1"}) do
      c = py.create_connection({host, port}, 2)
      conn = server:accept()
      c:sendall(host)
      assert.equal(host, conn:recv(100))
      c:close()
      conn:close()
    end
    server:close()
    -- everything else comes from the socket module
    assert.equal(socket.tcp, py.tcp)
  end)
end)
