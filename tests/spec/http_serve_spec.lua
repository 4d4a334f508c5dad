-- http_serve_spec.lua -- http.server against real clients (netsh's http
-- client, curl, Python requests and http.client, raw sockets for what is
-- checked on the wire) and hostile ones (smuggling, slowloris, huge
-- heads, disconnects). Each server runs in this process on 127.0.0.1:0;
-- external clients run in the background (the loop keeps serving) and are
-- polled for their exit.
local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")
package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
local task = require "task"
local fds = require "fds"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- run(cmd) -> stdout, exit code: the command runs in the background while
-- this task sleeps, so the in-process server answers it
local function run(cmd, timeout)
  local out = os.tmpname()
  os.execute("( (" .. cmd .. ") >" .. out .. " 2>" .. out .. ".err; echo $? >"
    .. out .. ".rc ) &")
  local deadline = task.now() + (timeout or 20)
  local rc
  repeat
    sleep(0.02)
    rc = slurp(out .. ".rc")
  until (rc and rc:match("%d")) or task.now() > deadline
  local text = slurp(out) or ""
  local err = slurp(out .. ".err") or ""
  os.remove(out) os.remove(out .. ".rc") os.remove(out .. ".err")
  return text, tonumber(rc and rc:match("%d+")), err
end

-- start(handler or opts) -> srv, base url; the server is closed by stop()
local servers = {}
local function start(opts)
  if type(opts) ~= "table" or getmetatable(opts) then
    opts = {handler = opts}
  end
  opts.port = opts.port or 0
  local srv = assert(http.server(opts))
  servers[#servers + 1] = srv
  srv.task = spawn(function() return srv:serve() end)
  return srv, srv.port and ("http://127.0.0.1:" .. srv.port)
end

after_each(function()
  for _, s in ipairs(servers) do s:close() end
  for _, s in ipairs(servers) do s.task:join(10) end
  servers = {}
end)

local function connect(srv)
  local c = assert(socket.connect("127.0.0.1", srv.port))
  c:settimeout(5)
  return c
end

-- reads one response off c: status, headers (lower-case), body
local function read_response(c, head_only)
  local line, err = c:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local h = {}
  while true do
    local l = assert(c:receive("*l"))
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.*)$")
    h[k:lower()] = v
  end
  local body = ""
  if head_only then return status, h, body end
  if h["content-length"] then
    body = assert(c:receive(tonumber(h["content-length"])))
  elseif h["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local n = tonumber(assert(c:receive("*l")), 16)
      if n == 0 then assert(c:receive("*l")) break end
      parts[#parts + 1] = assert(c:receive(n))
      assert(c:receive("*l"))
    end
    body = table.concat(parts)
  end
  return status, h, body
end

-- the peer closed: receive says "closed" (whatever partial data)
local function assert_closed(c)
  local line, err = c:receive("*l")
  assert.is_nil(line)
  assert.equal("closed", err)
end

local function hello(req)
  return 200, {["Content-Type"] = "text/plain"}, "hello " .. req.path
end

describe("http.server basics", function()
  it("answers netsh's own http client, with Date and Content-Length",
    function()
    local srv, url = start(hello)
    local res = assert(http.get(url .. "/a?x=1"))
    assert.equal(200, res.status)
    assert.equal("hello /a", res.body)
    assert.equal("8", res.headers["content-length"])
    assert.truthy(res.headers["date"]:match("GMT$"))
  end)

  it("gives method, path, decoded query, case-blind headers with repeats, "
    .. "remote address", function()
    local seen
    local srv = start(function(req)
      seen = req
      return 204
    end)
    local c = connect(srv)
    c:send("GET /p/q?a=1&b=x%20y&c=%2B+z HTTP/1.1\r\nHost: h\r\n"
      .. "X-Tag: one\r\nx-tag: two\r\nSec-WebSocket-Key: k\r\n\r\n")
    assert.equal(204, read_response(c, true))
    assert.equal("GET", seen.method)
    assert.equal("/p/q", seen.path)
    assert.same({a = "1", b = "x y", c = "+ z"}, seen.query)
    assert.equal("one, two", seen.headers["X-Tag"])
    assert.same({"one", "two"}, seen:header_values("x-tag"))
    assert.equal("k", seen.headers["sec-websocket-key"])
    assert.equal("127.0.0.1", seen.remote_ip)
    assert.equal(select(2, c:getsockname()), seen.remote_port)
    c:close()
  end)

  it("keeps a connection alive and answers pipelined requests in order",
    function()
    local ports = {}
    local srv = start(function(req)
      ports[#ports + 1] = req.remote_port
      if req.path == "/slow" then sleep(0.1) end
      return 200, nil, req.path
    end)
    local c = connect(srv)
    -- three requests in one write: the slow first one is answered first
    assert(c:send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
      .. "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
      .. "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))
    for _, want in ipairs{"/slow", "/b", "/c"} do
      local status, h, body = read_response(c)
      assert.equal(200, status)
      assert.equal(want, body)
      assert.is_nil(h.connection)
    end
    assert.equal(3, #ports)
    assert.equal(ports[1], ports[3])
    c:close()
  end)

  it("HTTP/1.0 closes unless asked to keep alive", function()
    local srv = start(hello)
    local c = connect(srv)
    c:send("GET /x HTTP/1.0\r\n\r\n")
    local status, h, body = read_response(c)
    assert.equal(200, status)
    assert.equal("close", h.connection)
    assert_closed(c)
    c:close()
    c = connect(srv)
    c:send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, h = read_response(c)
    assert.equal("keep-alive", h.connection)
    c:send("GET /y HTTP/1.0\r\n\r\n")
    assert.equal("hello /y", select(3, read_response(c)))
    c:close()
  end)

  it("HEAD gets the headers of GET without the body", function()
    local srv = start(hello)
    local c = connect(srv)
    c:send("HEAD /abc HTTP/1.1\r\nHost: h\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n")
    local status, h = read_response(c, true)
    assert.equal(200, status)
    assert.equal("10", h["content-length"])
    -- the next response follows at once: no body bytes in between
    assert.equal("hello /d", select(3, read_response(c)))
    c:close()
  end)

  it("sends table bodies, iterators (chunked) and JSON", function()
    local srv, url = start(function(req)
      if req.path == "/t" then return 200, nil, {"a", "b", "c"} end
      if req.path == "/json" then
        return {status = 201, json = {ok = true, n = 3}}
      end
      local i = 0
      return 200, nil, function()
        i = i + 1
        if i <= 3 then return ("part%d;"):format(i) end
      end
    end)
    assert.equal("abc", http.get(url .. "/t").body)
    local res = http.get(url .. "/json")
    assert.equal(201, res.status)
    assert.equal("application/json", res.headers["content-type"])
    assert.same({ok = true, n = 3}, res:json())
    local c = connect(srv)
    c:send("GET /it HTTP/1.1\r\nHost: h\r\n\r\n")
    local status, h, body = read_response(c)
    assert.equal("chunked", h["transfer-encoding"])
    assert.equal("part1;part2;part3;", body)
    c:close()
  end)

  it("reads JSON, Content-Length and chunked bodies, and streams them",
    function()
    local srv, url = start(function(req)
      if req.path == "/json" then
        local v = assert(req:json())
        return {json = {sum = v.a + v.b}}
      elseif req.path == "/stream" then
        local n, pieces = 0, 0
        for piece in req:body_reader() do
          n, pieces = n + #piece, pieces + 1
        end
        return 200, nil, tostring(n)
      end
      return 200, nil, req.body
    end)
    local res = http.post(url .. "/json", {json = {a = 2, b = 3}})
    assert.same({sum = 5}, res:json())
    assert.equal("x=1", http.post(url .. "/echo", {body = "x=1"}).body)
    local c = connect(srv)
    c:send("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      .. "\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n")
    assert.equal("abc0123456789", select(3, read_response(c)))
    local big = ("z"):rep(300000)
    c:send("POST /stream HTTP/1.1\r\nHost: h\r\nContent-Length: "
      .. #big .. "\r\n\r\n" .. big)
    assert.equal("300000", select(3, read_response(c)))
    c:close()
  end)

  it("answers Expect: 100-continue when the handler reads the body",
    function()
    local srv = start(function(req) return 200, nil, "got " .. req.body end)
    local c = connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
      .. "Expect: 100-continue\r\n\r\n")
    assert.equal("HTTP/1.1 100 Continue", c:receive("*l"))
    assert.equal("", c:receive("*l"))
    c:send("data")
    assert.equal("got data", select(3, read_response(c)))
    c:close()
  end)

  it("a handler error gives 500 and the server goes on", function()
    local srv, url = start(function(req)
      if req.path == "/boom" then error("boom") end
      return 200, nil, "fine"
    end)
    local res = http.get(url .. "/boom")
    assert.equal(500, res.status)
    assert.equal("fine", http.get(url .. "/ok").body)
  end)

  it("refuses bad response headers (no header injection)", function()
    local srv, url = start(function(req)
      return 200, {["X-Evil"] = "a\r\nSet-Cookie: x=1"}, "no"
    end)
    local res = http.get(url .. "/")
    assert.equal(500, res.status)
    assert.is_nil(res.headers["set-cookie"])
  end)

  it("serves over a Unix socket and over TLS", function()
    local path = os.tmpname()
    os.remove(path)
    local srv = start{unix = path, handler = hello}
    local c = assert(socket.connect("unix:" .. path))
    c:settimeout(5)
    c:send("GET /u HTTP/1.1\r\nHost: h\r\n\r\n")
    assert.equal("hello /u", select(3, read_response(c)))
    c:close()
    local res = http.get("http://localhost/v", {unix_socket = path})
    assert.equal("hello /v", res.body)
    -- TLS: the test CA's server certificate
    local D = os.tmpname()
    os.remove(D)
    os.execute("sh " .. SRC .. "/tests/support/certs.sh " .. D .. " >/dev/null")
    local tsrv = start{handler = hello, tls = {certfile = D .. "/server.pem",
      keyfile = D .. "/server.key"}}
    res = assert(http.get("https://localhost:" .. tsrv.port .. "/tls",
      {cafile = D .. "/ca.pem"}))
    assert.equal("hello /tls", res.body)
    local out = run("curl -s --cacert " .. D .. "/ca.pem https://localhost:"
      .. tsrv.port .. "/curl")
    assert.equal("hello /curl", out)
    os.execute("rm -rf " .. D)
  end)

  it("close() lets a request in progress finish, then serve() returns",
    function()
    local srv, url = start(function(req)
      sleep(0.2)
      return 200, nil, "late"
    end)
    local t = spawn(function() return http.get(url .. "/") end)
    sleep(0.05)
    srv:close()
    local res = t:join(5)
    assert.equal("late", res.body)
    assert.truthy(srv.task:join(5))
    assert.same({nil, "connection refused"},
      {socket.connect("127.0.0.1", srv.port)})
  end)

  it("close(): past the grace time a stuck handler is cancelled and its "
    .. "connection closed", function()
    local srv = start{grace = 0.2, handler = function() sleep(30) end}
    local c = connect(srv)
    c:send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    sleep(0.05)
    local t0 = task.now()
    srv:close()
    assert.truthy(srv.task:join(5))
    assert.truthy(task.now() - t0 < 1)
    assert_closed(c)
    assert.equal(0, srv:connections())
    c:close()
  end)

  it("does not load libcurl", function()
    local out, code = run(NETSH .. " -e '"
      .. "local s = http.server{port = 0, handler = function() end} "
      .. "s:close() "
      .. "print(io.open(\"/proc/self/maps\"):read(\"a\"):find(\"libcurl\") "
      .. "and \"curl\" or \"none\")'")
    assert.equal(0, code)
    assert.equal("none\n", out)
  end)
end)

describe("http.router", function()
  it("routes by method and path with parameters; 404 and 405", function()
    local r = http.router()
    local items = {}
    r:get("/items/:id", function(req, p)
      if not items[p.id] then return 404, nil, "no item\n" end
      return {json = items[p.id]}
    end)
    r:post("/items/:id", function(req, p)
      items[p.id] = assert(req:json())
      return {status = 201, json = {id = p.id}}
    end)
    r:get("/files/*path", function(req, p) return 200, nil, p.path end)
    local srv, url = start(r)
    assert.equal(201, http.post(url .. "/items/a%20b", {json = {x = 1}}).status)
    assert.same({x = 1}, http.get(url .. "/items/a%20b"):json())
    assert.equal(404, http.get(url .. "/items/zz").status)
    assert.equal("x/y.txt", http.get(url .. "/files/x/y.txt").body)
    assert.equal(404, http.get(url .. "/nothing").status)
    local res = http.request("DELETE", url .. "/items/a")
    assert.equal(405, res.status)
    assert.equal("GET, POST", res.headers["allow"])
  end)
end)

describe("http.server with other clients", function()
  it("curl reuses the connection; Python requests and http.client work",
    function()
    local srv, url = start(function(req)
      if req.method == "POST" then
        return {json = {len = #req.body, te = req.headers["transfer-encoding"],
          port = req.remote_port}}
      end
      return 200, {["X-Port"] = req.remote_port}, "hi"
    end)
    local out, code, err = run("curl -sv " .. url .. "/1 " .. url .. "/2")
    assert.equal(0, code)
    assert.equal("hihi", out)
    assert.truthy(err:find("Re%-using existing connection"))
    out, code = run([[python3 -c '
import requests, sys
s = requests.Session()
a = s.get("]] .. url .. [[/x")
b = s.post("]] .. url .. [[/y", json={"k": "v" * 1000})
print(a.status_code, a.text, a.headers["X-Port"] == str(b.json()["port"]), b.json()["len"])
']])
    assert.equal(0, code)
    assert.equal("200 hi True 1009\n", out)
    out, code = run([[python3 -c '
import http.client
c = http.client.HTTPConnection("127.0.0.1", ]] .. srv.port .. [[)
def gen():
    yield b"abc"
    yield b"defg"
c.request("POST", "/up", body=gen(), encode_chunked=True)
r = c.getresponse()
print(r.status, r.read().decode())
c.request("GET", "/again")
r = c.getresponse()
print(r.status, r.read().decode())
']])
    assert.equal(0, code)
    assert.truthy(out:match('^200 {.*"len":7'))
    assert.truthy(out:find('"te":"chunked"', 1, true))
    assert.truthy(out:find("\n200 hi\n", 1, true))
  end)
end)

-- what a hostile request gets: the status line, and whether the server
-- closed the connection after it
local function hostile(srv, raw)
  local c = connect(srv)
  c:send(raw)
  local status = read_response(c)
  local rest, err, partial = c:receive("*a")
  c:close()
  -- "closed" with nothing: the FIN came with the response
  return status, rest or (err == "closed" and partial) or err
end

describe("http.server against hostile clients", function()
  local smuggling = {
    ["CL with TE"] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ["TE with CL"] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
      .. "chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ["duplicate CL"] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
      .. "Content-Length: 1\r\n\r\nx",
    ["CL list"] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\nx",
    ["signed CL"] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx",
    ["TE not chunked last"] = "POST / HTTP/1.1\r\nHost: h\r\n"
      .. "Transfer-Encoding: chunked, identity\r\n\r\n",
    ["TE twice"] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ["obs-fold"] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
    ["space before colon"] = "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    ["NUL in a value"] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
    ["bare CR"] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
    ["bare LF"] = "GET / HTTP/1.1\nHost: h\n\n",
    ["control byte"] = "GET / HTTP/1.1\r\nHost: h\r\nX: \1\r\n\r\n",
    ["no Host"] = "GET / HTTP/1.1\r\n\r\n",
    ["two Hosts"] = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ["space in target"] = "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
  }
  for name, raw in pairs(smuggling) do
    it("refuses " .. name .. " with 400 and closes", function()
      local called = false
      local srv = start(function() called = true return 200 end)
      local status, rest = hostile(srv, raw)
      assert.equal(400, status)
      assert.equal("", rest)
      assert.is_false(called)
    end)
  end

  for name, size in pairs{["-1"] = "-1", ["0x5"] = "0x5", ["empty"] = "",
      [" 5"] = " 5", ["huge"] = ("f"):rep(17), ["5 junk"] = "5 x"} do
    it("refuses the chunk size '" .. name .. "' with 400 and closes",
      function()
      local err
      local srv = start(function(req)
        local ok, e = pcall(function() return req.body end)
        err = e
        if not ok then error(e, 0) end  -- the server answers it
        return 200
      end)
      local status, rest = hostile(srv, "POST / HTTP/1.1\r\nHost: h\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n" .. size .. "\r\nabcde\r\n"
        .. "0\r\n\r\n")
      assert.equal(400, status)
      assert.equal("", rest)
      assert.equal("request body: bad chunk size", tostring(err))
    end)
  end

  it("closes after a handler that caught a body error answers", function()
    local srv = start(function(req)
      local body, err = req:read_body()
      return 200, nil, "caught " .. tostring(err)
    end)
    local status, rest = hostile(srv, "POST / HTTP/1.1\r\nHost: h\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\nzz\r\n"
      .. "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n")
    assert.equal(200, status)
    assert.equal("", rest)     -- closed: /smuggled is never read
  end)

  it("gives 431 to a 1 MB header and to 100k headers, 414 to a huge URL, "
    .. "413 to a big body", function()
    local srv = start{handler = hello, max_body = 1000}
    assert.equal(431, (hostile(srv, "GET / HTTP/1.1\r\nHost: h\r\nX: "
      .. ("a"):rep(1024 * 1024) .. "\r\n\r\n")))
    assert.equal(431, (hostile(srv, "GET / HTTP/1.1\r\nHost: h\r\n"
      .. ("a: b\r\n"):rep(100000) .. "\r\n")))
    assert.equal(414, (hostile(srv, "GET /" .. ("a"):rep(100000)
      .. " HTTP/1.1\r\nHost: h\r\n\r\n")))
    assert.equal(413, (hostile(srv, "POST / HTTP/1.1\r\nHost: h\r\n"
      .. "Content-Length: 1001\r\n\r\n" .. ("x"):rep(1001))))
    local big = srv -- chunked past the limit: 413 once read
    local srv2 = start{handler = function(req) return 200, nil, req.body end,
      max_body = 10}
    assert.equal(413, (hostile(srv2, "POST / HTTP/1.1\r\nHost: h\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678"
      .. "\r\n0\r\n\r\n")))
    assert.equal("hello /", http.get("http://127.0.0.1:" .. big.port).body)
  end)

  it("408s slowloris heads and bodies while serving everyone else",
    function()
    local srv, url = start{handler = function(req)
      return 200, nil, req.body
    end, header_timeout = 0.4, body_timeout = 0.4}
    local function drip(raw, each)
      return spawn(function()
        local c = connect(srv)
        local t0 = task.now()
        local writer = spawn(function()
          for i = 1, #raw do
            if not c:send(raw:sub(i, i)) then break end
            if i > each then sleep(0.05) end
          end
        end)
        local line = c:receive("*l")
        local took = task.now() - t0
        writer:cancel()
        c:close()
        return line, took
      end)
    end
    local head = drip("GET / HTTP/1.1\r\nHost: h\r\nX-Slow: "
      .. ("a"):rep(100) .. "\r\n\r\n", 0)
    local body = drip("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n"
      .. "\r\n" .. ("b"):rep(100), 46)
    -- meanwhile a normal client is served at once
    for _ = 1, 5 do
      local t0 = task.now()
      local res = http.post(url .. "/", {body = "quick"})
      assert.equal("quick", res.body)
      assert.truthy(task.now() - t0 < 0.2)
      sleep(0.02)
    end
    local line, took = head:join(5)
    assert.equal("HTTP/1.1 408 Request Timeout", line)
    assert.truthy(took < 1.5)
    line, took = body:join(5)
    assert.equal("HTTP/1.1 408 Request Timeout", line)
    assert.truthy(took < 1.5)
  end)

  it("a client gone mid-body: the handler sees an error, nothing leaks",
    function()
    local before = fds.settled()
    local seen = task.cond()
    local err
    local srv = start(function(req)
      local ok, e = pcall(function() return req.body end)
      err = e
      seen:signal()
      return 200
    end)
    local c = connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nabc")
    sleep(0.05)
    c:close()
    seen:wait(5)
    assert.equal("request body: closed", tostring(err))
    assert.equal(0, srv:connections())
    srv:close()
    srv.task:join(5)
    assert.equal(before, fds.settled())
  end)

  it("idle keep-alive connections time out; srv:close() closes idle ones",
    function()
    local srv = start{handler = hello, keepalive_timeout = 0.2}
    local c = connect(srv)
    c:send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert.equal(200, read_response(c))
    local t0 = task.now()
    assert_closed(c)
    assert.truthy(task.now() - t0 < 1)
    c:close()
    local srv2 = start(hello)
    local c2 = connect(srv2)
    c2:send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert.equal(200, read_response(c2))
    srv2:close()
    assert_closed(c2)
    assert.truthy(srv2.task:join(2))
    c2:close()
  end)

  it("holds at most max_connections", function()
    local srv, url = start{handler = hello, max_connections = 2}
    local a, b = connect(srv), connect(srv)
    a:send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    b:send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert.equal(200, read_response(a))
    assert.equal(200, read_response(b))
    local c = connect(srv)      -- queued in the backlog, not served
    c:send("GET /third HTTP/1.1\r\nHost: h\r\n\r\n")
    c:settimeout(0.2)
    local line, err = c:receive("*l")
    assert.is_nil(line)
    assert.equal("timeout", err)
    a:close()
    c:settimeout(5)
    assert.equal("hello /third", select(3, read_response(c)))
    b:close() c:close()
  end)
end)

describe("req:hijack()", function()
  it("hands over the socket and the bytes read past the head", function()
    local got = task.cond()
    local pending_seen
    local srv = start(function(req)
      local sock, pending = req:hijack()
      pending_seen = pending
      sock:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
      local line = sock:receive("*l")
      sock:send("echo:" .. line .. "\n")
      sleep(0.3)                -- longer than keepalive_timeout below
      sock:send("still here\n")
      sock:close()
    end)
    srv.opts.keepalive_timeout = 0.1
    local c = connect(srv)
    c:send("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade"
      .. "\r\n\r\nearly bytes")
    assert.equal(101, read_response(c, true))
    c:send("line\n")
    assert.equal("echo:line", c:receive("*l"))
    assert.equal(1, srv:connections())
    assert.equal("still here", c:receive("*l"))
    assert_closed(c)
    assert.equal("early bytes", pending_seen)
    c:close()
    sleep(0.05)
  end)

  it("req:websocket() does the handshake (the websocket module)",
    function()
    local srv, url = start(function(req)
      local ws = assert(req:websocket())
      local msg = ws:receive(5)
      ws:send("echo:" .. tostring(msg))
      ws:close(1000, "bye")
    end)
    local ws = assert(websocket.connect("ws://127.0.0.1:" .. srv.port
      .. "/chat"))
    ws:send("hello")
    assert.equal("echo:hello", ws:receive(5))
    ws:close()
  end)
end)
