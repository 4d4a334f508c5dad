-- http_serve_script_spec.lua -- scripts/http_serve.lua (netsh -m
-- http_serve) run as its own process on a temporary directory: listings,
-- index.html, MIME types, ranges, conditional requests, HEAD, the access
-- log, and path traversal attempts (.., %2e%2e, encoded slashes, NUL,
-- symlinks leading out of the root), all on 127.0.0.1.
local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")
local task = require "task"

local dir, logf, pid, port

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/root/sub " .. dir .. "/secret"))
  write(dir .. "/root/a.txt", "hello file\n")
  write(dir .. "/root/page.html", "<p>x</p>")
  write(dir .. "/root/data.json", "{}")
  write(dir .. "/root/sub/index.html", "<h1>index</h1>")
  write(dir .. "/root/big.bin", ("0123456789"):rep(20000))
  write(dir .. "/root/<odd> & name.txt", "odd")
  write(dir .. "/secret/passwd", "SECRET")
  assert(os.execute("ln -s " .. dir .. "/secret/passwd " .. dir
    .. "/root/link-out && ln -s " .. dir .. "/secret " .. dir
    .. "/root/dir-out && ln -s a.txt " .. dir .. "/root/link-in"))
  logf = dir .. "/log"
  os.execute(NETSH .. " -m http_serve " .. dir .. "/root --port 0 --json 2>"
    .. logf .. " & echo $! >" .. dir .. "/pid")
  local deadline = task.now() + 10
  repeat
    sleep(0.05)
    port = (slurp(logf) or ""):match("http://127%.0%.0%.1:(%d+)/")
  until port or task.now() > deadline
  assert(port, "http_serve did not start: " .. (slurp(logf) or ""))
  pid = slurp(dir .. "/pid"):match("%d+")
end)

teardown(function()
  if pid then os.execute("kill " .. pid) end
  if dir then os.execute("rm -rf " .. dir) end
end)

local function url(p) return "http://127.0.0.1:" .. port .. p end

-- a raw request (no client normalises the path): status, body
local function raw(target)
  local c = assert(socket.connect("127.0.0.1", tonumber(port)))
  c:settimeout(5)
  c:send("GET " .. target .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  local all = c:receive("*a")
  c:close()
  return tonumber(all:match("^HTTP/1%.1 (%d+)")), all:match("\r\n\r\n(.*)$")
end

describe("http_serve", function()
  it("serves files with their MIME type, and HEAD", function()
    local res = http.get(url("/a.txt"))
    assert.equal(200, res.status)
    assert.equal("hello file\n", res.body)
    assert.equal("text/plain; charset=utf-8", res.headers["content-type"])
    assert.equal("text/html; charset=utf-8",
      http.get(url("/page.html")).headers["content-type"])
    assert.equal("application/json",
      http.get(url("/data.json")).headers["content-type"])
    res = http.head(url("/big.bin"))
    assert.equal("200000", res.headers["content-length"])
    assert.equal("", res.body)
    assert.equal(("0123456789"):rep(20000), http.get(url("/big.bin")).body)
  end)

  it("lists directories (names escaped), serves index.html, redirects "
    .. "a directory without its slash", function()
    local res = http.get(url("/"))
    assert.equal(200, res.status)
    assert.truthy(res.body:find('<a href="a.txt">a.txt</a>', 1, true))
    assert.truthy(res.body:find('<a href="sub/">sub/</a>', 1, true))
    assert.truthy(res.body:find("&lt;odd&gt; &amp; name.txt", 1, true))
    assert.falsy(res.body:find("<odd>", 1, true))
    assert.equal("<h1>index</h1>", http.get(url("/sub/")).body)
    res = http.get(url("/sub"), {follow = false})
    assert.equal(301, res.status)
    assert.equal("/sub/", res.headers["location"])
  end)

  it("answers ranges with 206 and 416", function()
    local res = http.get(url("/a.txt"), {headers = {Range = "bytes=0-4"}})
    assert.equal(206, res.status)
    assert.equal("hello", res.body)
    assert.equal("bytes 0-4/11", res.headers["content-range"])
    res = http.get(url("/a.txt"), {headers = {Range = "bytes=-5"}})
    assert.equal("file\n", res.body)
    res = http.get(url("/big.bin"), {headers = {Range = "bytes=100000-"}})
    assert.equal(206, res.status)
    assert.equal(100000, #res.body)
    res = http.get(url("/a.txt"), {headers = {Range = "bytes=50-60"}})
    assert.equal(416, res.status)
    assert.equal("bytes */11", res.headers["content-range"])
  end)

  it("answers If-None-Match and If-Modified-Since with 304", function()
    local res = http.get(url("/a.txt"))
    local etag, lm = res.headers["etag"], res.headers["last-modified"]
    assert.truthy(etag and lm)
    res = http.get(url("/a.txt"), {headers = {["If-None-Match"] = etag}})
    assert.equal(304, res.status)
    assert.equal("", res.body)
    res = http.get(url("/a.txt"), {headers = {["If-Modified-Since"] = lm}})
    assert.equal(304, res.status)
    res = http.get(url("/a.txt"), {headers = {["If-None-Match"] = '"x"'}})
    assert.equal(200, res.status)
  end)

  it("never serves a byte outside the root", function()
    for _, target in ipairs{"/../secret/passwd", "/sub/../../secret/passwd",
        "/%2e%2e/secret/passwd", "/%2E%2E/secret/passwd",
        "/sub/%2e%2e/%2e%2e/secret/passwd", "/..%2fsecret%2fpasswd",
        "/link-out", "/dir-out/passwd", "/dir-out/", "/a.txt%00.html",
        "/..\\secret\\passwd", "//etc/passwd", "/%2fetc%2fpasswd"} do
      local status, body = raw(target)
      assert.truthy(status == 403 or status == 404 or status == 400,
        target .. " gave " .. tostring(status))
      assert.falsy((body or ""):find("SECRET", 1, true), target)
      assert.falsy((body or ""):find("root:", 1, true), target)
    end
    -- a symlink inside the root to a file inside it is fine
    assert.equal(200, (raw("/link-in")))
  end)

  it("refuses other methods with 405", function()
    local res = http.post(url("/a.txt"), {body = "x"})
    assert.equal(405, res.status)
    assert.equal("GET, HEAD", res.headers["allow"])
  end)

  it("logs one JSON line per request on stderr", function()
    http.get(url("/a.txt?log=1"))
    sleep(0.1)
    local found
    for line in (slurp(logf) or ""):gmatch("[^\n]+") do
      if line:find('"target":"/a.txt?log=1"', 1, true) then
        found = json.decode(line)
      end
    end
    assert.truthy(found)
    assert.equal(200, found.status)
    assert.equal(11, found.bytes)
    assert.equal("GET", found.method)
    assert.equal("127.0.0.1", found.ip)
    assert.equal("http_serve", found.tool)            -- the envelope
    assert.equal(true, found.ok)
    assert.is_string(found.ts)
  end)

  it("stops with exit 0 on Ctrl-C (SIGINT)", function()
    local p = assert(io.popen("sh -c '" .. NETSH .. " -m http_serve " .. dir
      .. "/root --port 0 -q 2>/dev/null & p=$!; sleep 0.5; kill -INT $p; "
      .. "wait $p; echo rc=$?'"))
    local out = p:read("a")
    p:close()
    assert.equal("rc=0\n", out)
  end)

  it("examples/http_server.lua: the JSON API and its client", function()
    local p = assert(io.popen(NETSH .. " " .. SRC .. "/examples/http_server.lua"))
    local out = p:read("a")
    assert.truthy(p:close())
    -- status, then the body (JSON: key order is free)
    local got = {}
    for line in out:gmatch("[^\n]+") do
      local fields = {}
      for f in line:gmatch("[^\t]+") do fields[#fields + 1] = f end
      local last = fields[#fields]
      if last:match("^[%[{]") then fields[#fields] = json.decode(last) end
      got[#got + 1] = fields
    end
    assert.same({
      {"201", "/notes/1", {id = 1, text = "buy milk"}},
      {"201", {id = 2, text = "call Bob"}},
      {"200", "buy milk"},
      {"200", {{id = 1, text = "buy milk"}, {id = 2, text = "call Bob"}}},
      {"404", {error = "no such note"}},
      {"400"},
    }, got)
  end)
end)
