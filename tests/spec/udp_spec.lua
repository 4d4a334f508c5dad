-- udp_spec.lua -- the udp module over loopback (IPv4 and IPv6): exchange,
-- connected mode, timeouts, truncation, empty and maximum-size datagrams,
-- refused peers, many tasks on one socket, options and multicast, object
-- lifetime, and the examples and scripts run as a user would.

local NETSH = os.getenv("NETSH") or (arg and arg[-1]) or "build/netsh"
local SRC = os.getenv("NETSH_SRC") or "."

local function server(host)
  local s = assert(udp.bind(host, 0))
  local ip, port = s:getsockname()
  return s, ip, port
end

-- A port nobody listens on (bound, read back, closed again).
local function closed_port(host)
  local s, _, port = server(host)
  s:close()
  return port
end

local function elapsed(f)
  local t0 = task.now()
  local r = table.pack(f())
  return task.now() - t0, table.unpack(r, 1, r.n)
end

describe("udp and IPv6 scope ids (RFC 4007)", function()
  it("sendto, setpeername and setsockname take %name and %number",
    function()
    local s <close>, _, port = server("::1")
    local c <close> = udp.udp6()
    for i, host in ipairs{"::1%lo", "::1%1"} do
      assert.equal(1, c:sendto(tostring(i), host, port))
      assert.equal(tostring(i), (s:receivefrom(nil)))
    end
    local p <close> = udp.udp6()
    assert.equal(1, p:setpeername("::1%lo", port))
    assert.equal(2, p:send("p1"))
    assert.equal("p1", (s:receivefrom()))
    local b <close> = udp.udp6()
    assert.equal(1, b:setsockname("::1%lo", 0))
    -- an interface that does not exist is an error, not ignored
    assert.same({nil, "host not found"},
      {c:sendto("x", "::1%no_such_if0", port)})
    assert.same({nil, "host not found"},
      {udp.udp6():setpeername("::1%no_such_if0", port)})
  end)
end)

for _, fam in ipairs{{name = "IPv4", host = "127.0.0.1", new = "udp4"},
                     {name = "IPv6", host = "::1", new = "udp6"}} do
  local HOST = fam.host

  describe("udp over " .. fam.name, function()
    it("exchanges datagrams: sendto/receivefrom return counts and peers",
      function()
      local s <close>, ip, port = server(HOST)
      assert.equal(HOST, ip)
      local c <close> = udp[fam.new]()
      assert.equal(5, c:sendto("hello", HOST, port))
      local cip, cport = c:getsockname()
      local data, fip, fport = s:receivefrom()
      assert.equal("hello", data)
      assert.equal(HOST, fip)
      assert.equal(cport, fport)
      assert.is_true(cip == HOST or cip == "0.0.0.0" or cip == "::")
      assert.equal(6, s:sendto("world!", fip, fport))
      assert.same({"world!", HOST, port}, {c:receivefrom()})
    end)

    it("connected mode: send/receive, getpeername, '*' disconnects",
      function()
      local s <close>, _, port = server(HOST)
      local c <close> = udp[fam.new]()
      assert.matches("^udp{unconnected}", tostring(c))
      assert.equal(1, c:setpeername(HOST, port))
      assert.matches("^udp{connected}", tostring(c))
      local pip, pport, pfam = c:getpeername()
      assert.same({HOST, port, fam.name == "IPv4" and "inet" or "inet6"},
        {pip, pport, pfam})
      assert.equal(4, c:send("ping"))
      local data, ip, cport = s:receivefrom()
      assert.equal("ping", data)
      assert.equal(4, s:sendto("pong", ip, cport))
      assert.equal("pong", c:receive())
      -- a connected socket only hears its peer
      local other <close> = udp[fam.new]()
      other:sendto("stranger", HOST, cport)
      s:sendto("peer", ip, cport)
      assert.equal("peer", c:receive())
      -- sendto on a connected socket, send on an unconnected one
      assert.same({nil, "already connected"}, {c:sendto("x", HOST, port)})
      assert.equal(1, c:setpeername("*"))
      assert.matches("^udp{unconnected}", tostring(c))
      assert.same({nil, "not connected"}, {c:getpeername()})
      assert.same({nil, "destination address required"}, {c:send("x")})
      assert.equal(1, c:sendto("y", HOST, port))
      assert.equal("y", s:receive())
    end)

    it("receive timeouts give nil, 'timeout'; settimeout(0) polls",
      function()
      local s <close>, _, port = server(HOST)
      s:settimeout(0.05)
      local d, r, err = elapsed(function() return s:receive() end)
      assert.same({nil, "timeout"}, {r, err})
      assert.is_true(d >= 0.045 and d < 0.5, "waited " .. d)
      s:settimeout(0)
      d, r, err = elapsed(function() return s:receivefrom() end)
      assert.same({nil, "timeout"}, {r, err})
      assert.is_true(d < 0.02, "poll waited " .. d)
      -- a datagram the loop has not read yet is still seen by a poll
      local c <close> = udp[fam.new]()
      c:sendto("polled", HOST, port)
      assert.equal("polled", s:receive())
      s:settimeout(nil)
      assert.equal(-1, s:gettimeout())
      -- a task.timeout scope ends the wait too, the socket stays usable
      assert.same({nil, "timeout"},
        {task.timeout(0.05, function() return s:receive() end)})
      c:sendto("after", HOST, port)
      assert.equal("after", s:receive())
    end)

    it("truncation is reported: data, 'truncated', full length", function()
      local s <close>, _, port = server(HOST)
      local c <close> = udp[fam.new]()
      c:sendto("hello world", HOST, port)
      assert.same({"hello", "truncated", 11}, {s:receive(5)})
      c:sendto("hello world", HOST, port)
      local cport = select(2, c:getsockname())
      assert.same({"hel", HOST, cport, "truncated", 11},
        {s:receivefrom(3)})
      c:sendto("exact", HOST, port)
      assert.same({"exact"}, {s:receive(5)})   -- no marker when it fits
      c:sendto("abcdef", HOST, port)
      assert.same({"", "truncated", 6}, {s:receive(0)})
      c:sendto("in a loop", HOST, port)
      for data, ip, p, mark, len in s:datagrams(4) do
        assert.same({"in a", HOST, cport, "truncated", 9},
          {data, ip, p, mark, len})
        break
      end
    end)

    it("carries 0-byte datagrams", function()
      local s <close>, _, port = server(HOST)
      local c <close> = udp[fam.new]()
      assert.equal(0, c:sendto("", HOST, port))
      local data, ip = s:receivefrom()
      assert.equal("", data)
      assert.equal(HOST, ip)
      assert.equal(0, c:sendto("", HOST, port))
      assert.same({""}, {s:receive(10)})
    end)

    it("carries 65,507-byte datagrams; larger ones are refused or cut",
      function()
      local s <close>, _, port = server(HOST)
      local c <close> = udp[fam.new]()
      local big = ("0123456789abcdef"):rep(4094) .. "xyz"
      assert.equal(65507, #big)
      assert.equal(65507, c:sendto(big, HOST, port))
      local data = s:receive()
      assert.equal(65507, #data)
      assert.equal(big, data)
      c:sendto(big, HOST, port)
      assert.same({big:sub(1, 100), "truncated", 65507}, {s:receive(100)})
      if fam.name == "IPv4" then
        assert.same({nil, "message too long"},
          {c:sendto(big .. "!", HOST, port)})
      end
    end)

    it("a connected socket reports a closed port as 'connection refused'",
      function()
      local port = closed_port(HOST)
      local c <close> = assert(udp.connect(HOST, port))
      c:settimeout(2)
      assert.equal(7, c:send("anyone?"))
      assert.same({nil, "connection refused"}, {c:receive()})
      -- an unconnected socket hears nothing back (no ICMP errors)
      local u <close> = udp[fam.new]()
      u:settimeout(0.05)
      assert.equal(7, u:sendto("anyone?", HOST, port))
      assert.same({nil, "timeout"}, {u:receivefrom()})
    end)
  end)
end

describe("udp names and Python-style calls", function()
  it("udp.bind, recvfrom, sendto with a host name (resolved by dns.c)",
    function()
    local s <close> = assert(udp.bind("localhost", 0))
    local ip, port = s:getsockname()
    assert.equal("127.0.0.1", ip)
    local c <close> = udp.udp()
    assert.equal(5, c:sendto("named", "localhost", port))
    assert.equal("named", (s:recvfrom(1024)))
    assert.same({nil, "host not found"},
      {c:sendto("x", "no-such-host.invalid", port)})
    assert.equal(1, c:connect("localhost", port))
    assert.equal(2, c:send("hi"))
    assert.equal("hi", s:recv(10))
  end)

  it("LuaSocket's socket.udp, udp4, udp6 and select's dirty() hook",
    function()
    assert.equal(udp.udp, socket.udp)
    local s <close> = assert(socket.udp4())
    assert.matches("^udp{unconnected}", tostring(s))
    assert.equal("inet6", socket.udp6():getfamily())
    assert.equal(1, s:setsockname("127.0.0.1", 0))
    local _, port = s:getsockname()
    assert.is_false(s:dirty())
    local r, _, err = socket.select({s}, nil, 0)
    assert.same({}, r)
    assert.equal("timeout", err)
    local c <close> = udp.udp4()
    c:sendto("poll me", "127.0.0.1", port)
    assert.is_true(s:dirty())                 -- seen in the kernel
    r = socket.select({s}, nil, 0)
    assert.equal(s, r[1])
    assert.equal("poll me", s:receive())
  end)

  it("socket.select wakes on a datagram, with TCP sockets in the list too",
     function()
    local a <close> = assert(udp.bind("127.0.0.1", 0))
    local b <close> = assert(udp.bind("127.0.0.1", 0))
    local srv <close> = assert(socket.bind("127.0.0.1", 0))
    local _, pb = b:getsockname()
    local c <close> = udp.udp4()
    spawn(function()
      sleep(0.1)
      c:sendto("to b", "127.0.0.1", pb)
    end)
    local dt, r, w, err = elapsed(function()
      return socket.select({a, srv, b}, nil, 5)
    end)
    assert.is_nil(err)
    assert.is_true(dt >= 0.05 and dt < 2, "select took " .. dt .. " s")
    assert.equal(1, #r)
    assert.equal(b, r[1])
    assert.equal(1, r[b])
    assert.same({}, w)
    assert.equal("to b", b:receive())
    -- UDP sockets are always writable; nothing to read is a timeout
    r, w = socket.select(nil, {a}, 5)
    assert.same({a, [a] = 1}, w)
    dt, r, w, err = elapsed(function() return socket.select({a, b}, nil, 0.2) end)
    assert.equal("timeout", err)
    assert.is_true(dt >= 0.15 and dt < 2)
  end)

  it("a UDP select loop serves two sockets (LuaSocket's pattern)", function()
    local s1 <close> = assert(socket.udp4())
    local s2 <close> = assert(socket.udp4())
    assert(s1:setsockname("127.0.0.1", 0))
    assert(s2:setsockname("127.0.0.1", 0))
    local _, p1 = s1:getsockname()
    local _, p2 = s2:getsockname()
    local got = {}
    local server = spawn(function()
      while #got < 4 do
        local ready, _, err = socket.select({s1, s2}, nil, 5)
        if err then error(err) end
        for _, s in ipairs(ready) do
          local data, ip, port = s:receivefrom()
          got[#got + 1] = data
          s:sendto("echo " .. data, ip, port)
        end
      end
    end)
    local c <close> = udp.udp4()
    c:settimeout(5)
    for i, port in ipairs{p1, p2, p2, p1} do
      c:sendto("m" .. i, "127.0.0.1", port)
      assert.equal("echo m" .. i, c:receive())
    end
    server:join()
    assert.same({"m1", "m2", "m3", "m4"}, got)
  end)

  it("closing a UDP socket wakes a select on it, which goes on waiting",
     function()
    local a = assert(udp.bind("127.0.0.1", 0))
    local b <close> = assert(udp.bind("127.0.0.1", 0))
    local _, pb = b:getsockname()
    spawn(function()
      sleep(0.05)
      a:close()
      sleep(0.05)
      udp.udp4():sendto("late", "127.0.0.1", pb)
    end)
    local dt, r, _, err = elapsed(function()
      return socket.select({a, b}, nil, 5)
    end)
    assert.is_nil(err)
    assert.is_true(dt < 2)
    assert.same({b, [b] = 1}, r)
  end)

  it("udp.connect fails with nil, err and leaves nothing open", function()
    assert.same({nil, "host not found"},
      {udp.connect("no-such-host.invalid", 9)})
  end)

  it("udp() takes its family from the first address", function()
    local s6 <close> = udp.udp()
    assert.equal("unspec", s6:getfamily())
    assert.equal(1, s6:setsockname("::1", 0))
    assert.equal("inet6", s6:getfamily())
    local s4 <close> = udp.udp()
    assert.equal(1, s4:setsockname("127.0.0.1", 0))
    assert.equal("inet", s4:getfamily())
    assert.equal(-1, udp.udp():getfd())
    assert.is_true(udp.udp4():getfd() >= 0)
  end)

  it("argument errors raise with the argument named", function()
    local s <close> = udp.udp4()
    assert.has_error(function() s:sendto("x", "127.0.0.1", 70000) end,
      "bad argument #3 to 'sendto' (invalid port)")
    assert.has_error(function() s.receive(nil) end)
    assert.has_error(function() s:receive(-1) end,
      "bad argument #1 to 'receive' (size must not be negative)")
    assert.has_error(function() s:setoption("no-such-option", 1) end,
      "bad argument #1 to 'setoption' (unsupported option 'no-such-option')")
    assert.has_error(function() udp.new("ipx") end)
  end)
end)

describe("unix datagram sockets", function()
  local function tmp_path()
    local p = os.tmpname()
    os.remove(p)
    return p
  end

  it("bind, sendto, receivefrom by path; replies; unnamed senders",
     function()
    local p1, p2 = tmp_path(), tmp_path()
    local s <close> = assert(udp.bind("unix:" .. p1))
    assert.same({p1, nil, "unix"}, {s:getsockname()})
    assert.equal("unix", s:getfamily())
    local anon <close> = udp.udp()
    assert.equal(5, anon:sendto("hello", "unix:" .. p1))
    assert.same({"hello", "", nil}, {s:receivefrom()})   -- unnamed sender
    local named <close> = assert(udp.bind("unix:" .. p2))
    assert(named:sendto("from p2", p1))        -- a Unix socket: plain paths
    local data, from = s:receivefrom()
    assert.equal("from p2", data)
    assert.equal(p2, from)
    assert.equal(5, s:sendto("reply", from))
    assert.equal("reply", named:receive())
    -- datagrams keep their bounds, and truncation is said
    assert(named:sendto(("x"):rep(100), p1))
    assert.same({("x"):rep(10), p2, nil, "truncated", 100},
      {s:receivefrom(10)})
    os.remove(p1); os.remove(p2)
  end)

  it("connected mode, select and iteration", function()
    local p = tmp_path()
    local s <close> = assert(udp.bind("unix:" .. p))
    local c <close> = assert(udp.connect("unix:" .. p))
    assert.same({p, nil, "unix"}, {c:getpeername()})
    assert.equal(4, c:send("ping"))
    assert.equal("ping", s:receive())
    spawn(function() sleep(0.05); c:send("late") end)
    local r, _, err = socket.select({s}, nil, 5)
    assert.is_nil(err)
    assert.equal(s, r[1])
    assert.equal("late", s:receive())
    for i = 1, 3 do c:send("d" .. i) end
    s:settimeout(0.1)
    local got = {}
    for d in s:datagrams() do got[#got + 1] = d end
    assert.same({"d1", "d2", "d3"}, got)
    assert.equal(1, c:setpeername("*"))
    assert.same({nil, "not connected"}, {c:getpeername()})
    assert.same({nil, "destination address required"}, {c:send("x")})
    os.remove(p)
  end)

  it("says clearly what went wrong", function()
    local p = tmp_path()
    assert.same({nil, "no such file or directory"},
      {udp.udp():sendto("x", "unix:" .. p)})
    assert.same({nil, "invalid argument"}, {udp.bind("unix:@abstract")})
    local ip <close> = assert(udp.bind("127.0.0.1", 0))
    assert.same({nil, "address family not supported"},
      {ip:sendto("x", "unix:" .. p)})
    local s <close> = assert(udp.bind("unix:" .. p))
    assert.same({nil, "address already in use"}, {udp.bind("unix:" .. p)})
    assert.same({nil, "invalid argument"}, {s:sendto("x", "")})
    os.remove(p)
  end)

  it("refuses names and paths with a NUL byte, which C would cut",
     function()
    local p = tmp_path()
    local inval = {nil, "invalid argument"}
    local r <close> = assert(udp.bind("127.0.0.1", 0))
    r:settimeout(0.2)
    local _, port = r:getsockname()
    local c <close> = udp.udp4()
    assert.same(inval, {c:sendto("x", "127.0.0.1\0.evil.com", port)})
    assert.same(inval, {c:sendto("x", "localhost\0.evil.com", port)})
    assert.same(inval, {c:setpeername("localhost\0.evil.com", port)})
    assert.same(inval, {c:setsockname("127.0.0.1\0x", 0)})
    assert.same(inval, {udp.bind("127.0.0.1\0x", 0)})
    assert.same(inval, {udp.connect("localhost\0x", port)})
    assert.same({nil, "timeout"}, {r:receivefrom()})   -- nothing was sent
    local s <close> = assert(udp.bind("unix:" .. p))
    assert.same(inval, {udp.udp():sendto("x", "unix:" .. p .. "\0junk")})
    assert.same(inval, {udp.bind("unix:" .. p .. ".x\0y")})
    assert.same(inval, {udp.connect("unix:" .. p .. "\0y")})
    assert.has_error(function() c:setoption("broadcast\0x", true) end)
    assert.has_error(function()
      c:setoption("ip-multicast-if", "127.0.0.1\0x")
    end)
    assert.has_error(function()
      c:setoption("ip-add-membership", {multiaddr = "239.1.2.3\0x",
        interface = "127.0.0.1"})
    end)
    assert.is_nil(io.open(p .. ".x"))
    os.remove(p)
  end)
end)

describe("udp sockets shared by tasks", function()
  it("readers are served in the order they started waiting", function()
    local s <close>, _, port = server("127.0.0.1")
    local got = {}
    local readers = {}
    for i = 1, 4 do
      readers[i] = spawn(function() got[i] = s:receive() end)
    end
    sleep(0)                                -- all four are parked now
    local c <close> = udp.udp4()
    for i = 1, 4 do c:sendto(tostring(i), "127.0.0.1", port) end
    for i = 1, 4 do readers[i]:join() end
    assert.same({"1", "2", "3", "4"}, got)
  end)

  -- Burst of datagrams, three readers looping on datagrams(); `work` runs
  -- after each datagram. Returns the count per reader.
  local function share(work)
    local s <close>, _, port = server("127.0.0.1")
    s:settimeout(0.5)
    local counts, total = {0, 0, 0}, 0
    local readers = {}
    for i = 1, 3 do
      readers[i] = spawn(function()
        for _ in s:datagrams() do
          counts[i] = counts[i] + 1
          total = total + 1
          work()
        end
      end)
    end
    sleep(0)
    local c <close> = udp.udp4()
    for burst = 1, 30 do
      for j = 1, 10 do
        c:sendto(("%d.%d"):format(burst, j), "127.0.0.1", port)
      end
      sleep(0.002)                          -- stay under the kernel buffer
    end
    for i = 1, 3 do readers[i]:join() end   -- each ends on its timeout
    assert.equal(300, total)
    return counts
  end

  it("a reader that never yields cannot take what others were promised",
    function()
    -- each burst wakes every parked reader with a datagram of its own;
    -- the first to run then takes the unpromised rest without yielding
    local counts = share(function() end)
    for i = 1, 3 do
      assert.is_true(counts[i] >= 20, ("reader %d got only %d of 300")
        :format(i, counts[i]))
    end
  end)

  it("readers that yield while working share a burst evenly", function()
    local counts = share(function() sleep(0) end)
    for i = 1, 3 do
      assert.is_true(counts[i] >= 80, ("reader %d got only %d of 300")
        :format(i, counts[i]))
    end
  end)

  it("many tasks send through one socket at once", function()
    local s <close>, _, port = server("127.0.0.1")
    local c <close> = udp.udp4()
    local senders = {}
    for i = 1, 10 do
      senders[i] = spawn(function()
        for j = 1, 20 do
          assert.equal(4, c:sendto(("%02d%02d"):format(i, j), "127.0.0.1",
            port))
          sleep(0)
        end
      end)
    end
    local seen, n = {}, 0
    s:settimeout(1)
    while n < 200 do
      local d = assert(s:receive())
      assert.is_nil(seen[d])
      seen[d] = true
      n = n + 1
    end
    for i = 1, 10 do senders[i]:join() end
  end)

  it("close() wakes every waiting task with nil, 'closed'", function()
    local s, _, port = server("127.0.0.1")
    local results, loop_ended = {}, false
    local readers = {}
    for i = 1, 3 do
      readers[i] = spawn(function() results[i] = {s:receivefrom()} end)
    end
    local looper = spawn(function()
      for _ in s:datagrams() do end
      loop_ended = true
    end)
    sleep(0)
    assert.equal(1, s:close())
    for i = 1, 3 do readers[i]:join() end
    looper:join()
    for i = 1, 3 do assert.same({nil, "closed"}, results[i]) end
    assert.is_true(loop_ended)
    assert.same({nil, "closed"}, {s:receive()})
    assert.same({nil, "closed"}, {s:sendto("x", "127.0.0.1", port)})
    assert.matches("^udp{closed}", tostring(s))
    assert.equal(1, s:close())              -- twice is fine
  end)

  it("a reader cancelled after being handed a datagram gives it back",
    function()
    local s <close>, _, port = server("127.0.0.1")
    local c <close> = udp.udp4()
    local victim = spawn(function() return s:receive() end)
    sleep(0)                                -- the victim parks
    c:sendto("first", "127.0.0.1", port)
    sleep(0)                                -- the loop hands it over
    assert.equal("ready", victim:status())  -- woken, not yet resumed
    victim:cancel()
    s:settimeout(1)
    assert.equal("first", s:receive())
  end)

  it("a cancelled or timed-out reader does not lose the next datagram",
    function()
    local s <close>, _, port = server("127.0.0.1")
    local c <close> = udp.udp4()
    local victim = spawn(function() return s:receive() end)
    sleep(0)
    victim:cancel()
    assert.same({nil, "timeout"},
      {task.timeout(0.02, function() return s:receive() end)})
    c:sendto("kept", "127.0.0.1", port)
    s:settimeout(1)
    assert.equal("kept", s:receive())
  end)
end)

describe("udp options", function()
  it("sets and reads the LuaSocket options", function()
    local s <close> = udp.udp4()
    assert.equal(1, s:setoption("broadcast", true))
    assert.is_true(s:getoption("broadcast"))
    assert.equal(1, s:setoption("broadcast", false))
    assert.is_false(s:getoption("broadcast"))
    assert.equal(1, s:setoption("dontroute", true))
    assert.is_true(s:getoption("dontroute"))
    assert.equal(1, s:setoption("reuseport", true))
    assert.is_true(s:getoption("reuseport"))
    assert.equal(1, s:setoption("ip-multicast-ttl", 3))
    assert.equal(3, s:getoption("ip-multicast-ttl"))
    assert.equal(1, s:setoption("ip-multicast-loop", false))
    assert.is_false(s:getoption("ip-multicast-loop"))
    assert.equal(1, s:setoption("ip-multicast-if", "127.0.0.1"))
    assert.equal("127.0.0.1", s:getoption("ip-multicast-if"))
    assert.equal(1, s:setoption("recv-buffer-size", 65536))
    assert.is_true(s:getoption("recv-buffer-size") >= 65536)
    assert.equal(1, s:setoption("send-buffer-size", 65536))
    assert.is_true(s:getoption("send-buffer-size") >= 65536)
    assert.is_nil(s:getoption("error"))
    assert.has_error(function() s:getoption("ip-add-membership") end)
    assert.has_error(function() s:setoption("error", 1) end)
    assert.has_error(function() s:setoption("ip-multicast-ttl", "x") end)
    local s6 <close> = udp.udp6()
    assert.is_true(s6:getoption("ipv6-v6only"))
    assert.equal(1, s6:setoption("ipv6-unicast-hops", 7))
    assert.equal(7, s6:getoption("ipv6-unicast-hops"))
    assert.equal(1, s6:setoption("ipv6-multicast-hops", 2))
    assert.equal(2, s6:getoption("ipv6-multicast-hops"))
    assert.equal(1, s6:setoption("ipv6-multicast-loop", true))
    assert.is_true(s6:getoption("ipv6-multicast-loop"))
    assert.equal(1, s6:setoption("ipv6-multicast-if", "lo"))
    assert.equal(1, s6:getoption("ipv6-multicast-if"))
  end)

  it("options set before udp() has a socket apply when it is made",
    function()
    local a <close>, _, port = server("127.0.0.1")
    assert.same({nil, "address already in use"},
      {udp.bind("127.0.0.1", port)})
    a:close()
    local s1 <close> = udp.udp()
    assert.equal(1, s1:setoption("reuseaddr", true))
    assert.is_true(s1:getoption("reuseaddr"))     -- remembered
    assert.equal(1, s1:setsockname("127.0.0.1", port))
    assert.is_true(s1:getoption("reuseaddr"))     -- and applied
    local s2 <close> = udp.udp()
    s2:setoption("reuseaddr", true)
    assert.equal(1, s2:setsockname("127.0.0.1", port))
  end)

  it("multicast over IPv4 loopback (when the kernel allows it)", function()
    local group = "239.255.42.99"
    local r <close> = udp.udp4()
    r:setoption("reuseaddr", true)
    assert.equal(1, r:setsockname(group, 0))
    local _, port = r:getsockname()
    local ok, err = r:setoption("ip-add-membership",
      {multiaddr = group, interface = "127.0.0.1"})
    if not ok then
      pending("kernel refuses IPv4 multicast on lo: " .. err)
      return
    end
    local s <close> = udp.udp4()
    assert.equal(1, s:setoption("ip-multicast-if", "127.0.0.1"))
    assert.equal(1, s:setoption("ip-multicast-loop", true))
    assert.equal(1, s:setoption("ip-multicast-ttl", 0))   -- this host only
    local n, serr = s:sendto("to the group", group, port)
    if not n then
      pending("kernel refuses IPv4 multicast sends on lo: " .. serr)
      return
    end
    r:settimeout(1)
    local data, rerr = r:receive()
    if not data then
      pending("IPv4 multicast not looped back on lo: " .. rerr)
      return
    end
    assert.equal("to the group", data)
    assert.equal(1, r:setoption("ip-drop-membership",
      {multiaddr = group, interface = "127.0.0.1"}))
  end)

  it("multicast over IPv6 loopback (when the kernel allows it)", function()
    local group = "ff15::4e:5348"
    local r <close> = udp.udp6()
    r:setoption("reuseaddr", true)
    local ok, err = r:setsockname(group, 0)
    if not ok then
      pending("cannot bind an IPv6 multicast address: " .. err)
      return
    end
    local _, port = r:getsockname()
    ok, err = r:setoption("ipv6-add-membership",
      {multiaddr = group, interface = "lo"})
    if not ok then
      pending("kernel refuses IPv6 multicast on lo: " .. err)
      return
    end
    local s <close> = udp.udp6()
    assert.equal(1, s:setoption("ipv6-multicast-if", "lo"))
    assert.equal(1, s:setoption("ipv6-multicast-loop", true))
    assert.equal(1, s:setoption("ipv6-multicast-hops", 0))
    local n, serr = s:sendto("to the v6 group", group, port)
    if not n then
      pending("kernel refuses IPv6 multicast sends on lo: " .. serr)
      return
    end
    r:settimeout(1)
    local data, rerr = r:receive()
    if not data then
      pending("IPv6 multicast not looped back on lo: " .. rerr)
      return
    end
    assert.equal("to the v6 group", data)
    assert.equal(1, r:setoption("ipv6-drop-membership",
      {multiaddr = group, interface = "lo"}))
  end)
end)

describe("udp object lifetime", function()
  -- fd number -> what it is ("socket:[inode]"...), from /proc
  local function fds()
    local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
    local p = io.popen("ls -l /proc/" .. pid .. "/fd")
    local t = {}
    for fd, what in p:read("a"):gmatch("(%d+) %-> ([^\n]+)") do
      t[tonumber(fd)] = what
    end
    p:close()
    return t
  end

  it("<close> closes the socket at the end of the scope", function()
    local keep
    do
      local s <close> = udp.udp4()
      keep = s
      assert.matches("^udp{unconnected}", tostring(s))
    end
    assert.matches("^udp{closed}", tostring(keep))
  end)

  it("the GC closes dropped sockets", function()
    local mine = {}
    for _ = 1, 20 do
      local s = udp.udp4()
      s:setsockname("127.0.0.1", 0)
      mine[#mine + 1] = s:getfd()
    end
    local open = fds()
    local inodes = {}
    for _, fd in ipairs(mine) do
      assert.matches("^socket:", open[fd])
      inodes[open[fd]] = true
    end
    collectgarbage()
    collectgarbage()
    for _, what in pairs(fds()) do
      assert.is_nil(inodes[what], what .. " is still open")
    end
  end)
end)

-- The examples and scripts, run as separate netsh processes. io.popen
-- blocks the whole loop while it reads, so whatever the child talks to
-- is another process, or a socket here that only needs the kernel.

local function udp_bound(port)
  local hex = (":%04X"):format(port)
  for _, f in ipairs{"/proc/net/udp", "/proc/net/udp6"} do
    local fh = io.open(f)
    if fh then
      local t = fh:read("a")
      fh:close()
      for la in t:gmatch("\n%s*%d+:%s+(%S+)") do
        if la:sub(-5) == hex then return true end
      end
    end
  end
  return false
end

local function wait_bound(port)
  for _ = 1, 250 do
    if udp_bound(port) then return true end
    sleep(0.02)
  end
  return false
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok and 0 or code, how
end

local function netsh(rest)
  return ("%q %s"):format(NETSH, rest)
end

describe("udp examples and scripts", function()
  it("examples/udp_server.lua and udp_client.lua talk on port 12345",
    function()
    local probe = udp.bind("127.0.0.1", 12345)
    if not probe then
      pending("port 12345 is in use here")
      return
    end
    probe:close()
    local srv = io.popen(netsh(("%q 2>&1"):format(SRC
      .. "/examples/udp_server.lua")))
    assert.is_true(wait_bound(12345), "udp_server.lua never bound 12345")
    local out, code = run("timeout 10 " .. netsh(("%q"):format(SRC
      .. "/examples/udp_client.lua")))
    assert.equal("Recu: Bonjour serveur\n", out)
    assert.equal(0, code)
    assert.equal("", srv:read("a"))
    assert.is_true(srv:close())
  end)

  it("scripts/udp_echo.lua echoes; scripts/udp_send.lua prints replies",
    function()
    local port = closed_port("127.0.0.1")
    local echo = io.popen(netsh(("%q -q -n 3 127.0.0.1 %d 2>&1"):format(
      SRC .. "/scripts/udp_echo.lua", port)))
    assert.is_true(wait_bound(port), "udp_echo.lua never bound")
    local c <close> = udp.udp4()
    c:settimeout(5)
    c:sendto("direct", "127.0.0.1", port)
    assert.equal("direct", c:receive())
    local send = SRC .. "/scripts/udp_send.lua"
    local out, code = run(netsh(("%q 127.0.0.1 %d 'as argument'")
      :format(send, port)))
    assert.same({"as argument", 0}, {out, code})
    out, code = run(("printf 'from\\nstdin' | %s"):format(
      netsh(("%q localhost %d"):format(send, port))))
    assert.same({"from\nstdin", 0}, {out, code})
    assert.equal("", echo:read("a"))          -- ends after 3 datagrams
    assert.is_true(echo:close())
  end)

  it("udp_echo and udp_send on a Unix datagram socket (unix:PATH)",
     function()
    local path = os.tmpname()
    os.remove(path)
    local echo = io.popen(netsh(("%q -n 2 unix:%s 2>&1"):format(
      SRC .. "/scripts/udp_echo.lua", path)))
    for _ = 1, 100 do
      if io.open(path) then break end
      sleep(0.02)
    end
    local send = SRC .. "/scripts/udp_send.lua"
    local out, code = run(netsh(("%q unix:%s 'over unix'"):format(send, path)))
    assert.same({"over unix", 0}, {out, code})
    out, code = run(netsh(("%q --no-reply unix:%s fire"):format(send, path)))
    assert.same({"", 0}, {out, code})
    assert.matches("listening on unix:" .. path:gsub("%p", "%%%0"),
      echo:read("a"))
    assert.is_true(echo:close())
    assert.is_nil(io.open(path))              -- it removed its socket file
    out, code = run(netsh(("%q -t 0.5 unix:%s x 2>&1"):format(send, path)))
    assert.equal(1, code)
    assert.matches("no such file or directory", out)
  end)

  it("udp_echo.lua --idle ends a quiet server; IPv6 works too", function()
    local port = closed_port("::1")
    local d = elapsed(function()
      local out, code = run(netsh(("%q -q --idle 0.2 ::1 %d"):format(
        SRC .. "/scripts/udp_echo.lua", port)))
      assert.same({"", 0}, {out, code})
    end)
    assert.is_true(d < 5)
  end)

  it("udp_send.lua exits 1 on timeout and on a refused port; --help",
    function()
    local send = SRC .. "/scripts/udp_send.lua"
    local silent <close>, _, port = server("127.0.0.1")
    local out, code = run(netsh(("%q -t 0.2 127.0.0.1 %d hello")
      :format(send, port)))
    assert.equal(1, code)
    assert.matches("no reply from 127.0.0.1:%d+: timeout", out)
    assert.equal("hello", silent:receive())   -- it did send
    out, code = run(netsh(("%q -t 2 ::1 %d hello")
      :format(send, closed_port("::1"))))
    assert.equal(1, code)
    assert.matches("%[::1%]:%d+: connection refused", out)
    out, code = run(netsh(("%q --help"):format(send)))
    assert.equal(0, code)
    assert.matches("usage: udp_send", out)
    out, code = run(netsh(("%q onlyhost"):format(send)))
    assert.equal(2, code)
  end)
end)
