-- http_fast_spec.lua -- the http client's own HTTP/1.1 path
-- (lua/http/fast.lua) against libcurl's: every request of a matrix is made
-- twice, with http.engine = "auto" (the fast path where it applies) and
-- http.engine = "curl", and the two outcomes must be the same, field by
-- field (timings excepted): status, reason, status line, version, final
-- URL, redirects, headers, body, size, ok, or the error string. The
-- peers: tests/support/http_oddities.py and raw netsh servers here, on
-- 127.0.0.1 only. Also what the request looks like on the wire (the same
-- bytes), cookies landing in a session's jar, connection reuse, stale
-- kept-alive connections and the parser's own refusals.
local http = require "http"
local fast = require "http.fast"
local parser = require "http.parser"

local SRC = os.getenv("NETSH_SRC") or "."
package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
local oddities = require "oddities"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local dir, O, odd_pid

setup(function()
  local p = assert(io.popen("mktemp -d /tmp/netsh-fast.XXXXXX"))
  dir = p:read("a"):gsub("%s+$", "")
  p:close()
  O, odd_pid = oddities.start(dir)
end)

teardown(function()
  oddities.stop(odd_pid)
  if dir then os.execute("rm -rf " .. dir) end
  http.engine = "auto"
end)

-- raw_server(routes) -> url, log, stop: tests/spec/helpers/raw_http.lua
local raw_server = require("raw_http").server

-- The fields compared (timings, ip and ports aside; reused and connects
-- depend on each engine's own pool: compared where the pool is known).
local FIELDS = {"status", "reason", "status_line", "http_version", "url",
  "redirects", "size", "body", "ok", "method"}

local function outcome(res, err)
  if not res then return {error = err} end
  local o = {}
  for _, k in ipairs(FIELDS) do o[k] = res[k] end
  -- /echo says which connection it came on: each engine has its own
  o.body = o.body:gsub('"conn": %d+', '"conn": 0')
  local h = {}
  for k, v in pairs(res.headers) do
    if k ~= "date" and k ~= "x-conn" then h[k] = v end
  end
  o.headers = h
  local list = {}
  for _, kv in ipairs(res.header_list) do
    local k = kv[1]:lower()
    if k ~= "date" and k ~= "x-conn" then list[#list + 1] = kv end
  end
  o.header_list = list
  return o
end

-- Runs f once per engine; returns both outcomes and whether the fast path
-- served the first.
local function both(f)
  http.engine = "auto"
  local before = fast.served
  local a = outcome(f())
  local served = fast.served > before
  http.engine = "curl"
  local b = outcome(f())
  http.engine = "auto"
  return a, b, served
end

local function same(f, want_fast)
  local a, b, served = both(f)
  assert.same(b, a)
  if want_fast ~= nil then assert.are.equal(want_fast, served) end
  return a
end

describe("the fast path and libcurl answer alike", function()
  it("GET, HEAD, params, headers, basic auth", function()
    same(function() return http.get(O .. "/echo") end, true)
    same(function() return http.get(O .. "/echo", {params = {a = 1,
      b = {"x", "y z"}}}) end, true)
    same(function() return http.head(O .. "/echo") end, true)
    same(function() return http.get(O .. "/echo", {headers = {
      ["X-A"] = "1", Accept = "text/plain", ["X-Empty"] = ""}}) end, true)
    same(function() return http.get(O .. "/echo", {auth = {"user",
      "p:ss"}}) end, true)
    same(function() return http.get(O) end, true)
    same(function() return http.get(O .. "/json#frag") end, true)
  end)

  it("methods with bodies (follow = false; with it, libcurl's)", function()
    for _, m in ipairs{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} do
      same(function() return http.request(m, O .. "/echo",
        {body = "a=1&b=2", follow = false}) end, true)
      same(function() return http.request(m, O .. "/echo",
        {json = {k = "v"}, follow = false}) end, true)
      same(function() return http.request(m, O .. "/echo",
        {follow = false}) end, true)
    end
    same(function() return http.post(O .. "/echo", {form = {q = "x y"}})
    end, false)
    local big = ("0123456789"):rep(30000)
    same(function() return http.put(O .. "/echo", {body = big,
      follow = false}) end, true)
  end)

  it("bodies: chunked, gzip, big, empty statuses, odd headers", function()
    for _, path in ipairs{"/chunked?n=5&size=100", "/lines?n=50",
        "/gzip", "/gzipbig?mb=1", "/big?size=300000", "/status/204",
        "/status/304", "/status/404", "/status/500", "/nonascii",
        "/repeat", "/json", "/badjson"} do
      same(function() return http.get(O .. path) end, true)
    end
    same(function() return http.get(O .. "/gzip", {decompress = false})
    end, true)
    same(function() return http.head(O .. "/big?size=1000") end, true)
  end)

  it("chunked trailer fields join the headers, as curl shows them",
     function()
    local url, _, stop = raw_server{
      default = function()
        return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
          .. "X-Head: 1\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: yes\r\n"
          .. "X-Sum: 9\r\n\r\n"
      end}
    local a = same(function() return http.get(url .. "/t") end, true)
    assert.are.equal("yes", a.headers["x-trailer"])
    assert.are.equal("9", a.headers["x-sum"])
    -- and none when there are none
    same(function() return http.get(O .. "/chunked?n=2&size=10") end, true)
    stop()
  end)

  it("redirects: 302 chains, loops, limits, follow = false", function()
    same(function() return http.get(O .. "/redirect/3") end, true)
    same(function() return http.head(O .. "/redirect/2") end, true)
    same(function() return http.get(O .. "/redirect/3", {follow = 2}) end)
    same(function() return http.get(O .. "/redirect/11") end)
    same(function() return http.get(O .. "/loop") end)
    same(function() return http.get(O .. "/redirect/3", {follow = false})
    end, true)
    same(function() return http.get(O .. "/tofile") end)
  end)

  it("redirects 301, 302, 303, 307, 308, relative and absolute",
     function()
    local url, _, stop
    url, _, stop = raw_server{
      default = function(head, _, path)
        local code, rest = path:match("^/r/(%d+)(.*)$")
        if code then
          local loc = rest ~= "" and rest or "/done"
          return "HTTP/1.1 " .. code .. " Moved\r\nLocation: " .. loc
            .. "\r\nContent-Length: 5\r\n\r\nmoved"
        end
        if path == "/who" then               -- the credentials it got
          path = path .. " " .. tostring(head:match("\r\n[Aa]uthorization:"
            .. " ([^\r]*)"))
        end
        return "HTTP/1.1 200 OK\r\nContent-Length: " .. #path .. "\r\n\r\n"
          .. path
      end}
    for _, code in ipairs{301, 302, 303, 307, 308} do
      same(function() return http.get(url .. "/r/" .. code) end, true)
      same(function() return http.head(url .. "/r/" .. code) end, true)
      same(function() return http.get(url .. "/r/" .. code .. "/a/b/../c?x=1")
      end)
      same(function() return http.post(url .. "/r/" .. code,
        {body = "x"}) end, false)
    end
    same(function() return http.get(url .. "/r/302" .. "/x/y") end, true)
    same(function() return http.get(url .. "/r/302" .. "rel/ative") end)
    same(function() return http.get(url .. "/r/302" .. url .. "/abs")
    end, true)
    -- credentials go to the first origin only (localhost is another)
    local other = url:gsub("127%.0%.0%.1", "localhost")
    same(function() return http.get(url .. "/r/302" .. other .. "/who",
      {auth = {"u", "p"}}) end)
    for _, a in ipairs{{"u", "p"}, {"a b", "p@ss:/"}} do
      same(function() return http.get(url .. "/r/302/who", {auth = a}) end,
        true)
      same(function() return http.get(url .. "/r/302" .. url .. "/who",
        {auth = a}) end, true)
      same(function() return http.get(url .. "/r/302/r/301/who",
        {auth = a}) end, true)
    end
    stop()
  end)

  it("peers: HTTP/1.0, read to close, Connection: close", function()
    local url, _, stop = raw_server{
      ["/10"] = function()
        return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold peer",
          "close"
      end,
      ["/10ka"] = function()
        return "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
          .. "Content-Length: 2\r\n\r\nka"
      end,
      ["/toclose"] = function()
        return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
          .. ("z"):rep(100000), "close"
      end,
      ["/close"] = function()
        return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
          .. "3\r\n\r\nbye", "close"
      end,
      ["/noreason"] = function()
        return "HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n"
      end,
      ["/lf"] = function()
        return "HTTP/1.1 200 OK\nX-Lf: yes\nContent-Length: 2\n\nlf"
      end,
      ["/bad2"] = function()
        return "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok", "close"
      end,
      ["/bad09"] = function()
        return "ICY 200 OK\r\nContent-Length: 2\r\n\r\nok", "close"
      end,
      ["/badcode"] = function()
        return "HTTP/1.1 20x OK\r\nContent-Length: 2\r\n\r\nok", "close"
      end,
      ["/bad12"] = function()
        return "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", "close"
      end,
      ["/bad0"] = function()
        return "HTTP/1.1 099 OK\r\nContent-Length: 2\r\n\r\nok", "close"
      end,
      ["/continue"] = function()
        return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
          .. "Content-Length: 2\r\n\r\nok"
      end,
      default = function()
        return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
      end}
    for _, p in ipairs{"/10", "/10ka", "/toclose", "/close", "/noreason",
        "/lf", "/continue", "/"} do
      same(function() return http.get(url .. p) end, true)
    end
    for _, p in ipairs{"/bad09", "/badcode", "/bad12", "/bad0"} do
      same(function() return http.get(url .. p) end, false)
    end
    -- the one known difference: curl 7.88 takes "HTTP/2 200" on an
    -- HTTP/1.1 connection for an HTTP/2 response; the fast path refuses it
    local a, b = both(function() return http.get(url .. "/bad2") end)
    assert.same({error = "bad response: unsupported HTTP version in "
      .. "response"}, a)
    assert.are.equal("2", b.http_version)
    stop()
  end)

  it("content codings: gzip, deflate (zlib and raw), zstd, chains, "
    .. "unknown and broken", function()
    local text = ("netsh fast path "):rep(500)
    local py = "import sys,zlib,gzip; t=sys.stdin.buffer.read(); "
      .. "d=zlib.compressobj(9, zlib.DEFLATED, -15); "
      .. "raw=d.compress(t)+d.flush(); open(sys.argv[1]+'/raw','wb')"
      .. ".write(raw); open(sys.argv[1]+'/zlib','wb').write(zlib.compress(t))"
      .. "; open(sys.argv[1]+'/gzip','wb').write(gzip.compress(t)); "
      .. "open(sys.argv[1]+'/gzgz','wb').write(gzip.compress(gzip.compress(t)))"
    local f = assert(io.popen("python3 -c \"" .. py .. "\" " .. dir, "w"))
    f:write(text)
    f:close()
    local zst = os.execute("zstd -q -c " .. dir .. "/zlib >/dev/null 2>&1")
      and os.execute("printf '%s' '" .. text .. "' | zstd -q -c > " .. dir
        .. "/zstd")
    local bodies = {
      ["/gzip"] = {"gzip", slurp(dir .. "/gzip")},
      ["/xgzip"] = {"x-gzip", slurp(dir .. "/gzip")},
      ["/zlib"] = {"deflate", slurp(dir .. "/zlib")},
      ["/raw"] = {"deflate", slurp(dir .. "/raw")},
      ["/gzgz"] = {"gzip, gzip", slurp(dir .. "/gzgz")},
      ["/ident"] = {"identity", text},
      ["/unknown"] = {"snappy", text},
      ["/broken"] = {"gzip", "\31\139garbage garbage garbage"},
      ["/zstd"] = zst and {"zstd", slurp(dir .. "/zstd")} or nil,
    }
    local url, _, stop = raw_server{
      default = function(_, _, path)
        local b = bodies[path]
        return "HTTP/1.1 200 OK\r\nContent-Encoding: " .. b[1]
          .. "\r\nContent-Length: " .. #b[2] .. "\r\n\r\n" .. b[2]
      end}
    for path in pairs(bodies) do
      local good = path ~= "/unknown" and path ~= "/broken"
      local a = same(function() return http.get(url .. path) end,
        good or nil)
      if good then
        assert.are.equal(text, a.body, path)
      end
    end
    same(function() return http.get(url .. "/gzip", {decompress = 100}) end)
    stop()
  end)

  it("failures: the same error strings", function()
    for _, path in ipairs{"/closemid", "/resetmid", "/resetchunk",
        "/malformed", "/cl/dup", "/cl/list", "/cl/junk", "/cl/neg",
        "/cl/huge", "/cl/te", "/cl/same", "/ctl/cr", "/ctl/bell",
        "/ctl/del", "/ctl/tab"} do
      same(function() return http.get(O .. path, {timeout = 10}) end)
    end
    same(function() return http.get(O .. "/slow?delay=2",
      {timeout = 0.3}) end)
    same(function() return http.get(O .. "/slowbody?n=5&delay=0.5",
      {timeout = 0.8}) end)
    -- a port nobody listens on
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    same(function() return http.get("http://127.0.0.1:" .. port .. "/")
    end)
    same(function() return http.get("http://netsh.invalid/") end)
  end)

  it("sends the same request bytes", function()
    local url, log, stop = raw_server{}
    local cases = {
      {"GET", "/a?b=c", nil},
      {"GET", "", nil},
      {"HEAD", "/h", nil},
      {"GET", "/p", {auth = {"u", "p"}, headers = {["X-Y"] = "z",
        Accept = "text/plain", ["User-Agent"] = false, ["X-E"] = ""}}},
      {"GET", "/p", {headers = {Host = "example.com"}}},
      {"GET", "/p", {decompress = false, user_agent = "agent/1"}},
      {"POST", "/p", {body = "hello", follow = false}},
      {"POST", "/p", {json = {a = 1}, follow = false}},
      {"PUT", "/p", {follow = false}},
      {"DELETE", "/p", {follow = false}},
      {"PATCH", "/p", {body = "x", headers = {["Content-Type"] =
        "text/plain"}, follow = false}},
    }
    for _, c in ipairs(cases) do
      http.engine = "auto"
      local before = fast.served
      assert(http.request(c[1], url .. c[2], c[3]))
      assert.are.equal(before + 1, fast.served)
      http.engine = "curl"
      assert(http.request(c[1], url .. c[2], c[3]))
      http.engine = "auto"
      assert.are.equal(log[#log], log[#log - 1])
    end
    stop()
  end)
end)

describe("sessions", function()
  it("reuse kept-alive connections as curl does", function()
    local counts = {}
    for _, engine in ipairs{"auto", "curl"} do
      http.engine = engine
      local s = http.session()
      local got = {}
      for i = 1, 3 do
        local res = assert(s:get(O .. "/conn"))
        got[i] = {res.connects, res.reused}
      end
      got.connections, got.requests = s.connections, s.requests
      s:close()
      counts[engine] = got
    end
    http.engine = "auto"
    assert.same(counts.curl, counts.auto)
    assert.same({1, false}, counts.auto[1])
    assert.same({0, true}, counts.auto[3])
  end)

  it("put Set-Cookie into the jar as curl does, then send them", function()
    local jars, sent = {}, {}
    for _, engine in ipairs{"auto", "curl"} do
      http.engine = engine
      local s = http.session()
      assert(s:get(O .. "/setcookie?k=v&a=b%20c"))
      local url = O .. "/echo"
      local res = assert(s:get(url))
      local cookies = s:cookies()
      table.sort(cookies, function(x, y) return x.name < y.name end)
      jars[engine] = cookies
      sent[engine] = assert(res:json()).headers.Cookie
      s:close()
    end
    http.engine = "auto"
    assert.are.equal(2, #jars.auto)
    assert.same(jars.curl, jars.auto)
    assert.are.equal(sent.curl, sent.auto)
  end)

  it("cookie attributes: path, max-age, expires, domain, httponly, "
    .. "secure", function()
    local values = {
      "a=1", "b=2; Path=/x/y", "c=3; Max-Age=3600", "d=4; Max-Age=0",
      "e=5; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
      "f=6; Expires=Wed, 21 Oct 2015 07:28:00 GMT", "g=7; HttpOnly",
      "h=8; Secure", "i=9; Domain=127.0.0.1", "j=10; Domain=example.com",
      "k = 11 ; Path = /", "__Secure-l=12", "m=13; path=rel",
    }
    local url, _, stop = raw_server{
      default = function(_, _, path)
        local i = tonumber(path:match("(%d+)$"))
        return "HTTP/1.1 200 OK\r\nSet-Cookie: " .. values[i]
          .. "\r\nContent-Length: 2\r\n\r\nok"
      end}
    for i = 1, #values do
      local jars = {}
      for _, engine in ipairs{"auto", "curl"} do
        http.engine = engine
        local s = http.session()
        assert(s:get(url .. "/dir/sub/page/" .. i))
        jars[engine] = s:cookies()
        for _, c in ipairs(jars[engine]) do
          if c.expires > 1 and c.expires - os.time() > 3000
              and c.expires - os.time() < 4000 then
            c.expires = "in an hour"       -- the second it was set
          end
        end
        s:close()
      end
      http.engine = "auto"
      assert.same(jars.curl, jars.auto, values[i])
    end
    stop()
  end)

  it("a kept-alive connection the server closed is replaced", function()
    for _, engine in ipairs{"auto", "curl"} do
      http.engine = engine
      local s = http.session()
      local a = assert(s:get(O .. "/closeafter?delay=0"))
      sleep(0.2)                          -- the server has closed it
      local b = assert(s:get(O .. "/conn"))
      assert.are_not.equal(a.body, b.body)
      assert.are.equal(200, b.status)
      -- a POST is never sent on it twice: polled before, dropped
      local c = assert(s:get(O .. "/closeafter?delay=0"))
      sleep(0.2)
      local d = assert(s:post(O .. "/echo", {body = "once",
        follow = false}))
      assert.are.equal("once", assert(d:json()).body)
      assert.are_not.equal(c.body, d.headers["x-conn"])
      s:close()
    end
    http.engine = "auto"
  end)
end)

describe("eligibility", function()
  it("leaves to libcurl what it cannot do the same", function()
    local n = fast.served
    assert(http.get(O .. "/echo", {http_version = "1.0"}))
    assert(http.get(O .. "/echo", {proxy = O}))
    assert(http.get(O .. "/echo", {max_size = 100000}))
    assert(http.get(O .. "/echo", {auth = {"u", "p", type = "digest"}}))
    local r = assert(http.get(O .. "/echo", {stream = true}))
    r:close()
    assert(http.get(O .. "/echo", {cookies = true}))
    assert(http.get(O .. "/echo/../echo"))      -- curl normalises
    assert(http.get(O:gsub("^http", "HTTP") .. "/echo"))
    assert.are.equal(n, fast.served)
    assert(http.get(O .. "/echo", {http_version = "1.1", proxy = false}))
    assert.are.equal(n + 1, fast.served)
  end)

  it("a plain GET does not load libcurl (6 ms of start-up)", function()
    local netsh = os.getenv("NETSH") or (SRC .. "/build/netsh")
    local p = io.popen(netsh .. " -e 'local http = require \"http\"; "
      .. "local r = assert(http.get(\"" .. O .. "/echo\")); "
      .. "print(r.status, package.loaded[\"http.core\"] == nil)' 2>&1")
    local out = p:read("a")
    p:close()
    assert.are.equal("200\ttrue\n", out)
  end)

  it("NETSH_HTTP_ENGINE=curl sends every request to libcurl", function()
    local netsh = os.getenv("NETSH") or (SRC .. "/build/netsh")
    local p = io.popen("NETSH_HTTP_ENGINE=curl " .. netsh .. " -e '"
      .. "local http = require \"http\"; assert(http.get(\"" .. O
      .. "/echo\")); print(http.engine, require(\"http.fast\").served)' "
      .. "2>&1")
    local out = p:read("a")
    p:close()
    assert.are.equal("curl\t0\n", out)
  end)
end)

describe("http.parser.response", function()
  local response = parser.response

  it("parses a head and says how the body is framed", function()
    local s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n"
      .. "Content-Encoding: gzip\r\nLocation: /x\r\nSet-Cookie: a=1\r\n"
      .. "Connection: keep-alive\r\n\r\nhello"
    local nx, st, minor, reason, head, clen, flags, enc, loc =
      response(s, 1)
    assert.are.equal(#s - 4, nx)
    assert.are.same({200, 1, "OK", 5, "gzip", "/x"},
      {st, minor, reason, clen, enc, loc})
    assert.are.equal(8 | 4, flags)
    assert.matches("^Content%-Length: 5\r\nX%-A:  b \r\n", head)
    assert.is_nil(response("HTTP/1.1 200 OK\r\nContent-Le", 1))
    nx, st, minor, reason, head, clen, flags =
      response("HTTP/1.0 404\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 1)
    assert.are.same({404, 0, "", -1, 1 | 16}, {st, minor, reason, clen,
      flags})
  end)

  it("refuses what RFC 9112 makes unrecoverable", function()
    local bad = {
      ["HTTP/2 200 OK\r\n\r\n"] =
        "bad response: unsupported HTTP version in response",
      ["HTTP/1.1 2000 OK\r\n\r\n"] =
        "bad response: unsupported response code in HTTP response",
      ["HTTP/1.1 20 OK\r\n\r\n"] =
        "bad response: unsupported response code in HTTP response",
      ["HTTP/1.2 200 OK\r\n\r\n"] =
        "bad response: unsupported HTTP version (1.2) in response",
      ["ICY 200 OK\r\n\r\n"] =
        "bad response: received HTTP/0.9 when not allowed",
      ["HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n"] =
        "bad response: obs-fold in header",
      ["HTTP/1.1 200 OK\r\nA: 1\r2\r\n\r\n"] =
        "bad response: control character in header",
      ["HTTP/1.1 200 OK\r\nA: \0\r\n\r\n"] =
        "bad response: control character in header",
      ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"]
        = "bad response: differing Content-Length values",
      ["HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"] =
        "bad response: differing Content-Length values",
      ["HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n"] =
        "bad response: invalid Content-Length",
      ["HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"] =
        "bad response: invalid Content-Length",
      ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"] =
        "bad response: invalid Content-Length: value",
      ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
        .. "chunked\r\n\r\n"] =
        "bad response: Content-Length with Transfer-Encoding",
    }
    for s, why in pairs(bad) do
      assert.same({false, why}, {response(s, 1)}, s)
    end
    -- every position of a line, on both sides of the parsers' 8-byte
    -- steps: a CTL or DEL refused, HTAB and obs-text taken
    local req = require("http.parser").request
    for _, len in ipairs({1, 7, 8, 9, 15, 16, 17, 40}) do
      for at = 1, len do
        for _, c in ipairs({"\0", "\1", "\31", "\127", "\t", "\128",
                            "\255", " "}) do
          local v = ("v"):rep(at - 1) .. c .. ("v"):rep(len - at)
          local good = c == "\t" or c == " " or c:byte() >= 128
          local r = {response("HTTP/1.1 200 OK\r\nX-Y: " .. v
            .. "\r\n\r\n", 1)}
          if good then
            assert.is_number(r[1], ("%q at %d of %d"):format(c, at, len))
          else
            assert.same({false, "bad response: control character in "
              .. "header"}, r, ("%q at %d of %d"):format(c, at, len))
          end
          local q = {req("GET / HTTP/1.1\r\nHost: a\r\nX-Y: " .. v
            .. "\r\n\r\n", 1, {})}
          if good then
            assert.is_number(q[1], ("request: %q at %d of %d"):format(c,
              at, len))
          else
            assert.same({false, 400, "control byte in field"}, q,
              ("request: %q at %d of %d"):format(c, at, len))
          end
        end
      end
    end
    assert.same({false, "bad response: header too large (limit 100 KiB)"},
      {response("HTTP/1.1 200 OK\r\nA: " .. ("x"):rep(110000), 1)})
    local many = {}
    for i = 1, 5 do many[i] = "A" .. i .. ": " .. ("x"):rep(90000) end
    assert.same({false, "bad response: headers too large (limit 300 KiB)"},
      {response("HTTP/1.1 200 OK\r\n" .. table.concat(many, "\r\n"), 1)})
  end)
end)
