-- websocket_interop_spec.lua -- netsh's WebSocket client and server
-- against implementations nobody here wrote: Python's websockets
-- (python3-websockets) and Node's ws (node-ws), both directions: text,
-- binary, 1 MiB, fragmentation, compression on and off, ping/pong, the
-- close paths (either side closing, abrupt drop), wss with the test CA.
local websocket = require "websocket"
local peers = require "tests.spec.helpers.ws_peers"
local src = os.getenv("NETSH_SRC") or "."

local D, CA
local stops = {}
local function track(port, stop) stops[#stops + 1] = stop return port end

setup(function()
  D = os.tmpname()
  os.remove(D)
  assert(os.execute("sh " .. src .. "/tests/support/certs.sh " .. D
    .. " >/dev/null"))
  CA = D .. "/ca.pem"
end)

teardown(function()
  if D then os.execute("rm -rf " .. D) end
end)

after_each(function()
  for _, stop in ipairs(stops) do stop() end
  stops = {}
end)

local function random_bytes(n)
  local t = {}
  for i = 1, n // 8 do t[i] = string.pack("<i8", math.random(math.mininteger,
    math.maxinteger)) end
  return table.concat(t)
end

-- The netsh server side: echoes; "close-me" closes with 4001; "ping-me"
-- pings the peer and answers "pinged" once its pong was read.
local function netsh_echo(seen)
  return function(req)
    local ws, err = req:websocket()
    if not ws then seen.err = err return end
    seen.extensions = ws.extensions
    while true do
      local m, kind, code, reason = ws:receive(10)
      if not m then
        seen.code, seen.reason = code, reason
        return
      end
      if m == "close-me" then
        ws:close(4001, "server bye")
      elseif m == "ping-me" then
        ws:ping("p")
        local before = ws.last_pong
        while ws.last_pong == before do
          local _, e = ws:receive(0.05)
          if e ~= "timeout" then break end
        end
        ws:send(ws.pong_data == "p" and "pinged" or "no pong")
      else
        ws:send(m, kind)
      end
    end
  end
end

local function client_steps(base, opts, compress)
  local ws = assert(websocket.connect(base .. "/echo", opts))
  if compress then
    assert.matches("^permessage%-deflate", ws.extensions)
  else
    assert.is_nil(ws.extensions)
  end
  assert(ws:send("hello"))
  assert.same({"hello", "text"}, {ws:receive(5)})
  assert(ws:send("héllo wörld ✓"))
  assert.same({"héllo wörld ✓", "text"}, {ws:receive(5)})
  local bin = string.char(0, 1, 2, 255, 254, 0)
  assert(ws:send(bin, "binary"))
  assert.same({bin, "binary"}, {ws:receive(5)})
  local big = random_bytes(1 << 20)
  assert(ws:send(big, "binary"))
  local got, kind = ws:receive(10)
  assert.equal("binary", kind)
  assert.is_true(got == big, "1 MiB echoed")
  local text = string.rep("x", 1 << 20)       -- compressible text
  assert(ws:send(text))
  got = ws:receive(10)
  assert.is_true(got == text, "1 MiB of text echoed")
  assert(ws:send({"frag", "men", "ted"}))     -- fragments we send
  assert.same({"fragmented", "text"}, {ws:receive(5)})
  assert(ws:ping("x"))
  assert.same({nil, "timeout"}, {ws:receive(0.3)})
  assert.equal("x", ws.pong_data)
  assert.is_true(ws:close(4000, "done"))
  assert.equal(4000, ws.close_code)
  assert.equal("done", ws.close_reason)
  assert.same({nil, "closed", 4000, "done"}, {ws:receive(1)})
  assert.same({nil, "closed"}, {ws:send("late")})

  ws = assert(websocket.connect(base .. "/frag", opts))  -- peer fragments
  assert(ws:send("abcdefghijkl"))
  assert.same({"abcdefghijkl", "text"}, {ws:receive(5)})
  local b = random_bytes(300000)
  assert(ws:send(b, "binary"))
  assert.is_true(ws:receive(5) == b)
  ws:close()

  ws = assert(websocket.connect(base .. "/close", opts))  -- peer closes
  assert(ws:send("close 4002 bye now"))
  assert.same({nil, "closed", 4002, "bye now"}, {ws:receive(5)})

  ws = assert(websocket.connect(base .. "/ping", opts))   -- peer pings
  assert.same({"pong 1", "text"}, {ws:receive(5)})
  ws:close()

  ws = assert(websocket.connect(base .. "/drop", opts))   -- peer drops
  assert(ws:send("x"))
  assert.same({nil, "closed", 1006, ""}, {ws:receive(5)})
end

local function check_lines(out, seen)
  for _, name in ipairs({"text", "binary", "1MiB", "fragmented", "ping",
      "server-ping", "client-close", "server-close"}) do
    assert.matches("\nok " .. name:gsub("%-", "%%-") .. "\n", "\n" .. out)
  end
  assert.not_matches("FAIL", out)
  assert.equal(4001, seen.code)     -- the last connection: we closed
end

for _, kind in ipairs({"python", "node"}) do
  local name = kind == "python" and "Python websockets" or "Node ws"
  describe(name, function()
    if not peers.available(kind) then
      it("is installed (" .. (kind == "python" and "python3-websockets"
        or "node-ws") .. ")", function() error(name .. " missing") end)
      return
    end

    for _, compress in ipairs({true, false}) do
      local mode = compress and "compression on" or "compression off"
      it("serves netsh's client: " .. mode, function()
        local port = track(peers.server(kind,
          compress and "" or "--no-compress"))
        client_steps("ws://127.0.0.1:" .. port, {}, compress)
        -- and the client declining compression against a server that has it
        if compress then
          local ws = assert(websocket.connect("ws://127.0.0.1:" .. port
            .. "/echo", {compress = false}))
          assert.is_nil(ws.extensions)
          assert(ws:send("plain"))
          assert.same({"plain", "text"}, {ws:receive(5)})
          ws:close()
        end
      end)

      it("is served by netsh's server: " .. mode, function()
        local seen = {}
        local port = track(peers.serve(netsh_echo(seen)))
        local out = peers.client(kind, "ws://127.0.0.1:" .. port .. "/",
          compress and "" or "--no-compress")
        check_lines(out, seen)
        if compress then
          assert.matches("^permessage%-deflate", seen.extensions)
          assert.matches("extensions permessage%-deflate", out)
        else
          assert.is_nil(seen.extensions)
        end
      end)
    end

    it("serves netsh's client over wss with the test CA", function()
      local port = track(peers.server(kind, "--tls " .. D .. "/server.pem "
        .. D .. "/server.key"))
      local ws = assert(websocket.connect("wss://localhost:" .. port
        .. "/echo", {tls = {cafile = CA}}))
      assert(ws:send("secure"))
      assert.same({"secure", "text"}, {ws:receive(5)})
      ws:close(1000)
      assert.equal(1000, ws.close_code)
      -- without the CA the certificate is refused
      local ws2, err = websocket.connect("wss://localhost:" .. port .. "/")
      assert.is_nil(ws2)
      assert.matches("certificate verify failed", err)
    end)

    it("is served by netsh's server over wss", function()
      local seen = {}
      local port = track(peers.serve(netsh_echo(seen), {tls = {
        certfile = D .. "/server.pem", keyfile = D .. "/server.key"}}))
      local out = peers.client(kind, "wss://localhost:" .. port .. "/",
        "--cafile " .. CA)
      check_lines(out, seen)
    end)
  end)
end
