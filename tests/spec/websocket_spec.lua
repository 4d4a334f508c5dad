-- websocket_spec.lua -- the WebSocket module against hand-made peers:
-- the C codec, handshakes that go wrong, every invalid frame RFC 6455
-- names, invalid UTF-8, disconnects mid-message, compression bombs,
-- timeouts and keepalive, Unix sockets, concurrent senders, misuse.
-- (Interoperability with other implementations: websocket_interop_spec.)
local websocket = require "websocket"
local core = require "websocket.core"
local peers = require "tests.spec.helpers.ws_peers"

-- A raw server: accepts one connection, reads the request head and runs
-- script(c, head, key) in a task. -> port, srv
local function raw_server(script)
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  spawn(function()
    local c = srv:accept()
    srv:close()
    if not c then return end
    c:settimeout(5)
    local head = {}
    while true do
      local l = c:receive("*l")
      if not l or l == "" then break end
      head[#head + 1] = l
    end
    local key = table.concat(head, "\n"):match(
      "[Ss]ec%-[Ww]eb[Ss]ocket%-[Kk]ey: (%S+)")
    script(c, head, key)
    c:close()
  end)
  return port
end

local function accept_101(c, key, extra)
  c:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    .. "Connection: Upgrade\r\nSec-WebSocket-Accept: "
    .. core.accept_key(key) .. "\r\n" .. (extra or "") .. "\r\n")
end

-- Reads one frame from the client side (masked). -> op, payload
local function read_frame(c, flags)
  local buf = ""
  while true do
    local op, fin, rsv1, payload = core.parse(buf, 1, flags or 1, 0)
    if op then return op, payload end
    if op == false then return false, fin end
    local d = c:receiveany(65536)
    if not d then return nil end
    buf = buf .. d
  end
end

-- The client gets bytes from a server after a good handshake; returns
-- what receive() gives and the close frame the server got back.
local function client_gets(bytes, extra_head, opts)
  local got = {}
  local port = raw_server(function(c, head, key)
    accept_101(c, key, extra_head)
    c:send(bytes)
    got.op, got.payload = read_frame(c)
    got.done = true
  end)
  local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
    opts))
  local r = {ws:receive(5)}
  while not got.done do sleep(0.01) end
  if got.op == 8 and #got.payload >= 2 then
    got.code = string.unpack(">I2", got.payload)
  end
  return r, got
end

-- A server frame (unmasked) with explicit header bits.
local function frame(b0, payload, masked)
  local n = #payload
  local h
  if n < 126 then h = string.char(b0, n | (masked and 0x80 or 0))
  else h = string.char(b0, 126 | (masked and 0x80 or 0))
    .. string.pack(">I2", n) end
  if masked then
    local key = "\1\2\3\4"
    return h .. key .. core.mask(payload, key)
  end
  return h .. payload
end

describe("websocket.core", function()
  it("computes RFC 6455's example accept key", function()
    assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      core.accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
  end)

  it("builds and parses frames of every length class, masked or not",
    function()
    for _, n in ipairs({0, 1, 125, 126, 65535, 65536, 100000}) do
      local data = string.rep("a", n)
      for _, masked in ipairs({false, true}) do
        local f = core.frame(2, data, true, false, masked)
        local op, fin, rsv1, payload, nextpos =
          core.parse(f, 1, masked and 1 or 0, 0)
        assert.equal(2, op)
        assert.is_true(fin)
        assert.is_false(rsv1)
        assert.is_true(payload == data)
        assert.equal(#f + 1, nextpos)
        -- one byte short: how many bytes are needed in all
        assert.same({nil, #f}, {core.parse(f:sub(1, -2), 1,
          masked and 1 or 0, 0)})
      end
    end
  end)

  it("masks reversibly and with a fresh key each frame", function()
    local s = "The quick brown fox jumps over the lazy dog"
    assert.equal(s, core.mask(core.mask(s, "abcd"), "abcd"))
    assert.not_equal(core.frame(1, s, true, false, true),
      core.frame(1, s, true, false, true))
  end)

  it("checks UTF-8 as RFC 3629 says", function()
    assert.is_true(core.utf8("héllo ✓ 😀"))
    assert.is_false(core.utf8("\xff"))
    assert.is_false(core.utf8("\xc0\xaf"))            -- overlong
    assert.is_false(core.utf8("\xed\xa0\x80"))        -- surrogate
    assert.is_false(core.utf8("\xf4\x90\x80\x80"))    -- past U+10FFFF
    assert.is_false(core.utf8("\xe2\x9c"))            -- cut
    assert.same({true, 2}, {core.utf8("a\xe2\x9c", true)})
  end)

  it("refuses the frames a single frame can get wrong", function()
    local cases = {
      {frame(0x81 | 0x20, "x"), 0, "reserved bits set"},
      {frame(0x81 | 0x40, "x"), 0, "reserved bits set"},  -- no deflate
      {frame(0x83, "x"), 0, "unknown opcode"},
      {frame(0x8b, "x"), 0, "unknown opcode"},
      {frame(0x81, "x", true), 0, "masked server frame"},
      {frame(0x81, "x"), 1, "unmasked client frame"},
      {frame(0x89, string.rep("p", 126)), 0, "control frame over 125 bytes"},
      {frame(0x09, "p"), 0, "fragmented control frame"},
      {"\x82\x7e\x00\x05hello", 0, "non-minimal length"},
      {"\x82\x7f\x80\0\0\0\0\0\0\0", 0, "length over 2^63"},
    }
    for _, c in ipairs(cases) do
      assert.same({false, 1002, c[3]}, {core.parse(c[1], 1, c[2], 0)})
    end
    assert.same({false, 1009, "message too big"},
      {core.parse(frame(0x82, string.rep("b", 200)), 1, 0, 100)})
  end)
end)

describe("websocket handshake failures", function()
  local function server_says(response)
    return raw_server(function(c) c:send(response) end)
  end

  it("refuses a wrong Sec-WebSocket-Accept", function()
    local port = server_says("HTTP/1.1 101 Switching Protocols\r\n"
      .. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
      .. "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    assert.same({nil, "handshake: wrong Sec-WebSocket-Accept"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
  end)

  it("refuses a response without Upgrade or Connection", function()
    local port = raw_server(function(c, _, key)
      c:send("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        .. "Sec-WebSocket-Accept: " .. core.accept_key(key) .. "\r\n\r\n")
    end)
    assert.same({nil, "handshake: no 'Upgrade: websocket'"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
    port = raw_server(function(c, _, key)
      c:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        .. "Sec-WebSocket-Accept: " .. core.accept_key(key) .. "\r\n\r\n")
    end)
    assert.same({nil, "handshake: no 'Connection: Upgrade'"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
  end)

  it("reports a plain HTTP answer and a non-HTTP one", function()
    local port = server_says("HTTP/1.1 404 Not Found\r\n"
      .. "Content-Length: 0\r\n\r\n")
    assert.same({nil, "handshake: status 404 Not Found"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
    port = server_says("SSH-2.0-OpenSSH\r\n\r\n")
    assert.same({nil, "handshake: not an HTTP response"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
  end)

  it("refuses extensions and subprotocols it did not offer", function()
    local port = raw_server(function(c, _, key)
      accept_101(c, key, "Sec-WebSocket-Extensions: x-webkit-deflate\r\n")
    end)
    assert.same({nil, "handshake: extension not offered: x-webkit-deflate"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
    port = raw_server(function(c, _, key)
      accept_101(c, key, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    end)
    assert.same({nil, "handshake: extension not offered: permessage-deflate"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/",
        {compress = false})})
    port = raw_server(function(c, _, key)
      accept_101(c, key, "Sec-WebSocket-Protocol: chat\r\n")
    end)
    assert.same({nil, "handshake: subprotocol not offered: chat"},
      {websocket.connect("ws://127.0.0.1:" .. port .. "/")})
  end)

  it("sends the request RFC 6455 asks for, with protocols and headers",
    function()
    local seen
    local port = raw_server(function(c, head, key)
      seen = head
      accept_101(c, key, "Sec-WebSocket-Protocol: v2\r\n")
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port
      .. "/p?q=1", {protocols = {"v1", "v2"}, headers = {["X-A"] = "b"}}))
    assert.equal("v2", ws.protocol)
    assert.equal("websocket", ws.headers.upgrade)
    local text = table.concat(seen, "\n")
    assert.equal("GET /p?q=1 HTTP/1.1", seen[1])
    assert.matches("\nHost: 127.0.0.1:" .. port, text)
    assert.matches("\nSec%-WebSocket%-Version: 13", text)
    assert.matches("\nSec%-WebSocket%-Protocol: v1, v2", text)
    assert.matches("\nSec%-WebSocket%-Extensions: permessage%-deflate", text)
    assert.matches("\nX%-A: b", text)
    ws:close()
  end)

  it("bounds the handshake: timeout, refused", function()
    local port = raw_server(function() sleep(2) end)
    local t0 = task.now()
    assert.same({nil, "timeout"}, {websocket.connect("ws://127.0.0.1:"
      .. port .. "/", {timeout = 0.2})})
    assert.is_true(task.now() - t0 < 1)
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, closed = s:getsockname()
    s:close()
    assert.same({nil, "connection refused"},
      {websocket.connect("ws://127.0.0.1:" .. closed .. "/")})
  end)

  it("answers bad upgrade requests with 400/426 on the server", function()
    local errs = {}
    local port, stop = peers.serve(function(req)
      local ws, err = req:websocket()
      errs[#errs + 1] = err
      assert.is_nil(ws)
    end)
    local function ask(req)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(5)
      c:send(req)
      local status = c:receive("*l")
      local rest = c:receive("*a")
      c:close()
      return status, rest
    end
    local key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    local s, rest = ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal("HTTP/1.1 426 Upgrade Required", s)
    assert.matches("Upgrade: websocket", rest)
    s = ask("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n" .. key
      .. "\r\n")
    assert.equal("HTTP/1.1 426 Upgrade Required", s)
    s = ask("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert.equal("HTTP/1.1 400 Bad Request", s)
    s = ask("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" .. key
      .. "Content-Length: 0\r\n\r\n")
    assert.equal("HTTP/1.1 400 Bad Request", s)
    stop()
    assert.same({"websocket: no 'Upgrade: websocket'",
      "websocket: version 13 expected", "websocket: bad Sec-WebSocket-Key",
      "websocket: GET expected"}, errs)
  end)
end)

describe("websocket invalid frames", function()
  local cases = {
    {"reserved bits", frame(0x81 | 0x10, "x"), 1002, "reserved bits set"},
    {"RSV1 without deflate", frame(0xc1, "x"), 1002, "reserved bits set"},
    {"a bad opcode", frame(0x85, "x"), 1002, "unknown opcode"},
    {"a masked server frame", frame(0x81, "x", true), 1002,
      "masked server frame"},
    {"a control frame over 125 bytes", frame(0x89, string.rep("p", 126)),
      1002, "control frame over 125 bytes"},
    {"a fragmented control frame", frame(0x09, "p"), 1002,
      "fragmented control frame"},
    {"a continuation with nothing to continue", frame(0x80, "x"), 1002,
      "unexpected continuation frame"},
    {"a new message inside a fragmented one",
      frame(0x01, "a") .. frame(0x81, "b"), 1002,
      "expected a continuation frame"},
    {"invalid UTF-8", frame(0x81, "ok \xff"), 1007, "invalid UTF-8"},
    {"invalid UTF-8 across fragments (cut sequence)",
      frame(0x01, "a\xe2") .. frame(0x80, "\x9c"), 1007, "invalid UTF-8"},
    {"a close code nobody may send", frame(0x88, string.pack(">I2", 1005)),
      1002, "invalid close code"},
    {"a one-byte close frame", frame(0x88, "\3"), 1002,
      "invalid close frame"},
  }
  for _, c in ipairs(cases) do
    it("closes with " .. c[3] .. " on " .. c[1], function()
      local r, got = client_gets(c[2])
      assert.same({nil, "closed", c[3], c[4]}, r)
      assert.equal(8, got.op)           -- the peer got our close frame
      assert.equal(c[3], got.code)
    end)
  end

  it("gives 1005 for a close frame without a code, and echoes none",
    function()
    local r, got = client_gets(frame(0x88, ""))
    assert.same({nil, "closed", 1005, ""}, r)
    assert.same({8, ""}, {got.op, got.payload})
  end)

  it("reassembles valid UTF-8 split across fragments", function()
    local r = client_gets(frame(0x01, "a\xe2") .. frame(0x89, "p")
      .. frame(0x80, "\x9c\x93"))
    assert.same({"a✓", "text"}, r)
  end)

  it("closes with 1009 on a message over max_message", function()
    local r, got = client_gets(frame(0x82, string.rep("b", 2000)), nil,
      {max_message = 1000})
    assert.same({nil, "closed", 1009, "message too big"}, r)
    assert.equal(1009, got.code)
    r = client_gets(frame(0x02, string.rep("b", 600))
      .. frame(0x80, string.rep("b", 600)), nil, {max_message = 1000})
    assert.same({nil, "closed", 1009, "message too big"}, r)
  end)

  it("gives 1006 when the peer drops the connection mid-message", function()
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      c:send(frame(0x82, string.rep("z", 1000)):sub(1, 500))
      sleep(0.05)
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    assert.same({nil, "closed", 1006, ""}, {ws:receive(5)})
    assert.same({nil, "closed"}, {ws:send("x")})
  end)

  it("stops a compression bomb by the ratio rule and by max_message",
    function()
    local z = require("websocket.deflate").new("deflate", 15)
    local bomb = z:compress(string.rep("\0", 50 * 1024 * 1024))
    assert.is_true(#bomb < 100000)
    local ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    local r, got = client_gets(frame(0xc2, bomb), ext)
    assert.same({nil, "closed", 1009, "compression ratio over 100"}, r)
    assert.equal(1009, got.code)
    z = require("websocket.deflate").new("deflate", 15)
    local big = z:compress(string.rep("a", 5000))
    r = client_gets(frame(0xc1, big), ext, {max_message = 4096})
    assert.same({nil, "closed", 1009, "message too big"}, r)
    -- with the ratio rule off, max_message still holds
    z = require("websocket.deflate").new("deflate", 15)
    bomb = z:compress(string.rep("\0", 20 * 1024 * 1024))
    r = client_gets(frame(0xc2, bomb), ext,
      {max_ratio = false, max_message = 8 * 1024 * 1024})
    assert.same({nil, "closed", 1009, "message too big"}, r)
  end)

  it("closes with 1007 on data that does not inflate", function()
    local r = client_gets(frame(0xc2, "\xff\xff\xff\xff"),
      "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert.same({nil, "closed", 1007, "invalid compressed data"}, r)
  end)

  it("the server closes with 1002 on an unmasked client frame", function()
    local seen = {}
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      seen = {ws:receive(5)}
    end)
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(5)
    c:send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    local status = c:receive("*l")
    assert.equal("HTTP/1.1 101 Switching Protocols", status)
    repeat local l = c:receive("*l") until l == ""
    c:send(frame(0x81, "not masked"))
    local op, payload = read_frame(c, 0)
    assert.equal(8, op)
    assert.equal(1002, string.unpack(">I2", payload))
    c:close()
    while #seen == 0 do sleep(0.01) end
    stop()
    assert.same({nil, "closed", 1002, "unmasked client frame"}, seen)
  end)
end)

describe("websocket waits", function()
  it("receive(timeout) times out and loses nothing", function()
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      sleep(0.2)
      c:send(frame(0x81, "late"))
      read_frame(c)
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    assert.same({nil, "timeout"}, {ws:receive(0.05)})
    assert.same({"late", "text"}, {ws:receive(5)})
    ws:close()
  end)

  it("task.timeout around receive leaves the connection usable", function()
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      sleep(0.3)
      c:send(frame(0x81, "late"))
      read_frame(c)
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    assert.same({nil, "timeout"},
      {task.timeout(0.05, function() return ws:receive() end)})
    assert.same({"late", "text"}, {ws:receive(5)})
    ws:close()
  end)

  it("a send cut short by task.timeout drops the connection", function()
    -- the peer never reads, and stays until the checks are done: had it
    -- closed first (a slow, loaded run), the send would end "closed"
    local done = false
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      for _ = 1, 400 do
        if done then break end
        sleep(0.05)
      end
    end)
    local big = string.rep("x", 32 * 1024 * 1024)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
      {compress = false}))
    assert.same({nil, "timeout"}, {task.timeout(0.2, function()
      return ws:send(big, "binary") end)})
    assert.same({nil, "closed"}, {ws:send("x")})
    assert.same({nil, "closed", 1006, ""}, {ws:receive(1)})
    done = true
  end)

  it("answers pings by itself while receiving", function()
    local pong
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      c:send(frame(0x89, "are you there"))
      local op, payload = read_frame(c)
      pong = {op, payload}
      c:send(frame(0x81, "done"))
      read_frame(c)
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    assert.same({"done", "text"}, {ws:receive(5)})
    assert.same({10, "are you there"}, pong)
    ws:close()
  end)

  it("detects a peer that stops answering pings (ping_interval)", function()
    local pings = 0
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      while true do
        local op = read_frame(c)
        if op == 9 then pings = pings + 1 else break end
      end
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
      {ping_interval = 0.1, ping_timeout = 0.1}))
    local t0 = task.now()
    assert.same({nil, "closed", 1011, "keepalive ping timeout"},
      {ws:receive()})
    assert.is_true(task.now() - t0 < 1)
    assert.equal(1, pings)
  end)

  it("keeps a live peer with ping_interval", function()
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      for m in ws:messages() do ws:send(m) end
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
      {ping_interval = 0.05, ping_timeout = 0.5}))
    assert.same({nil, "timeout"}, {ws:receive(0.3)})
    assert.is_true(ws.last_pong ~= nil)
    assert(ws:send("still here"))
    assert.same({"still here", "text"}, {ws:receive(5)})
    ws:close()
    stop()
  end)

  it("close() ends the handshake by itself when the peer is silent",
    function()
    local port = raw_server(function(c, _, key)
      accept_101(c, key)
      sleep(1)
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
      {close_timeout = 0.1}))
    local t0 = task.now()
    assert.is_true(ws:close(1001, "going"))
    assert.is_true(task.now() - t0 < 0.5)
    assert.same({nil, "closed", 1001, "going"}, {ws:receive()})
  end)

  it("close() from another task while one receives", function()
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      for m in ws:messages() do ws:send(m) end
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    local reader = spawn(function() return ws:receive() end)
    sleep(0.05)
    assert.same({nil, "busy"}, {ws:receive(0.01)})
    ws:close(1000, "bye")
    assert.same({nil, "closed", 1000, "bye"}, {reader:join(5)})
    stop()
  end)
end)

describe("websocket transports and concurrency", function()
  it("runs over a Unix socket", function()
    local path = os.tmpname()
    os.remove(path)
    local srv = assert(websocket.server{host = "unix:" .. path,
      handler = function(req)
        local ws = assert(req:websocket())
        for m, k in ws:messages() do ws:send(m, k) end
      end})
    local ws = assert(websocket.connect("ws://localhost/x", {unix = path}))
    assert(ws:send("over unix"))
    assert.same({"over unix", "text"}, {ws:receive(5)})
    ws:close()
    srv:close()
    os.remove(path)
  end)

  it("serialises sends from several tasks", function()
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      for m, k in ws:messages() do ws:send(m, k) end
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
      {compress = false}))
    local n = 0
    local senders = {}
    for t = 1, 3 do
      senders[t] = spawn(function()
        for i = 1, 10 do
          assert(ws:send(string.rep(string.char(64 + t), 100000 + i),
            "binary"))
        end
      end)
    end
    for _ = 1, 30 do
      local m = assert(ws:receive(5))
      assert.equal(string.rep(m:sub(1, 1), #m), m)
      n = n + 1
    end
    for _, s in ipairs(senders) do s:join() end
    assert.equal(30, n)
    ws:close()
    stop()
  end)

  it("negotiates permessage-deflate parameters", function()
    local seen
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      seen = ws.extensions
      for m, k in ws:messages() do ws:send(m, k) end
    end)
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(5)
    c:send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      .. "Sec-WebSocket-Extensions: permessage-deflate; x=1, "
      .. "permessage-deflate; server_no_context_takeover; "
      .. "server_max_window_bits=10\r\n\r\n")
    local head = c:receiveuntil("\r\n\r\n")()
    assert.matches("Sec%-WebSocket%-Extensions: permessage%-deflate", head)
    assert.matches("server_no_context_takeover", head)
    assert.matches("server_max_window_bits=10", head)
    c:close()
    sleep(0.05)
    stop()
    assert.matches("server_max_window_bits=10", seen)
  end)
end)

describe("websocket misuse", function()
  it("is a global in scripts, loaded on first use", function()
    assert.equal(websocket, _G.websocket)
  end)

  it("raises on programmer errors, naming the argument", function()
    assert.has_error(function() websocket.connect("http://x/") end,
      "bad argument #1 to 'connect' (ws:// or wss:// URL expected, got "
      .. "http://x/)")
    assert.has_error(function() websocket.connect(1) end,
      "bad argument #1 to 'connect' (string expected, got number)")
    local port, stop = peers.serve(function(req)
      local ws = assert(req:websocket())
      for m, k in ws:messages() do ws:send(m, k) end
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
    assert.has_error(function() ws:send("\xff") end,
      "bad argument #1 to 'send' (text is not UTF-8: send it as binary)")
    assert.has_error(function() ws:send("x", "json") end,
      "bad argument #2 to 'send' ('text' or 'binary' expected, got json)")
    assert.has_error(function() ws:send(true) end,
      "bad argument #1 to 'send' (string expected, got boolean)")
    assert.has_error(function() ws:close(999) end,
      "bad argument #1 to 'close' (close code expected, got 999)")
    assert.has_error(function() ws:ping(string.rep("p", 126)) end,
      "bad argument #1 to 'ping' (at most 125 bytes)")
    assert(ws:send("\xff", "binary"))
    assert.same({"\xff", "binary"}, {ws:receive(5)})
    ws:close()
    assert.is_true(ws:close())      -- twice is fine
    stop()
  end)
end)
