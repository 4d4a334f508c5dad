-- http_strict_spec.lua -- the HTTP client against misbehaving servers
-- (tests/support/http_oddities.py on 127.0.0.1): responses RFC 9112 calls
-- unrecoverable are refused with "bad response: ...", compression bombs
-- fail early with bounded memory, and a reset mid-body is an error, never
-- a short body.
local http = require "http"
local shttp = require "socket.http"
local ltn12 = require "ltn12"

local SRC = os.getenv("NETSH_SRC") or "."
package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
local oddities = require "oddities"
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local dir, O, odd_pid

setup(function()
  dir = sh("mktemp -d /tmp/netsh-strict.XXXXXX"):gsub("%s+$", "")
  O, odd_pid = oddities.start(dir)
end)

teardown(function()
  oddities.stop(odd_pid)
  if dir then os.execute("rm -rf " .. dir) end
end)

local function get(path, opts)
  opts = opts or {}
  opts.timeout = opts.timeout or 20
  return http.get(O .. path, opts)
end

describe("Content-Length", function()
  it("differing values in two fields are refused", function()
    local res, err = get("/cl/dup")
    assert.is_nil(res)
    assert.are.equal("bad response: differing Content-Length values", err)
  end)

  it("a list of differing values is refused", function()
    local res, err = get("/cl/list")
    assert.is_nil(res)
    assert.are.equal("bad response: differing Content-Length values", err)
  end)

  it("identical values, as fields or a list, are merged", function()
    assert.are.equal("hello", assert(get("/cl/same")).body)
    assert.are.equal("hello", assert(get("/cl/samelist")).body)
  end)

  it("a value that is not a number is refused", function()
    local res, err = get("/cl/junk")
    assert.is_nil(res)
    assert.are.equal("bad response: invalid Content-Length", err)
    res, err = get("/cl/neg")
    assert.is_nil(res)
    assert.matches("^bad response: invalid Content%-Length", err)
  end)

  it("a value past 64 bits is refused", function()
    local res, err = get("/cl/huge")
    assert.is_nil(res)
    assert.are.equal("bad response: invalid Content-Length", err)
  end)

  it("Content-Length with Transfer-Encoding: chunked is refused", function()
    local res, err = get("/cl/te")
    assert.is_nil(res)
    assert.are.equal("bad response: Content-Length with Transfer-Encoding",
      err)
  end)

  it("is refused through socket.http and streams too", function()
    local body, err = shttp.request(O .. "/cl/dup")
    assert.is_nil(body)
    assert.are.equal("bad response: differing Content-Length values", err)
    local res
    res, err = http.request("GET", O .. "/cl/te", {stream = true,
      timeout = 10})
    assert.is_nil(res)
    assert.are.equal("bad response: Content-Length with Transfer-Encoding",
      err)
  end)
end)

describe("control bytes in header values", function()
  for _, case in ipairs{"cr", "bell", "esc", "vt", "del"} do
    it("refuses " .. case, function()
      local res, err = get("/ctl/" .. case)
      assert.is_nil(res)
      assert.are.equal("bad response: control character in header", err)
    end)
  end

  it("lets HTAB through", function()
    local res = assert(get("/ctl/tab"))
    assert.are.equal("a\tb", res.headers["x-odd"])
    assert.are.equal("ok\n", res.body)
  end)
end)

-- Runs code in a fresh netsh (its peak RSS is its own) and returns what
-- it printed: "<error> <peak growth in KiB>" per request.
local function in_child(code)
  local f = assert(io.open(dir .. "/child.lua", "w"))
  f:write([[
local http = require "http"
local O = ...
local function hwm()
  for l in io.lines("/proc/self/status") do
    local v = l:match("^VmHWM:%s*(%d+)")
    if v then return tonumber(v) end
  end
end
assert(http.get(O .. "/gzip"))       -- warm up: curl, zlib, buffers
local base = hwm()
local function report(err) print(tostring(err) .. "|" .. (hwm() - base)) end
]] .. code)
  f:close()
  return sh(NETSH .. " " .. dir .. "/child.lua " .. O .. " 2>&1")
end

describe("compression bombs (1 GiB of zeros)", function()
  local function check(out, n)
    local seen = 0
    for err, kib in out:gmatch("([^\n|]*)|(%d+)\n") do
      seen = seen + 1
      assert.are.equal("bad response: decompressed body too large "
        .. "(over 100 times the bytes received)", err)
      assert.is_true(tonumber(kib) < 64 * 1024, out)
    end
    assert.are.equal(n, seen, out)
  end

  it("gzip, deflate, br and chunked gzip fail early, memory bounded",
    function()
    local out = in_child([[
for _, enc in ipairs{"gzip", "deflate", "br", "chunkgzip"} do
  local res, err = http.get(O .. "/bomb1g/" .. enc, {timeout = 60})
  report(res and "no error" or err)
end
]])
    check(out, 4)
  end)

  it("fail the same way when streamed, memory bounded", function()
    local out = in_child([[
for _, enc in ipairs{"gzip", "deflate", "br", "chunkgzip"} do
  local res = assert(http.request("GET", O .. "/bomb1g/" .. enc,
    {stream = true, timeout = 60}))
  local chunk, err
  repeat chunk, err = res:read() until not chunk
  report(err or "no error")
end
]])
    check(out, 4)
  end)

  it("fail through download and socket.http", function()
    local path = dir .. "/bomb.out"
    local res, err = http.download(O .. "/bomb1g/gzip", path,
      {timeout = 60})
    assert.is_nil(res)
    assert.matches("^bad response: decompressed body too large", err)
    assert.is_nil(io.open(path))
    -- socket.http asks for no encoding and hands bytes over as they are
    local t = {}
    local ok = assert(shttp.request{url = O .. "/bomb1g/gzip",
      sink = ltn12.sink.table(t)})
    assert.are.equal(1, ok)
  end)

  it("max_ratio sets the ratio per request; false turns it off", function()
    local res, err = get("/bomb?mb=16", {max_ratio = 2000})
    assert.are.equal(16 * 1024 * 1024, #assert(res, err).body)
    res, err = get("/bomb?mb=16", {max_ratio = false})
    assert.are.equal(16 * 1024 * 1024, #assert(res, err).body)
    res, err = get("/gzipbig?mb=2", {max_ratio = 1.5})
    assert.is_nil(res)
    assert.are.equal("bad response: decompressed body too large "
      .. "(over 1.5 times the bytes received)", err)
    assert.has_error(function() http.get(O, {max_ratio = "x"}) end,
      "bad option 'max_ratio' (number or false expected, got string)")
  end)

  it("legitimate large bodies still decode, also past MAX_DECODED in "
    .. "streams", function()
    local res = assert(get("/gzipbig?mb=8"))
    assert.are.equal(8 * 1024 * 1024, #res.body)
    local saved = http.MAX_DECODED
    http.MAX_DECODED = 2 * 1024 * 1024
    local err
    res, err = get("/gzipbig?mb=8")
    assert.is_nil(res)
    assert.are.equal("bad response: decompressed body too large "
      .. "(max 2097152 bytes)", err)
    res = assert(http.request("GET", O .. "/gzipbig?mb=8",
      {stream = true, timeout = 20}))
    local n, chunk = 0, nil
    repeat
      chunk, err = res:read()
      n = n + #(chunk or "")
    until not chunk
    assert.is_nil(err)
    assert.are.equal(8 * 1024 * 1024, n)
    local path = dir .. "/big.out"
    res, err = http.download(O .. "/gzipbig?mb=8", path, {timeout = 20})
    http.MAX_DECODED = saved
    assert.is_truthy(res, err)
    assert.are.equal(8 * 1024 * 1024, res.size)
  end)
end)

describe("a reset in the middle of a body", function()
  local RESET = "closed: recv failure: Connection reset by peer"

  it("is an error through http, buffered and streamed", function()
    for _, path in ipairs{"/resetmid", "/resetchunk"} do
      local res, err = get(path)
      assert.is_nil(res)
      assert.are.equal(RESET, err)
      res = assert(http.request("GET", O .. path, {stream = true,
        timeout = 10}))
      local chunk, n = nil, 0
      repeat
        chunk, err = res:read()
        n = n + #(chunk or "")
      until not chunk
      assert.are.equal(RESET, err)
      assert.are.equal(1000, n)
    end
  end)

  it("is an error through socket.http, simple and with a sink", function()
    for _, path in ipairs{"/resetmid", "/resetchunk"} do
      local body, err = shttp.request(O .. path)
      assert.is_nil(body)
      assert.are.equal(RESET, err)
      local t = {}
      local ok
      ok, err = shttp.request{url = O .. path, sink = ltn12.sink.table(t)}
      assert.is_nil(ok)
      assert.are.equal(RESET, err)
    end
  end)

  it("is an error through download; the file is not created", function()
    local path = dir .. "/reset.out"
    local res, err = http.download(O .. "/resetmid", path)
    assert.is_nil(res)
    assert.are.equal(RESET, err)
    assert.is_nil(io.open(path))
  end)
end)
