-- http_spec.lua -- the http module against real local servers started
-- here: nginx (tests/support/nginx.sh: HTTP, HTTPS + HTTP/2 with a test
-- CA made by the openssl CLI) and tests/support/http_oddities.py (the odd
-- cases). Everything talks to 127.0.0.1 only.
local http = require "http"
local core = require "http.core"
local task = require "task"

local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")
package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
local oddities = require "oddities"

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok, code
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local dir, H, S, O, odd_pid, CA

-- Waits (without blocking the loop) until the idle connections' watchers
-- are gone and no transfer is left in the multi.
local function settled()
  for _ = 1, 100 do
    local st = core.stats()
    if st.handles == 0 then return st end
    sleep(0.01)
  end
  return core.stats()
end

setup(function()
  dir = sh("mktemp -d /tmp/netsh-http.XXXXXX"):gsub("%s+$", "")
  local out, ok = sh("sh " .. SRC .. "/tests/support/nginx.sh start " .. dir
    .. " 2>&1")
  assert(ok, "nginx did not start (apt-get install nginx-light): " .. out)
  local hp, sp = out:match("(%d+) (%d+)%s*$")
  H = "http://127.0.0.1:" .. hp
  S = "https://127.0.0.1:" .. sp
  CA = dir .. "/ca.pem"
  O, odd_pid = oddities.start(dir, 600)
end)

teardown(function()
  oddities.stop(odd_pid)
  if dir then sh("sh " .. SRC .. "/tests/support/nginx.sh stop " .. dir) end
end)

-- the message of the error f raises, position included (busted's
-- error_matches drops positions)
local function raised(f)
  local ok, e = pcall(f)
  assert.is_false(ok)
  return e
end

-- A netsh server that records the raw head of every request it gets
-- (its lines, CRLF kept) and answers 200 "ok", or reply (the raw bytes
-- of a response): tests/spec/helpers/raw_http.lua. -> url, heads, stop
local function raw_server(reply)
  local url, _, stop, heads = require("raw_http").server{
    default = reply and function() return reply end}
  return url, heads, stop
end

describe("http against nginx", function()
  it("GETs a file: status, reason, headers, body, timings", function()
    local res, err = http.get(H .. "/small.txt")
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("OK", res.reason)
    assert.is_true(res.ok)
    assert.are.equal("hello from nginx\n", res.body)
    assert.are.equal(H .. "/small.txt", res.url)
    assert.are.equal("1.1", res.http_version)
    assert.are.equal("text/plain", res.headers["Content-Type"])
    assert.are.equal("text/plain", res.headers["content-type"])
    assert.are.equal("17", res.headers["CONTENT-LENGTH"])
    assert.are.equal(0, res.redirects)
    assert.is_true(res.elapsed > 0 and res.elapsed < 5)
    for _, k in ipairs{"dns", "connect", "tls", "first_byte", "total"} do
      assert.is_number(res.timings[k])
    end
    assert.is_true(res.timings.first_byte <= res.timings.total)
    assert.are.equal("127.0.0.1", res.ip)
    assert.are.equal(tonumber(H:match(":(%d+)$")), res.port)
    assert.is_true(res.local_port > 0 and res.local_port ~= res.port)
    assert.matches("^<http 200 OK 17 B [%d.]+ ms>$", tostring(res))
  end)

  it("talks to a Unix socket (unix_socket), keeping the connection",
     function()
    local sock = dir .. "/nginx.sock"
    local res = assert(http.get("http://localhost/small.txt",
      {unix_socket = sock}))
    assert.are.equal(200, res.status)
    assert.are.equal("hello from nginx\n", res.body)
    local s = http.session{unix_socket = sock}
    for i = 1, 3 do
      res = assert(s:get("http://any.name/small.txt"))
      assert.are.equal(i > 1, res.reused)
    end
    assert.are.equal(1, s.connections)
    s:close()
    assert.same({nil, "no such file or directory"},
      {http.get("http://localhost/", {unix_socket = dir .. "/none.sock"})})
    -- a socket file nobody listens on
    os.execute("python3 -c 'import socket; s = socket.socket(socket.AF_UNIX);"
      .. " s.bind(\"" .. dir .. "/dead.sock\")'")
    assert.same({nil, "connection refused"},
      {http.get("http://localhost/", {unix_socket = dir .. "/dead.sock"})})
    assert.has_error(function() http.get("http://x/", {unix_socket = 1}) end,
      "bad option 'unix_socket' (string expected, got number)")
  end)

  it("returns HTTP errors as responses; raise_for_status raises", function()
    local res = assert(http.get(H .. "/missing"))
    assert.are.equal(404, res.status)
    assert.are.equal("Not Found", res.reason)
    assert.is_false(res.ok)
    local ok, e = pcall(res.raise_for_status, res)
    assert.is_false(ok)
    assert.matches("http 404 Not Found", e)
    local good = assert(http.get(H .. "/small.txt"))
    assert.are.equal(good, good:raise_for_status())
  end)

  it("decodes JSON and follows nginx redirects", function()
    local res = assert(http.get(H .. "/data.json"))
    local doc = assert(res:json())
    assert.are.equal("nginx", doc.server)
    assert.are.same({1, 2, 3}, doc.list)
    res = assert(http.get(H .. "/redirect"))
    assert.are.equal(1, res.redirects)
    assert.are.equal(H .. "/small.txt", res.url)
    assert.are.equal("hello from nginx\n", res.body)
    assert.are.equal("too many redirects", select(2, http.get(H .. "/loop")))
  end)

  it("decompresses gzip from nginx", function()
    local res = assert(http.get(H .. "/data.json"))
    assert.are.equal("gzip", res.headers["content-encoding"])
    res = assert(http.get(H .. "/data.json", {decompress = false}))
    assert.is_nil(res.headers["content-encoding"])
    assert.matches("^{", res.body)
  end)

  it("sends basic auth", function()
    local res = assert(http.get(H .. "/private/index.txt"))
    assert.are.equal(401, res.status)
    res = assert(http.get(H .. "/private/index.txt",
      {auth = {"user", "secret"}}))
    assert.are.equal(200, res.status)
    assert.are.equal("secret stuff\n", res.body)
    res = assert(http.get(H .. "/private/index.txt",
      {auth = {user = "user", pass = "wrong"}}))
    assert.are.equal(401, res.status)
  end)

  it("HEAD has headers and no body", function()
    local res = assert(http.head(H .. "/10m.bin"))
    assert.are.equal(200, res.status)
    assert.are.equal("10485760", res.headers["content-length"])
    assert.are.equal("", res.body)
  end)

  it("caps the body with max_size", function()
    local res, err = http.get(H .. "/10m.bin", {max_size = 1000})
    assert.is_nil(res)
    assert.are.equal("body too large (max_size 1000 bytes)", err)
  end)
end)

describe("https with a test CA", function()
  it("verifies against cafile and speaks HTTP/2", function()
    local res = assert(http.get(S .. "/small.txt", {cafile = CA}))
    assert.are.equal(200, res.status)
    assert.are.equal("2", res.http_version)
    assert.are.equal("OK", res.reason)       -- HTTP/2 has no reason phrase
    assert.are.equal("hello from nginx\n", res.body)
    assert.is_true(res.timings.tls > 0)
    res = assert(http.get(S .. "/small.txt", {cafile = CA,
      http_version = "1.1"}))
    assert.are.equal("1.1", res.http_version)
  end)

  it("fails verification without the CA, passes with verify=false",
    function()
    local res, err = http.get(S .. "/small.txt")
    assert.is_nil(res)
    assert.matches("^certificate verify failed: ", err)
    res = assert(http.get(S .. "/small.txt", {verify = false}))
    assert.are.equal(200, res.status)
  end)

  it("checks the host name against the certificate", function()
    -- the certificate names localhost and 127.0.0.1, not 127.0.0.2
    local res, err = http.get(S:gsub("127.0.0.1", "127.0.0.2")
      .. "/small.txt", {cafile = CA})
    if res == nil and err == "connection refused" then
      return   -- 127.0.0.2 not routed to nginx's 127.0.0.1 listener
    end
    assert.is_nil(res)
    assert.matches("^certificate verify failed: ", err)
  end)
end)

describe("requests", function()
  it("sends params, headers, json, form, body and methods", function()
    local res = assert(http.post(O .. "/echo", {
      params = {q = "a b&c", list = {1, 2}},
      headers = {["X-One"] = "1", ["X-Many"] = {"a", "b"}},
      json = {n = 42},
    }))
    local e = assert(res:json())
    assert.are.equal("POST", e.method)
    assert.are.equal("list=1&list=2&q=a%20b%26c", e.query)
    assert.are.equal("1", e.headers["x-one"])
    assert.are.equal("a, b", e.headers["x-many"])
    assert.are.equal("application/json", e.headers["content-type"])
    assert.are.same({n = 42}, (require "cjson").decode(e.body))

    e = assert(assert(http.put(O .. "/echo", {form = {a = "1", b = "x y"}}))
      :json())
    assert.are.equal("PUT", e.method)
    assert.are.equal("a=1&b=x%20y", e.body)
    assert.are.equal("application/x-www-form-urlencoded",
      e.headers["content-type"])

    e = assert(assert(http.patch(O .. "/echo", {body = "raw",
      headers = {["Content-Type"] = "text/x-raw"}})):json())
    assert.are.equal("PATCH", e.method)
    assert.are.equal("raw", e.body)
    assert.are.equal("text/x-raw", e.headers["content-type"])

    e = assert(assert(http.delete(O .. "/echo")):json())
    assert.are.equal("DELETE", e.method)
    e = assert(assert(http.request("OPTIONS", O .. "/echo")):json())
    assert.are.equal("OPTIONS", e.method)
    e = assert(assert(http.request{method = "POST", url = O .. "/echo",
      body = "x"}):json())
    assert.are.equal("POST", e.method)
    assert.are.equal("x", e.body)
  end)

  it("raises on programmer errors", function()
    -- at the caller's line, naming what is wrong
    assert.matches("^[^:]*http_spec%.lua:%d+: unknown option 'timout'$",
      raised(function() http.get(O, {timout = 1}) end))
    assert.matches("^[^:]*http_spec%.lua:%d+: bad option 'json' "
      .. "%(json%.encode: cannot encode a function%)$",
      raised(function() http.post(O, {json = {f = print}}) end))
    local s = http.session()
    assert.matches("^[^:]*http_spec%.lua:%d+: unknown option 'timout'$",
      raised(function() s:get(O, {timout = 1}) end))
    assert.has_error(function()
      http.get(O, {headers = {["X"] = "a\r\nb"}})
    end)
    assert.has_error(function() http.get(42) end)
    assert.has_error(function() http.post(O, {body = "a", json = {}}) end)
  end)

  it("keeps CR, LF and NUL out of the request head: no injection",
     function()
    local url, heads, stop = raw_server()
    local function refused(msg, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok, "not refused: " .. msg)
      assert.matches(msg, err, 1, true)
    end
    local evil = "ua\r\nX-Injected: 1"
    refused("bad argument #1 to 'request' (method must be a token)",
      http.request, "GET / HTTP/1.1\r\nX-Injected: 1\r\nX:", url)
    refused("bad argument #1 to 'request' (method must be a token)",
      http.request, "GET\0", url)
    refused("bad argument #1 to 'request' (method must be a token)",
      http.request, {method = "GET /x", url = url})
    for _, o in ipairs{
      {"user_agent", {user_agent = evil}},
      {"user_agent", {user_agent = "ua\0"}},
      {"auth", {auth = {"u\r\nX-Injected: 1", "p"}}},
      {"auth", {auth = {"u", "p\0x"}}},
      {"proxy", {proxy = url .. "\r\nX-Injected: 1"}},
      {"cafile", {cafile = "/etc/ssl\0x"}},
      {"unix_socket", {unix_socket = "/tmp/x\0y"}},
      {"http_version", {http_version = "1.1\0x"}},
    } do
      refused("bad option '" .. o[1] .. "' (must not contain CR, LF or NUL)",
        http.get, url, o[2])
    end
    refused("bad value for header 'Cookie'",
      http.get, url, {headers = {Cookie = "a=1\r\nX-Injected: 1"}})
    refused("bad value for header 'Referer'",
      http.get, url, {headers = {Referer = "http://x/\0y"}})
    refused("bad header name", http.get, url, {headers = {["X\0Y"] = "1"}})
    -- sessions: checked when made, and their defaults cannot add a Host
    refused("bad option 'user_agent' (must not contain CR, LF or NUL)",
      http.session, {user_agent = "ua\r\nHost: evil.example"})
    -- a URL is data: a bad one is a failure, as curl's other URL errors
    local bad = "URL using bad/illegal format or missing URL"
    assert.same({nil, bad}, {http.get(url .. "/a\0/../secret")})
    assert.same({nil, bad}, {http.get(url .. "/a\r\nX-Injected: 1")})
    assert.same({nil, bad}, {http.request("GET", url .. "/a\0b", {})})
    -- nothing of the above reached the server; a good request does
    local res = assert(http.get(url .. "/fine", {user_agent = "good"}))
    assert.are.equal("ok", res.body)
    assert.are.equal(1, #heads)
    assert.matches("^GET /fine HTTP/1.1\r\n", heads[1])
    assert.matches("\r\nUser%-Agent: good\r\n", heads[1])
    stop()
  end)

  it("uses a proxy given as an option", function()
    local res = assert(http.get("http://netsh.invalid/x", {proxy = O}))
    assert.are.equal("http://netsh.invalid/x", assert(res:json()).proxied)
  end)

  it("uses http_proxy from the environment", function()
    local out = sh("http_proxy=" .. O .. " " .. NETSH .. [[ -e '
      local res, err = http.get("http://netsh.invalid/env")
      io.write(res and res.body or err)' 2>&1]])
    assert.matches('"proxied": "http://netsh.invalid/env"', out, 1, true)
    out = sh("http_proxy=" .. O .. " " .. NETSH .. [[ -e '
      local res, err = http.get("http://127.0.0.1:1/", {proxy = false})
      io.write(res and res.body or err)' 2>&1]])
    assert.are.equal("connection refused", out)
    out = sh("ALL_PROXY=" .. O .. " " .. NETSH .. [[ -e '
      local res, err = http.get("http://netsh.invalid/all")
      io.write(res and res.body or err)' 2>&1]])
    assert.matches('"proxied": "http://netsh.invalid/all"', out, 1, true)
    out = sh("http_proxy=" .. O .. " no_proxy=127.0.0.1 " .. NETSH .. [[ -e '
      local res, err = http.get("]] .. H .. [[/small.txt")
      io.write(res and res.body or err)' 2>&1]])
    assert.are.equal("hello from nginx\n", out)
  end)
end)

describe("failures", function()
  it("connection refused", function()
    local res, err = http.get("http://127.0.0.1:1/")
    assert.is_nil(res)
    assert.are.equal("connection refused", err)
  end)

  it("could not resolve host", function()
    -- a 70-character label fails in the resolver without any DNS query
    local name = ("a"):rep(70) .. ".invalid"
    local res, err = http.get("http://" .. name .. "/")
    assert.is_nil(res)
    assert.are.equal("could not resolve host: " .. name, err)
  end)

  it("times out on a slow server", function()
    local t0 = task.now()
    local res, err = http.get(O .. "/slow?delay=3", {timeout = 0.3})
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.is_true(task.now() - t0 < 2)
  end)

  it("connect_timeout bounds the connection and TLS handshake only",
     function()
    -- a server that accepts and never speaks: the TLS handshake stalls
    local srv = assert(require("socket").bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local held = {}
    local acceptor = spawn(function()
      while true do
        local c = srv:accept()
        if not c then return end
        held[#held + 1] = c
      end
    end)
    local t0 = task.now()
    local res, err = http.get("https://127.0.0.1:" .. port .. "/",
      {connect_timeout = 0.3, verify = false})
    local dt = task.now() - t0
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.25 and dt < 2, "took " .. dt)
    -- once connected, a slow answer is not the connect timeout's business
    res = assert(http.get(O .. "/slow?delay=0.5", {connect_timeout = 0.2}))
    assert.are.equal("slow\n", res.body)
    srv:close()
    acceptor:join()
    for _, c in ipairs(held) do c:close() end
  end)

  it("ends at a task.timeout deadline and removes the transfer", function()
    local t0 = task.now()
    local res, err = task.timeout(0.2, http.get, O .. "/slow?delay=3")
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.is_true(task.now() - t0 < 2)
    assert.are.equal(0, settled().handles)
  end)

  it("removes the transfer when its task is cancelled", function()
    local saved = http.engine
    http.engine = "curl"                -- core.stats() counts curl's
    local t = spawn(http.get, O .. "/slow?delay=3")
    sleep(0.1)
    assert.are.equal(1, core.stats().handles)
    t:cancel()
    http.engine = saved
    assert.are.equal("cancelled", select(2, t:join()))
    assert.are.equal(0, core.stats().handles)
  end)

  it("never reuses the connection of a cancelled request", function()
    local s = http.session()
    local first = assert(s:get(O .. "/conn")).body
    local t = spawn(s.get, s, O .. "/slow?delay=3")
    sleep(0.1)
    t:cancel()
    assert.are.equal("cancelled", select(2, t:join()))
    local res = assert(s:get(O .. "/conn"))
    assert.are.equal(200, res.status)
    assert.are_not.equal(first, res.body)   -- a new connection
    s:close()
  end)

  it("refuses redirects to file:// and file:// itself", function()
    local res, err = http.get(O .. "/tofile")
    assert.is_nil(res)
    assert.are.equal("redirect to unsupported protocol: file", err)
    res, err = http.get("file:///etc/passwd")
    assert.is_nil(res)
    assert.are.equal("unsupported protocol: file", err)
  end)

  it("stops redirect loops and long chains", function()
    assert.are.equal("too many redirects", select(2, http.get(O .. "/loop")))
    local res = assert(http.get(O .. "/redirect/3"))
    assert.are.equal(3, res.redirects)
    assert.are.equal(O .. "/redirect/0", res.url)
    assert.are.equal("done\n", res.body)
    assert.are.equal("too many redirects",
      select(2, http.get(O .. "/redirect/3", {follow = 2})))
    assert.are.equal("too many redirects",
      select(2, http.get(O .. "/redirect/11")))
    res = assert(http.get(O .. "/redirect/3", {follow = false}))
    assert.are.equal(302, res.status)
    assert.are.equal("/redirect/2", res.headers.location)
  end)

  it("says which size limit a request or response went over", function()
    local url, _, stop = raw_server("HTTP/1.1 200 OK\r\nX-Big: "
      .. ("x"):rep(200 * 1024) .. "\r\nContent-Length: 2\r\n\r\nok")
    assert.same({nil, "bad response: header too large (limit 100 KiB)"},
      {http.get(url)})
    stop()
    local lines = {}
    for i = 1, 8 do lines[i] = "X-B" .. i .. ": " .. ("x"):rep(50000) end
    url, _, stop = raw_server("HTTP/1.1 200 OK\r\n"
      .. table.concat(lines, "\r\n") .. "\r\nContent-Length: 2\r\n\r\nok")
    assert.same({nil, "bad response: headers too large (limit 300 KiB)"},
      {http.get(url)})
    stop()
    local heads
    url, heads, stop = raw_server()
    assert.same({nil, "request too large (limit 1 MiB for the request line "
      .. "and headers)"}, {http.get(url .. "/?" .. ("q"):rep(2 ^ 21))})
    local h = {["X-Big"] = ("y"):rep(2 ^ 21)}
    assert.same({nil, "request too large (limit 1 MiB for the request line "
      .. "and headers)"}, {http.get(url, {headers = h})})
    assert.are.equal(0, #heads)
    stop()
  end)

  it("keeps the capitals of curl's messages that start with an acronym",
     function()
    assert.same({nil, "URL using bad/illegal format or missing URL"},
      {http.get("http://[::1/")})
    assert.same({nil, "could not resolve host: netsh.invalid"},
      {http.get("http://netsh.invalid/")})
  end)

  it("a malformed status line is an error", function()
    local res, err = http.get(O .. "/malformed")
    assert.is_nil(res)
    assert.matches("^bad response: ", err)
  end)

  it("a server closing mid-body is an error, not a short body", function()
    local res, err = http.get(O .. "/closemid")
    assert.is_nil(res)
    assert.are.equal(
      "closed: transfer closed with 99000 bytes remaining to read", err)
  end)
end)

describe("responses", function()
  it("chunked bodies", function()
    local res = assert(http.get(O .. "/chunked?n=10&size=1000"))
    assert.are.equal(10000, #res.body)
    assert.are.equal(("a"):rep(1000), res.body:sub(1, 1000))
    assert.are.equal(("j"):rep(1000), res.body:sub(9001))
    assert.are.equal("chunked", res.headers["transfer-encoding"])
  end)

  it("gzip is decoded, or left alone with decompress=false", function()
    local res = assert(http.get(O .. "/gzip"))
    assert.are.equal(("gzip works\n"):rep(1000), res.body)
    res = assert(http.get(O .. "/gzip", {decompress = false}))
    assert.are.equal("\31\139", res.body:sub(1, 2))
  end)

  it("caps decompression (bombs)", function()
    local res, err = http.get(O .. "/bomb?mb=16", {decompress = 1024 * 1024})
    assert.is_nil(res)
    assert.are.equal(
      "bad response: decompressed body too large (max 1048576 bytes)", err)
    local saved = http.MAX_DECODED
    http.MAX_DECODED = 4 * 1024 * 1024
    res, err = http.get(O .. "/bomb?mb=16")
    http.MAX_DECODED = saved
    assert.is_nil(res)
    assert.matches("^bad response: decompressed body too large", err)
  end)

  it("10 MB bodies", function()
    local res = assert(http.get(O .. "/big"))
    assert.are.equal(10 * 1024 * 1024, #res.body)
    assert.are.equal("\0\1\2", res.body:sub(1, 3))
    assert.are.equal(string.char(1000 % 251), res.body:sub(1001, 1001))
    local ngx = assert(http.get(H .. "/10m.bin"))
    assert.are.equal(slurp(dir .. "/www/10m.bin"), ngx.body)
  end)

  it("bad JSON gives nil and a clear message", function()
    local res = assert(http.get(O .. "/badjson"))
    local v, err = res:json()
    assert.is_nil(v)
    assert.matches("^invalid JSON: ", err)
    assert.are.equal("netsh", assert(assert(http.get(O .. "/json")):json())
      .name)
  end)

  it("HEAD, 204 and 304", function()
    local res = assert(http.head(O .. "/big"))
    assert.are.equal("10485760", res.headers["content-length"])
    assert.are.equal("", res.body)
    res = assert(http.get(O .. "/status/204"))
    assert.are.equal(204, res.status)
    assert.are.equal("No Content", res.reason)
    assert.is_true(res.ok)
    assert.are.equal("", res.body)
    res = assert(http.get(O .. "/status/304"))
    assert.are.equal(304, res.status)
    assert.is_false(res.ok)
    assert.are.equal("", res.body)
    assert.are.equal(500, assert(http.get(O .. "/status/500")).status)
  end)

  it("non-ASCII header bytes pass through", function()
    local res = assert(http.get(O .. "/nonascii"))
    assert.are.equal("caf\195\169 \226\152\131", res.headers["x-utf8"])
    assert.are.equal("caf\233", res.headers["X-Latin1"])
  end)

  it("repeated headers are kept", function()
    local res = assert(http.get(O .. "/repeat"))
    assert.are.equal("one, two", res.headers["x-multi"])
    assert.are.same({"a=1; Path=/", "b=2; Path=/"},
      res:header_values("Set-Cookie"))
    local n = 0
    for _, kv in ipairs(res.header_list) do
      if kv[1] == "X-Multi" then n = n + 1 end
    end
    assert.are.equal(2, n)
  end)
end)

describe("streaming", function()
  it("chunks() holds a bounded buffer", function()
    local size = 20 * 1024 * 1024
    local res = assert(http.request("GET", O .. "/big?size=" .. size,
      {stream = true, chunk_size = 64 * 1024}))
    assert.are.equal(200, res.status)
    assert.is_nil(res.body)
    local total, biggest, n = 0, 0, 0
    for chunk in res:chunks() do
      total = total + #chunk
      if #chunk > biggest then biggest = #chunk end
      n = n + 1
      if n % 16 == 0 then sleep(0.001) end   -- a slow reader
    end
    assert.are.equal(size, total)
    -- the buffer may pass chunk_size by one curl write (<= 16 KB here)
    assert.is_true(biggest <= 64 * 1024 + 64 * 1024)
    assert.are.equal(0, settled().handles)
  end)

  it("lines() splits across chunk boundaries", function()
    local res = assert(http.request("GET", O .. "/lines?n=100",
      {stream = true}))
    local lines = {}
    for l in res:lines() do lines[#lines + 1] = l end
    assert.are.equal(100, #lines)
    assert.are.equal("line 0", lines[1])
    assert.are.equal("line 99", lines[100])
  end)

  it("delivers data as it arrives; timeout bounds each wait", function()
    local res = assert(http.request("GET", O .. "/slowbody?n=3&delay=1",
      {stream = true, timeout = 0.4}))
    assert.are.equal("tick 0\n", res:read())
    local chunk, err = res:read()
    assert.is_nil(chunk)
    assert.are.equal("timeout", err)
  end)

  it("a stream cut mid-body raises in chunks()", function()
    local res = assert(http.request("GET", O .. "/closemid",
      {stream = true}))
    local ok, err = pcall(function()
      for _ in res:chunks() do end
    end)
    assert.is_false(ok)
    assert.matches("closed: transfer closed with 99000 bytes", err, 1, true)
  end)

  it("close() and GC stop a stream early", function()
    local res = assert(http.request("GET", O .. "/big?size=50000000",
      {stream = true, chunk_size = 16384}))
    assert.is_string(res:read())
    res:close()
    assert.are.equal(0, core.stats().handles)
    res = assert(http.request("GET", O .. "/big?size=50000000",
      {stream = true, chunk_size = 16384}))
    assert.is_string(res:read())
    res = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(0, core.stats().handles)
  end)
end)

describe("download", function()
  it("writes atomically with progress", function()
    local path = dir .. "/dl.bin"
    local calls, last_done, last_total = 0, 0, nil
    local res, err = http.download(H .. "/10m.bin", path, {
      progress = function(done, total)
        calls = calls + 1
        last_done, last_total = done, total
      end})
    assert.is_nil(err)
    assert.are.equal(10485760, res.size)
    assert.are.equal(10485760, last_done)
    assert.are.equal(10485760, last_total)
    assert.is_true(calls > 1)
    assert.is_true(slurp(path) == slurp(dir .. "/www/10m.bin"))
    assert.are.equal("", sh("ls " .. dir .. " | grep part || true"))
  end)

  it("draws a progress bar when stderr is a terminal, not otherwise",
     function()
    -- script(1) runs netsh on a pseudo-terminal; the bar goes to stderr
    local code = 'assert(http.download("' .. H .. '/10m.bin", "' .. dir ..
      '/bar.bin")); io.write("ok\\n")'
    local out = sh("script -qec '" .. NETSH .. " -e " .. ("%q"):format(code)
      .. "' /dev/null")
    assert.truthy(out:find("[" .. ("#"):rep(30) .. "] 100% 10.0 MB / 10.0 MB",
      1, true), out)
    assert.truthy(out:find("ok", 1, true), out)
    -- not a terminal: nothing on stderr
    out = sh(NETSH .. " -e " .. ("%q"):format(code) .. " 2>&1 >/dev/null")
    assert.are.equal("", out)
  end)

  it("leaves the old file in place when the transfer fails", function()
    local path = dir .. "/keep.txt"
    local f = assert(io.open(path, "w"))
    f:write("old")
    f:close()
    local res, err = http.download(O .. "/closemid", path)
    assert.is_nil(res)
    assert.matches("^closed: ", err)
    assert.are.equal("old", slurp(path))
    res, err = http.download(H .. "/missing", path)
    assert.is_nil(res)
    assert.are.equal("http 404 Not Found", err)
    assert.are.equal("old", slurp(path))
    assert.are.equal("", sh("ls " .. dir .. " | grep part || true"))
  end)
end)

describe("download targets", function()
  local function is(test, path)
    return os.execute("test " .. test .. " " .. path) == true
  end

  it("writes through to a device or a FIFO, never replacing it", function()
    -- a copy of /dev/null (mknod needs root; without it, that part is
    -- skipped): the old code renamed a regular file over it
    local null = dir .. "/null"
    if os.execute("mknod " .. null .. " c 1 3 2>/dev/null") then
      local res = assert(http.download(H .. "/small.txt", null))
      assert.are.equal(17, res.size)
      assert.is_true(is("-c", null), "no longer a character device")
    end
    -- a FIFO with a reader: the body goes to the reader
    local fifo, out = dir .. "/fifo", dir .. "/fifo.out"
    assert(os.execute("mkfifo " .. fifo))
    os.execute("timeout 10 cat " .. fifo .. " > " .. out .. " &")
    local res, err
    for _ = 1, 100 do      -- until cat has opened it (a FIFO with no
      res, err = http.download(H .. "/small.txt", fifo)   -- reader fails)
      if res or err ~= "no such device or address" then break end
      sleep(0.05)
    end
    assert.is_nil(err)
    assert.is_true(is("-p", fifo), "no longer a FIFO")
    for _ = 1, 100 do
      if slurp(out) ~= "" then break end
      sleep(0.05)
    end
    assert.are.equal("hello from nginx\n", slurp(out))
    assert.are.equal("", sh("ls " .. dir .. " | grep part || true"))
  end)

  it("replaces a symlink's target atomically, keeping the link", function()
    local real, link = dir .. "/real.txt", dir .. "/link.txt"
    local f = assert(io.open(real, "w"))
    f:write("old")
    f:close()
    os.execute("chmod 640 " .. real .. " && ln -s real.txt " .. link)
    assert(http.download(H .. "/small.txt", link))
    assert.is_true(is("-L", link), "the link was replaced")
    assert.are.equal("hello from nginx\n", slurp(real))
    assert.are.equal("640\n", sh("stat -c %a " .. real))  -- mode kept
    -- a dangling link: its target is made
    os.execute("ln -s made.txt " .. dir .. "/dangling")
    assert(http.download(H .. "/small.txt", dir .. "/dangling"))
    assert.is_true(is("-L", dir .. "/dangling"))
    assert.are.equal("hello from nginx\n", slurp(dir .. "/made.txt"))
    assert.are.equal("", sh("ls " .. dir .. " | grep part || true"))
  end)

  it("to /dev/stdout shares the script's own output (>> appends)",
     function()
    local out = dir .. "/stdout.txt"
    local f = assert(io.open(out, "w"))
    f:write("old\n")
    f:close()
    local code = ("%q"):format('print("before") assert(http.download("'
      .. H .. '/small.txt", "/dev/stdout")) print("after")')
    sh(NETSH .. " -e " .. code .. " >> " .. out)
    assert.are.equal("old\nbefore\nhello from nginx\nafter\n", slurp(out))
    sh(NETSH .. " -e " .. code .. " > " .. out)
    assert.are.equal("before\nhello from nginx\nafter\n", slurp(out))
    assert.are.equal("before\nhello from nginx\nafter\n",
      sh(NETSH .. " -e " .. code .. " | cat"))
  end)

  it("300 concurrent downloads to one path: one complete copy", function()
    local src = dir .. "/www/mid.bin"
    assert(os.execute("head -c 262144 /dev/urandom > " .. src
      .. " && chmod 644 " .. src))
    local path = dir .. "/same.bin"
    local errs, tasks = {}, {}
    for i = 1, 300 do
      tasks[i] = spawn(function()
        local res, err = http.download(H .. "/mid.bin", path,
          {chunk_size = 4096})   -- many waits: the downloads overlap
        if not res then errs[#errs + 1] = err end
      end)
    end
    for _, t in ipairs(tasks) do t:join() end
    assert.same({}, errs)
    assert.is_true(slurp(path) == slurp(src))
    assert.are.equal("", sh("ls " .. dir .. " | grep part || true"))
  end)

  it("refuses a path with a NUL byte, which C would cut", function()
    assert.has_error(function()
      http.download(H .. "/small.txt", dir .. "/cut\0.txt")
    end, "bad argument #2 to 'download' (path must not contain a NUL byte)")
    assert.is_nil(slurp(dir .. "/cut"))
  end)
end)

describe("sessions", function()
  it("reuse connections (keep-alive), visibly", function()
    local s = http.session{timeout = 5}
    local ids = {}
    for i = 1, 5 do
      local res = assert(s:get(O .. "/conn"))
      ids[i] = res.body
      assert.are.equal(i > 1, res.reused)
    end
    for i = 2, 5 do assert.are.equal(ids[1], ids[i]) end
    assert.are.equal(5, s.requests)
    assert.are.equal(1, s.connections)
    -- a session keeps its own pool: a new one connects anew
    local s2 = http.session()
    local res = assert(s2:get(O .. "/conn"))
    assert.is_false(res.reused)
    assert.are_not.equal(ids[1], res.body)
    s:close()
    s2:close()
  end)

  it("carry cookies and default headers", function()
    local s = http.session{headers = {["X-Session"] = "yes", ["X-B"] = "1"}}
    assert(s:get(O .. "/setcookie?token=abc"))
    local e = assert(assert(s:get(O .. "/echo", {headers = {["x-b"] = "2"}}))
      :json())
    assert.are.equal("token=abc", e.headers.cookie)
    assert.are.equal("yes", e.headers["x-session"])
    assert.are.equal("2", e.headers["x-b"])
    local cookies = s:cookies()
    assert.are.equal(1, #cookies)
    assert.are.equal("token", cookies[1].name)
    assert.are.equal("abc", cookies[1].value)
    -- plain calls have no cookie jar
    e = assert(assert(http.get(O .. "/echo")):json())
    assert.is_nil(e.headers.cookie)
    s:close()
    assert.has_error(function() s:get(O .. "/echo") end, "session is closed")
  end)
end)

describe("reuse of handles and connections", function()
  local function echo(opts, method)
    local res = assert(http.request(method or "GET", O .. "/echo", opts))
    return assert(res:json())
  end

  it("a reused handle carries nothing over from the last request", function()
    echo()                                   -- fills the pool
    local before = core.stats().pooled
    assert.is_true(before >= 1)
    local e = echo({headers = {["X-Only-Once"] = "1"}, auth = {"u", "p"},
      json = {a = 1}}, "PATCH")
    assert.are.equal("PATCH", e.method)
    assert.are.equal("1", e.headers["x-only-once"])
    assert.truthy(e.headers.authorization)
    assert.are.equal(before, core.stats().pooled)   -- taken and given back
    -- calls without options share one spec, and their handles are taken
    -- as they were set up: the method still has to be the one asked for
    for _, m in ipairs{"get", "post", "get", "put", "delete", "get",
                       "patch", "options", "get"} do
      e = assert(assert(http[m](O .. "/echo?m=" .. m)):json())
      assert.are.equal(m:upper(), e.method)
      assert.are.equal("m=" .. m, e.query)
      assert.are.equal("", e.body)
      assert.are.equal(before, core.stats().pooled)
    end
    local h = assert(http.head(O .. "/echo"))
    assert.are.equal(200, h.status)
    assert.are.equal("", h.body)
    e = echo()
    assert.are.equal("GET", e.method)
    assert.is_nil(e.headers["x-only-once"])
    assert.is_nil(e.headers.authorization)
    assert.is_nil(e.headers["content-type"])
    assert.are.equal("", e.body)
    -- a timeout, max_size or follow=false set once does not stick
    local res, err = http.get(O .. "/slow?delay=1", {timeout = 0.2})
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.are.equal(302, assert(http.get(O .. "/redirect/1",
      {follow = false})).status)
    assert.is_nil(http.get(H .. "/small.txt", {max_size = 4}))
    assert.are.equal("slow\n", assert(http.get(O .. "/slow?delay=0.4")).body)
    assert.are.equal("done\n", assert(http.get(O .. "/redirect/1")).body)
    assert.are.equal("hello from nginx\n",
      assert(http.get(H .. "/small.txt")).body)
  end)

  it("cookies never leak from one plain call to another", function()
    assert(http.get(O .. "/setcookie?leak=1", {cookies = true}))
    local e = echo({cookies = true})
    assert.is_nil(e.headers.cookie)
    local s = http.session()
    assert(s:get(O .. "/setcookie?mine=1"))
    local res = assert(s:get(O .. "/echo", {cookies = false}))
    assert.is_nil(res:json().headers.cookie)
    res = assert(s:get(O .. "/echo"))
    assert.are.equal("mine=1", res:json().headers.cookie)
    s:close()
  end)

  it("an idle connection the server closes costs no CPU and is replaced",
     function()
    local s = http.session()
    local first = assert(s:get(O .. "/closeafter?delay=0.1")).body
    assert.are.equal(0, settled().handles)
    local c0 = os.clock()
    sleep(0.6)                 -- the server hangs up meanwhile
    local cpu = os.clock() - c0
    assert.is_true(cpu < 0.2, "spent " .. cpu .. " s of CPU while idle")
    local res = assert(s:get(O .. "/conn"))
    assert.is_false(res.reused)
    assert.are_not.equal(first, res.body)
    assert.are.equal(2, s.connections)
    assert.are.equal(0, core.stats().polls)
    s:close()
  end)

  it("a socket that gets a closed connection's number works", function()
    local socket = require "socket"
    for _ = 1, 3 do
      local s = http.session()
      assert(s:get(O .. "/conn"))
      s:close()                -- closes the kept-alive connection
      local c = assert(socket.connect("127.0.0.1", tonumber(O:match(":(%d+)$"))))
      c:settimeout(5)
      assert(c:send("GET /conn HTTP/1.1\r\nHost: x\r\n" ..
        "Connection: close\r\n\r\n"))
      local all = assert(c:receive("*a"))
      assert.truthy(all:match("^HTTP/1.1 200"))
      c:close()
    end
    assert.are.equal(0, core.stats().polls)
  end)

  it("idle kept-alive connections keep nothing waiting", function()
    -- with nothing else to wait for, a task stuck on a cond is a deadlock,
    -- reported at once: the idle connections' watchers do not count
    local t0 = task.now()
    local out, ok = sh("timeout 10 " .. NETSH .. " -e 'local s = " ..
      "http.session(); assert(s:get(\"" .. O .. "/conn\")); " ..
      "assert(http.get(\"" .. H .. "/small.txt\")); print(\"done\"); " ..
      "task.cond():wait()' 2>&1")
    assert.is_falsy(ok)
    assert.truthy(out:match("^done\n.*deadlock"), out)
    assert.is_true(task.now() - t0 < 5)
  end)
end)

describe("concurrency", function()
  local function threads()
    local pid = slurp("/proc/self/stat"):match("^(%d+)")
    return tonumber(sh("ls /proc/" .. pid .. "/task | wc -l"):match("%d+"))
  end

  it("200 concurrent requests from one script, one thread", function()
    local N = 200
    local done, ok, nthreads = 0, 0, 0
    local errors, tasks = {}, {}
    for i = 1, N do
      tasks[i] = spawn(function()
        local res, err = http.get(H .. "/small.txt", {timeout = 30})
        done = done + 1     -- plain increments: no other thread runs Lua
        if res and res.status == 200 and res.body == "hello from nginx\n" then
          ok = ok + 1
        else
          errors[#errors + 1] = err or tostring(res)
        end
        if i == N // 2 then nthreads = threads() end
      end)
    end
    for _, t in ipairs(tasks) do t:join() end
    assert.are.equal(N, done)
    assert.are.equal("", table.concat(errors, "; "))
    assert.are.equal(N, ok)
    assert.are.equal(1, nthreads)      -- no thread besides the loop's
    assert.are.equal(0, settled().handles)
  end)

  it("200 slow requests overlap: 0.5 s each, ~0.5 s in all", function()
    local N = 200
    local inflight, peak, ok = 0, 0, 0
    local tasks = {}
    local t0 = task.now()
    for i = 1, N do
      tasks[i] = spawn(function()
        inflight = inflight + 1
        if inflight > peak then peak = inflight end
        local res = http.get(O .. "/slow?delay=0.5&i=" .. i, {timeout = 30})
        inflight = inflight - 1
        if res and res.status == 200 then ok = ok + 1 end
      end)
    end
    for _, t in ipairs(tasks) do t:join() end
    local elapsed = task.now() - t0
    assert.are.equal(N, ok)
    assert.are.equal(N, peak)          -- all were in flight at once
    assert.is_true(elapsed < 10, "took " .. elapsed .. " s")  -- not 100 s
    assert.are.equal(0, settled().handles)
  end)
end)

describe("socket.http compatibility", function()
  local lhttp = require "socket.http"

  it("request(url) -> body, code, headers, status", function()
    local body, code, headers, status = lhttp.request(H .. "/small.txt")
    assert.are.equal("hello from nginx\n", body)
    assert.are.equal(200, code)
    assert.are.equal("17", headers["content-length"])
    assert.are.equal("HTTP/1.1 200 OK", status)
    local e = (require "cjson").decode((lhttp.request(O .. "/echo", "a=1")))
    assert.are.equal("POST", e.method)
    assert.are.equal("a=1", e.body)
    assert.are.equal("application/x-www-form-urlencoded",
      e.headers["content-type"])
    local r, err = lhttp.request("http://127.0.0.1:1/")
    assert.is_nil(r)
    assert.are.equal("connection refused", err)
  end)

  it("request{url, sink, method, headers, source}", function()
    local parts = {}
    local one, code, headers = lhttp.request{
      url = O .. "/echo", method = "PUT",
      headers = {["X-Lua"] = "socket"},
      source = (function()
        local t = {"ab", "cd"}
        return function() return table.remove(t, 1) end
      end)(),
      sink = function(chunk)
        if chunk then parts[#parts + 1] = chunk end
        return 1
      end,
    }
    assert.are.equal(1, one)
    assert.are.equal(200, code)
    assert.are.equal("application/json", headers["content-type"])
    local e = (require "cjson").decode(table.concat(parts))
    assert.are.equal("PUT", e.method)
    assert.are.equal("abcd", e.body)
    assert.are.equal("socket", e.headers["x-lua"])
  end)
end)

describe("examples and scripts", function()
  it("examples/http_requests.lua", function()
    local out, ok = sh(NETSH .. " " .. SRC .. "/examples/http_requests.lua "
      .. H .. "/small.txt " .. O .. "/echo 2>&1")
    assert.is_true(ok)
    assert.matches("<http 200 OK 17 B", out, 1, true)
    assert.matches("HTTP/1.1 200 OK", out, 1, true)
    assert.matches("hello from nginx", out, 1, true)
    assert.matches("JSON keys: args, body, conn, headers", out, 1, true)
    assert.matches("POST " .. O .. "/echo -> <http 200 OK", out, 1, true)
  end)

  it("examples/http_get_raw.lua (needs the socket module)", function()
    local has_socket = pcall(require, "socket.core")
    if not has_socket then
      pending("socket module not merged yet")
      return
    end
    local port = H:match(":(%d+)$")
    local out, ok = sh(NETSH .. " " .. SRC .. "/examples/http_get_raw.lua "
      .. "127.0.0.1 " .. port .. " /small.txt 2>&1")
    assert.is_true(ok)
    assert.matches("^HTTP/1.1 200 OK\r\n", out)
    assert.matches("\r\n\r\nhello from nginx\n$", out)
  end)

  it("scripts/http_check.lua: exit codes, plain and JSON, stdin", function()
    local check = NETSH .. " " .. SRC .. "/scripts/http_check.lua "
    local out, ok, code = sh(check .. "-c 4 " .. H .. "/small.txt "
      .. H .. "/data.json --contains nginx")
    assert.is_true(ok, out)
    assert.are.equal(0, code)
    assert.matches("ok   200", out, 1, true)
    out, ok, code = sh(check .. "--json " .. H .. "/small.txt "
      .. H .. "/missing " .. O .. "/slow?delay=2 --timeout 0.3")
    assert.are.equal(1, code)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local r = (require "cjson").decode(line)
      assert.are.equal("http_check", r.tool)   -- the envelope
      if r.target:find("missing") then
        assert.are.equal(404, r.status)
        assert.is_false(r.ok)
      elseif r.target:find("slow") then
        assert.is_false(r.ok)
        assert.are.equal("timeout", r.err)
      else
        assert.is_true(r.ok)
        assert.are.equal(r.err, (require "cjson").null)
      end
    end
    assert.are.equal(3, n)
    out, ok, code = sh("printf '" .. H .. "/small.txt\\n# x\\n\\n" .. H
      .. "/data.json\\n' | " .. check .. "--expect-status 2xx")
    assert.are.equal(0, code)
    local lines = select(2, out:gsub("\n", ""))
    assert.are.equal(2, lines)
    out, ok, code = sh(check .. "--expect-status 404 " .. H .. "/small.txt")
    assert.are.equal(1, code)
    out, ok, code = sh(check .. "--unix-socket " .. dir .. "/nginx.sock "
      .. "http://localhost/small.txt")
    assert.are.equal(0, code, out)
    assert.matches("ok   200", out, 1, true)
    out, ok, code = sh(check .. "--help")
    assert.are.equal(0, code)
    assert.matches("usage: http_check [options] URL...", out, 1, true)
    out, ok, code = sh(check .. "--bogus 2>&1")
    assert.are.equal(2, code)
  end)
end)
