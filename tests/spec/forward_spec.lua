-- forward_spec.lua -- sock:forward(dst [, max]): receiveany + send
-- without a Lua string, on loopback pairs: the bytes arrive in order and
-- whole (echo and relay, small and big, with a peer that reads slowly),
-- max, the ends (closed source, closed destination), timeouts, polling,
-- a cancelled forward that must not take later bytes, bad arguments.
local socket = require "socket"

local function pair()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local p = assert(s:accept())
  s:close()
  return c, p
end

-- bytes 0..255 repeated, n of them
local function pattern(n)
  local t, chunk = {}, {}
  for i = 0, 255 do chunk[#chunk + 1] = string.char(i) end
  chunk = table.concat(chunk)
  for _ = 1, n // 256 + 1 do t[#t + 1] = chunk end
  return table.concat(t):sub(1, n)
end

describe("forward", function()
  it("echoes what comes, in order, whatever the size", function()
    local c, p = pair()
    local total = 0
    local echo = spawn(function()
      while true do
        local n, err, sent = p:forward(p)
        if not n then return err, sent end
        total = total + n
      end
    end)
    for _, size in ipairs({1, 100, 16384, 65536, 200000}) do
      local msg = pattern(size)
      local reader = spawn(function() return c:receive(size) end)
      assert.equal(size, c:send(msg))
      assert.is_true(msg == reader:join(), "echo of " .. size)
    end
    c:close()
    assert.same({"closed", nil}, {echo:join()})
    assert.equal(1 + 100 + 16384 + 65536 + 200000, total)
    p:close()
  end)

  it("relays to another socket, bytes counted on both", function()
    local a, pa = pair()           -- a -> pa
    local pb, b = pair()           -- pb -> b
    local relay = spawn(function()
      local n = 0
      while true do
        local k, err = pa:forward(pb)
        if not k then return n, err end
        n = n + k
      end
    end)
    local msg = pattern(1000000)
    local reader = spawn(function() return b:receive(#msg) end)
    assert.equal(#msg, a:send(msg))
    assert.is_true(msg == reader:join())
    a:close()
    assert.same({#msg, "closed"}, {relay:join()})
    local received = pa:getstats()
    local _, sent = pb:getstats()
    assert.equal(#msg, received)
    assert.equal(#msg, sent)
    pa:close(); pb:close(); b:close()
  end)

  it("waits for a destination that reads slowly", function()
    local c, p = pair()
    local q, r = pair()
    local msg = pattern(3000000)   -- more than the kernel buffers hold
    spawn(function() assert.equal(#msg, c:send(msg)) end)
    local relay = spawn(function()
      local n = 0
      while n < #msg do n = n + assert(p:forward(q)) end
      return n
    end)
    task.sleep(0.1)                -- the relay parks on the full q
    local got = {}
    local have = 0
    while have < #msg do
      local data = assert(r:receiveany(7000))
      got[#got + 1] = data
      have = have + #data
      if #got % 50 == 0 then task.sleep(0.001) end
    end
    assert.equal(#msg, relay:join())
    assert.is_true(msg == table.concat(got))
    c:close(); p:close(); q:close(); r:close()
  end)

  it("takes at most max bytes, and what is already buffered", function()
    local c, p = pair()
    local q, r = pair()
    c:send("hello")
    task.sleep(0.05)
    assert.equal("h", p:receive(1))     -- the rest waits in p's buffer
    assert.equal(3, p:forward(q, 3))
    assert.equal(1, p:forward(q))
    assert.equal("ello", r:receive(4))
    c:close(); p:close(); q:close(); r:close()
  end)

  -- A loop turn over more than 1024 ready sockets polls again before
  -- the woken tasks run, so a peer can answer within it. The bytes
  -- after a forward's max must wait in the kernel then, not in a buffer
  -- per connection (5000 echo clients held 16 KiB each that way).
  it("leaves what comes after its max in the kernel, in a long turn",
    function()
    local N = 1100
    local cs, ps, ts = {}, {}, {}
    local s = assert(socket.bind("127.0.0.1", 0, {backlog = N}))
    local _, port = s:getsockname()
    for i = 1, N do
      cs[i] = assert(socket.connect("127.0.0.1", port))
      ps[i] = assert(s:accept())
    end
    s:close()
    for i = 1, N do
      -- c echoes from the read callback itself (its forward is parked)
      spawn(function()
        while cs[i]:forward(cs[i]) do end
      end)
      ts[i] = spawn(function() return ps[i]:forward(ps[i], 1) end)
    end
    task.sleep(0.05)                    -- every forward parked
    for i = 1, N do cs[i]:send("x") end
    for i = 1, N do assert.equal(1, ts[i]:join()) end
    task.sleep(0.1)                     -- the echoes came back
    local buffered = 0
    for i = 1, N do
      local received = ps[i]:getstats()
      if received ~= 1 then buffered = buffered + 1 end
    end
    assert.equal(0, buffered)
    for i = 1, N do
      ps[i]:settimeout(1)
      assert.equal("x", ps[i]:receive(1))   -- the kernel kept it
      cs[i]:close(); ps[i]:close()
    end
  end)

  it("ends with nil, err: closed source, closed destination", function()
    local c, p = pair()
    local q, r = pair()
    c:close()
    assert.same({nil, "closed"}, {p:forward(q)})
    local c2, p2 = pair()
    q:close()
    c2:send("x")
    assert.same({nil, "closed", 0}, {p2:forward(q)})
    p:close(); c2:close(); p2:close(); r:close()
  end)

  it("times out as receive does, and polls with timeout 0", function()
    local c, p = pair()
    p:settimeout(0.05)
    local t0 = task.now()
    assert.same({nil, "timeout"}, {p:forward(p)})
    assert.is_true(task.now() - t0 >= 0.04)
    p:settimeout(0)
    assert.same({nil, "timeout"}, {p:forward(p)})
    c:send("abc")
    task.sleep(0.05)
    assert.equal(3, p:forward(p))       -- the plain path, polling
    c:settimeout(1)
    assert.equal("abc", c:receive(3))
    c:close(); p:close()
  end)

  it("a cancelled forward leaves later bytes to the next reader", function()
    local c, p = pair()
    local q, r = pair()
    local t = spawn(function() return p:forward(q) end)
    task.sleep(0.02)                    -- parked on p
    t:cancel()
    c:send("late")
    r:settimeout(0.1)
    assert.same({nil, "timeout", ""}, {r:receive(4)})
    p:settimeout(1)
    assert.equal("late", p:receive(4))
    c:close(); p:close(); q:close(); r:close()
  end)

  it("names a bad argument", function()
    local c, p = pair()
    assert.has_error(function() p:forward(nil) end,
      "bad argument #1 to 'forward_raw' (netsh.tcp expected, got nil)")
    assert.has_error(function() p:forward(c, 0) end,
      "bad argument #2 to 'forward_raw' (positive size expected)")
    local m = socket.tcp()
    assert.has_error(function() p:forward(m) end)
    m:close(); c:close(); p:close()
  end)
end)
