-- sendfile_spec.lua -- sock:sendfile(file [, offset [, count]]): a file
-- sent byte-exact over plain TCP (sendfile(2)), TLS and a Unix socket;
-- ranges; a slow reader (the kernel full: the queued fallback); the peer
-- closing mid-transfer (nil, "closed", sent; no fd leak); a file shorter
-- than asked (an error, no hang); http.server file responses (HEAD: no
-- body) and http_serve's big file and a Range of it.
local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")
package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
local socket = require "socket"
local task = require "task"
local fds = require "fds"

local dir, big, BIG

-- bytes with no period that lines up with 64 KiB chunks
local function pattern(n)
  local t, x = {}, 7
  for i = 1, 4099 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x >> 16 & 255)
  end
  local block = table.concat(t)
  return block:rep(n // #block + 1):sub(1, n)
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/root"))
  BIG = pattern(3 * 1024 * 1024 + 12345)
  big = dir .. "/big.bin"
  write(big, BIG)
end)

teardown(function()
  if dir then os.execute("rm -rf " .. dir) end
end)

local function pair(opts)
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local c = assert(socket.tcp())
  if opts and opts.rcvbuf then
    assert(c:setoption("recv-buffer-size", opts.rcvbuf))
  end
  assert(c:connect("127.0.0.1", port))
  local p = assert(s:accept())
  s:close()
  c:settimeout(20)
  p:settimeout(20)
  return c, p
end

-- reads n bytes from c in a task: join() -> data (or nil, err, partial)
local function reader(c, n)
  return spawn(function() return c:receive(n) end)
end

describe("sock:sendfile", function()
  it("sends a multi-MB file byte-exact over plain TCP, path or handle",
  function()
    local c, p = pair()
    local r = reader(c, #BIG)
    assert.equal(#BIG, p:sendfile(big))
    assert.is_true(r:join() == BIG)
    local f = assert(io.open(big, "rb"))
    f:seek("set", 10)
    r = reader(c, #BIG)
    assert.equal(#BIG, p:sendfile(f))
    assert.is_true(r:join() == BIG)
    assert.equal(10, f:seek())        -- the handle's position left alone
    f:close()
    local _, sent = p:getstats()
    assert.equal(2 * #BIG, sent)
    c:close(); p:close()
  end)

  it("sends offset/count ranges", function()
    local c, p = pair()
    for _, rg in ipairs({{0, 0}, {0, 1}, {1, 100}, {65535, 65538},
                         {#BIG - 5, 5}, {1000000, 1500001}}) do
      local off, n = rg[1], rg[2]
      local want = BIG:sub(off + 1, off + n)
      local r = reader(c, n)
      assert.equal(n, p:sendfile(big, off, n))
      if n > 0 then assert.is_true(r:join() == want, off .. "+" .. n)
      else r:cancel() end
    end
    -- offset alone: to the end of the file
    local r = reader(c, #BIG - 3000000)
    assert.equal(#BIG - 3000000, p:sendfile(big, 3000000))
    assert.is_true(r:join() == BIG:sub(3000001))
    c:close(); p:close()
  end)

  it("falls back to the queued send when the kernel is full (slow reader)",
  function()
    local c, p = pair({rcvbuf = 4096})
    assert(p:setoption("send-buffer-size", 4096))
    -- nobody reads: the kernel path stops early and says so
    local f = assert(io.open(big, "rb"))
    local n, state = p:sendfile_raw(f, 0, #BIG)
    assert.equal("again", state)
    assert.is_true(n < #BIG)
    local first = assert(c:receive(n))
    assert.is_true(first == BIG:sub(1, n))
    -- a reader taking 8 KiB every few ms: many EAGAINs, all bytes right
    local r = spawn(function()
      local parts, got = {}, 0
      while got < #BIG do
        local d = assert(c:receive(math.min(8192, #BIG - got)))
        parts[#parts + 1] = d
        got = got + #d
        if #parts % 16 == 0 then sleep(0.002) end
      end
      return table.concat(parts)
    end)
    local t0 = task.now()
    assert.equal(#BIG, p:sendfile(f))
    assert.is_true(r:join() == BIG)
    assert.is_true(task.now() - t0 > 0.05)   -- it did wait for the reader
    f:close()
    c:close(); p:close()
  end)

  it("honours the send timeout", function()
    local c, p = pair({rcvbuf = 4096})
    p:settimeout(0.2)
    local t0 = task.now()
    local n, err, sent = p:sendfile(big)
    assert.is_nil(n)
    assert.equal("timeout", err)
    assert.is_true(sent > 0 and sent < #BIG)
    assert.is_true(task.now() - t0 < 2)
    c:close(); p:close()
  end)

  it("returns nil, 'closed', sent when the peer closes mid-transfer; "
    .. "no fd leak", function()
    local before = fds.settled()
    for _ = 1, 3 do
      local c, p = pair({rcvbuf = 8192})
      assert(p:setoption("send-buffer-size", 8192))
      local r = spawn(function()
        local d = c:receive(200000)
        c:close()
        return d and #d
      end)
      local n, err, sent = p:sendfile(big)
      assert.is_nil(n)
      assert.equal("closed", err)
      assert.is_true(sent >= 200000 and sent < #BIG, tostring(sent))
      assert.equal(200000, r:join())
      p:close()
    end
    assert.equal(before, fds.settled())
  end)

  it("a file shorter than count: an error, no hang", function()
    local c, p = pair()
    local small = dir .. "/small.txt"
    write(small, "0123456789")
    local r = reader(c, 10)
    local t0 = task.now()
    assert.same({nil, "file too short", 10}, {p:sendfile(small, 0, 1000)})
    assert.same({nil, "file too short", 0}, {p:sendfile(small, 20, 1)})
    assert.equal("0123456789", r:join())
    assert.is_true(task.now() - t0 < 2)
    -- a missing file: nil, err, 0
    local n, err, sent = p:sendfile(dir .. "/nope")
    assert.is_nil(n)
    assert.matches("No such file", err)
    assert.equal(0, sent)
    c:close(); p:close()
  end)

  it("sends over a Unix socket", function()
    local path = dir .. "/sock"
    local s = assert(socket.bind("unix:" .. path))
    local c = assert(socket.connect("unix:" .. path))
    local p = assert(s:accept())
    s:close()
    c:settimeout(20); p:settimeout(20)
    local r = reader(c, #BIG)
    assert.equal(#BIG, p:sendfile(big))
    assert.is_true(r:join() == BIG)
    r = reader(c, 70000)
    assert.equal(70000, p:sendfile(big, 123, 70000))
    assert.is_true(r:join() == BIG:sub(124, 70123))
    c:close(); p:close()
  end)

  it("sends over TLS (the plain path)", function()
    local D = dir .. "/certs"
    assert(os.execute("sh " .. SRC .. "/tests/support/certs.sh " .. D
      .. " >/dev/null"))
    local s = assert(socket.bind("127.0.0.1", 0, {tls = {
      certfile = D .. "/server.pem", keyfile = D .. "/server.key"}}))
    local _, port = s:getsockname()
    local srv = spawn(function()
      local p = assert(s:accept())
      p:settimeout(20)
      local a = {p:sendfile(big)}
      local b = {p:sendfile(big, 5, 100000)}
      p:close()
      return a, b
    end)
    local c = assert(socket.connect("localhost", port,
      {tls = {cafile = D .. "/ca.pem"}}))
    c:settimeout(20)
    assert.is_true(c:receive(#BIG) == BIG)
    assert.is_true(c:receive(100000) == BIG:sub(6, 100005))
    local a, b = srv:join()
    assert.same({#BIG}, a)
    assert.same({100000}, b)
    c:close(); s:close()
  end)

  it("raises on bad arguments, naming them", function()
    local c, p = pair()
    assert.error_matches(function() p:sendfile(42) end,
      "bad argument #1 to 'sendfile'")
    local f = assert(io.open(big, "rb"))
    f:close()
    assert.error_matches(function() p:sendfile(f) end,
      "bad argument #1 to 'sendfile' %(path or file expected, got closed")
    assert.error_matches(function() p:sendfile(big, -1) end,
      "bad argument #2 to 'sendfile'")
    assert.error_matches(function() p:sendfile(big, 0, 1.5) end,
      "bad argument #3 to 'sendfile'")
    c:close(); p:close()
    assert.same({nil, "closed", 0}, {p:sendfile(big)})
  end)
end)

-- one HTTP exchange on a fresh connection: status, headers text, body
local function fetch(port, req, want)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(20)
  assert(c:send(req))
  local head = {}
  local status = tonumber(assert(c:receive("*l")):match("^HTTP/1%.1 (%d+)"))
  local len
  while true do
    local l = assert(c:receive("*l"))
    if l == "" then break end
    head[#head + 1] = l
    len = len or tonumber(l:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
  end
  local body = ""
  if want ~= false and len and len > 0 then body = assert(c:receive(len)) end
  -- nothing more on the wire (HEAD: no body)
  c:settimeout(0.2)
  local extra, err = c:receive(1)
  c:close()
  assert.is_nil(extra)
  return status, table.concat(head, "\n"), body, len, err
end

describe("http file responses", function()
  it("http.server sends {file =, offset =, length =} with Content-Length",
  function()
    local http = require "http"
    local srv = http.server{host = "127.0.0.1", port = 0, handler =
      function(req)
        if req.path == "/all" then return 200, nil, {file = big} end
        if req.path == "/part" then
          return 206, {["Content-Type"] = "x/y"},
            {file = assert(io.open(big, "rb")), offset = 7, length = 3000}
        end
        return 200, nil, {file = big, offset = 1, length = #BIG}  -- too long
      end}
    local t = spawn(function() srv:serve() end)
    local st, head, body, len = fetch(srv.port,
      "GET /all HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.equal(200, st)
    assert.equal(#BIG, len)
    assert.matches("Content%-Type: application/octet%-stream", head)
    assert.is_true(body == BIG)
    st, head, body = fetch(srv.port,
      "GET /part HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.equal(206, st)
    assert.matches("Content%-Type: x/y", head)
    assert.is_true(body == BIG:sub(8, 3007))
    st, head, body, len = fetch(srv.port,
      "HEAD /all HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
    assert.equal(200, st)
    assert.equal(#BIG, len)
    assert.equal("", body)
    st = fetch(srv.port,     -- (a line on stderr: the handler's error)
      "GET /bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.equal(500, st)
    srv:close()
    t:join()
  end)

  it("http_serve serves a 5 MiB file and a Range of it byte-exact",
  function()
    local FIVE = pattern(5 * 1024 * 1024)
    write(dir .. "/root/five.bin", FIVE)
    local logf = dir .. "/serve.log"
    os.execute(NETSH .. " -m http_serve " .. dir .. "/root --port 0 2>"
      .. logf .. " & echo $! >" .. dir .. "/pid")
    local port
    local deadline = task.now() + 10
    repeat
      sleep(0.05)
      local f = io.open(logf)
      port = f and f:read("a"):match("http://127%.0%.0%.1:(%d+)/")
      if f then f:close() end
    until port or task.now() > deadline
    local pf = io.open(dir .. "/pid")
    local pid = pf:read("a"):match("%d+")
    pf:close()
    local ok, e = pcall(function()
      assert(port, "http_serve did not start")
      port = tonumber(port)
      local st, _, body, len = fetch(port,
        "GET /five.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.equal(200, st)
      assert.equal(#FIVE, len)
      assert.is_true(body == FIVE)
      local head
      st, head, body = fetch(port, "GET /five.bin HTTP/1.1\r\nHost: x\r\n"
        .. "Range: bytes=1000000-3999999\r\nConnection: close\r\n\r\n")
      assert.equal(206, st)
      assert.matches("Content%-Range: bytes 1000000%-3999999/" .. #FIVE, head)
      assert.is_true(body == FIVE:sub(1000001, 4000000))
      st, head, body = fetch(port, "GET /five.bin HTTP/1.1\r\nHost: x\r\n"
        .. "Range: bytes=-10\r\nConnection: close\r\n\r\n")
      assert.equal(206, st)
      assert.equal(FIVE:sub(-10), body)
      st, _, body, len = fetch(port,
        "HEAD /five.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false)
      assert.equal(200, st)
      assert.equal(#FIVE, len)
    end)
    os.execute("kill " .. pid)
    assert(ok, e)
  end)
end)
