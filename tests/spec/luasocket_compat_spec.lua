-- luasocket_compat_spec.lua -- the rest of LuaSocket's Lua surface:
-- ltn12 (filters, sources, sinks, pumps), socket.url, mime, socket.headers,
-- socket.sink/socket.source on real loopback TCP pairs, socket.http with
-- LTN12 sinks and sources against a one-request server in this file, and
-- the modules being embedded in the binary.
local ltn12 = require "ltn12"
local url = require "socket.url"
local mime = require "mime"
local socket = require "socket"

local NETSH = os.getenv("NETSH") or "build/netsh"
if NETSH:sub(1, 1) ~= "/" then NETSH = os.getenv("PWD") .. "/" .. NETSH end

-- all of src's data through snk with pump.all -> data | nil, err
local function drain(src)
  local t = {}
  local ok, err = ltn12.pump.all(src, (ltn12.sink.table(t)))
  if not ok then return nil, err end
  return table.concat(t)
end

-- runs f with ltn12.BLOCKSIZE = size
local function with_blocksize(size, f)
  local old = ltn12.BLOCKSIZE
  ltn12.BLOCKSIZE = size
  local ok, err = pcall(f)
  ltn12.BLOCKSIZE = old
  if not ok then error(err, 0) end
end

-- deterministic pseudo-random bytes
local function bytes(n, seed)
  local t, x = {}, seed or 1
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x >> 16 & 255)
  end
  return table.concat(t)
end

-- A filter that hands its output back 3 bytes at a time: it needs the
-- caller to ask again with "" (and with nil at the end) until it is done.
local function trickle()
  local buf, ended = "", false
  return function(chunk)
    if chunk == nil then ended = true else buf = buf .. chunk end
    if buf == "" then
      if ended then return nil end
      return ""
    end
    local out = buf:sub(1, 3)
    buf = buf:sub(4)
    return out
  end
end

local function upper()
  return ltn12.filter.cycle(function(ctx, chunk)
    if chunk == nil then return nil, ctx end
    return chunk:upper(), ctx
  end)
end

-- "a" -> "a+" (doubles the length: the filter after it sees more data)
local function plus()
  return ltn12.filter.cycle(function(ctx, chunk)
    if chunk == nil then return nil, ctx end
    return (chunk:gsub(".", "%0+")), ctx
  end)
end

describe("ltn12", function()
  it("has LuaSocket's version and block size", function()
    assert.are.equal("LTN12 1.0.3", ltn12._VERSION)
    assert.are.equal(2048, ltn12.BLOCKSIZE)
  end)

  it("pumps a string through chains of filters, any chunking", function()
    local data = ("hello, world. "):rep(40)
    local want = (data:upper():gsub(".", "%0+"))
    for _, size in ipairs{1, 2, 5, 64, 4096} do
      with_blocksize(size, function()
        -- as a source chain, with the filters in one chain or several
        local f = ltn12.filter.chain(trickle(), upper(), trickle(), plus(),
          trickle())
        assert.are.equal(want,
          drain(ltn12.source.chain(ltn12.source.string(data), f)))
        assert.are.equal(want, drain(ltn12.source.chain(
          ltn12.source.string(data), upper(), trickle(), plus())))
        -- as a sink chain
        local t = {}
        local snk = ltn12.sink.chain(trickle(), upper(), plus(),
          (ltn12.sink.table(t)))
        assert.are.equal(1,
          ltn12.pump.all(ltn12.source.string(data), snk))
        assert.are.equal(want, table.concat(t))
      end)
    end
  end)

  it("chained filters get every chunk then nil, and end with nil", function()
    local seen = {}
    local probe = function(chunk)
      seen[#seen + 1] = chunk == nil and "<nil>" or chunk
      return chunk
    end
    local f = ltn12.filter.chain(upper(), probe)
    assert.are.equal("AB", f("ab"))
    assert.are.equal("", f(""))
    assert.are.equal("C", f("c"))
    assert.are.equal("", f(""))
    assert.is_nil(f(nil))
    assert.are.same({"AB", "", "C", "", "<nil>"}, seen)
  end)

  it("cycle passes the context along and the extra argument", function()
    local calls = {}
    local f = ltn12.filter.cycle(function(ctx, chunk, extra)
      calls[#calls + 1] = extra
      if chunk == nil then return ("<%d>"):format(ctx), 0 end
      return ("[%d]%s"):format(ctx, chunk), ctx + #chunk
    end, 10, "x")
    assert.are.equal("[10]ab", f("ab"))
    assert.are.equal("[12]cde", f("cde"))
    assert.are.equal("<15>", f(nil))
    assert.are.same({"x", "x", "x"}, calls)
    assert.has_error(function() ltn12.filter.cycle(nil) end)
  end)

  it("sources: empty, error, string, table, cat", function()
    assert.is_nil(ltn12.source.empty()())
    local ok, err = ltn12.source.error("boom")()
    assert.is_nil(ok)
    assert.are.equal("boom", err)
    assert.is_nil(ltn12.source.string(nil)())
    assert.is_nil(ltn12.source.string("")())
    with_blocksize(3, function()
      local s = ltn12.source.string("abcdefg")
      assert.are.equal("abc", s())
      assert.are.equal("def", s())
      assert.are.equal("g", s())
      assert.is_nil(s())
    end)
    local t = ltn12.source.table{"x", "y"}
    assert.are.equal("x", t())
    assert.are.equal("y", t())
    assert.is_nil(t())
    assert.are.equal("onetwothree", drain(ltn12.source.cat(
      ltn12.source.string("one"), ltn12.source.empty(),
      ltn12.source.table{"tw", "o"}, ltn12.source.string("three"))))
    local c = ltn12.source.cat(ltn12.source.string("abc"),
      ltn12.source.error("bad"), ltn12.source.string("never"))
    assert.are.equal("abc", c())
    local r, e = c()
    assert.is_nil(r)
    assert.are.equal("bad", e)
  end)

  it("rewind takes chunks back, last in first out", function()
    local r = ltn12.source.rewind(ltn12.source.table{"a", "b"})
    assert.are.equal("a", r())
    r("a")
    r("z")
    assert.are.equal("z", r())
    assert.are.equal("a", r())
    assert.are.equal("b", r())
    assert.is_nil(r())
  end)

  it("simplify follows fancy sources and sinks", function()
    -- a source that hands over to another after its first chunk
    local fancy = function()
      return "first", ltn12.source.string("second")
    end
    assert.are.equal("firstsecond", drain(ltn12.source.simplify(fancy)))
    -- a sink that replaces itself with a table sink after one chunk
    local got = {}
    local rest, t = ltn12.sink.table()
    local fsink = function(chunk)
      got[#got + 1] = chunk
      return 1, rest
    end
    local snk = ltn12.sink.simplify(fsink)
    assert.are.equal(1, snk("a"))
    assert.are.equal(1, snk("b"))
    assert.are.equal(1, snk("c"))
    assert.are.same({"a"}, got)
    assert.are.same({"b", "c"}, t)
    local bad = ltn12.sink.simplify(ltn12.sink.error("nope"))
    local ok, err = bad("x")
    assert.is_nil(ok)
    assert.are.equal("nope", err)
  end)

  it("propagates errors from sources, sinks and mid-chain", function()
    local seen
    local snk = function(chunk, err)
      seen = {chunk, err}
      return 1
    end
    local ok, err = ltn12.pump.all(ltn12.source.error("src down"), snk)
    assert.is_nil(ok)
    assert.are.equal("src down", err)
    assert.are.same({nil, "src down"}, seen)    -- the sink was told why
    ok, err = ltn12.pump.all(ltn12.source.string("data"),
      ltn12.sink.error("sink full"))
    assert.is_nil(ok)
    assert.are.equal("sink full", err)
    -- an error after some data, through a chain
    local src = ltn12.source.chain(ltn12.source.cat(
      ltn12.source.string("abc"), ltn12.source.error("cut")), upper())
    local t = {}
    ok, err = ltn12.pump.all(src, (ltn12.sink.table(t)))
    assert.is_nil(ok)
    assert.are.equal("cut", err)
    assert.are.equal("ABC", table.concat(t))
    -- a failing sink behind a filter chain stops the pump
    local n = 0
    ok, err = ltn12.pump.all(ltn12.source.string(("x"):rep(10000)),
      ltn12.sink.chain(upper(), function(chunk)
        n = n + 1
        if n == 2 then return nil, "disk full" end
        return 1
      end))
    assert.is_nil(ok)
    assert.are.equal("disk full", err)
    assert.are.equal(2, n)
  end)

  it("pump.step moves one chunk; pump.all takes a step function", function()
    local src = ltn12.source.table{"a", "b"}
    local snk, t = ltn12.sink.table()
    assert.are.equal(1, ltn12.pump.step(src, snk))
    assert.are.same({"a"}, t)
    local steps = 0
    local step = function(s, k)
      steps = steps + 1
      return ltn12.pump.step(s, k)
    end
    assert.are.equal(1, ltn12.pump.all(src, snk, step))
    assert.are.same({"b"}, {t[2]})
    assert.are.equal(2, steps)                 -- "b", then the end
    assert.are.equal(1, ltn12.pump.all(ltn12.source.string("zzz"),
      ltn12.sink.null()))
  end)

  it("copies a file with file sources and sinks", function()
    local data = bytes(10000, 7)
    local a, b = os.tmpname(), os.tmpname()
    local f = assert(io.open(a, "wb"))
    f:write(data)
    f:close()
    assert.are.equal(1, ltn12.pump.all(ltn12.source.file(io.open(a, "rb")),
      ltn12.sink.file(io.open(b, "wb"))))
    f = assert(io.open(b, "rb"))
    assert.are.equal(data, f:read("a"))
    f:close()
    os.remove(a)
    os.remove(b)
    local ok, err = ltn12.pump.all(
      ltn12.source.file(io.open("/nonexistent/x", "rb")), ltn12.sink.null())
    assert.is_nil(ok)
    assert.matches("No such file", err)
    ok, err = ltn12.sink.file(nil, "cannot write")("x")
    assert.is_nil(ok)
    assert.are.equal("cannot write", err)
  end)
end)

describe("socket.url", function()
  -- url, expected parse() fields
  local cases = {
    {"http://www.example.com/", {scheme = "http",
      authority = "www.example.com", host = "www.example.com", path = "/"}},
    {"https://user:pa%20ss@[2001:db8::1]:8443/a/b;type=d?x=1&y=2#top", {
      scheme = "https", authority = "user:pa%20ss@[2001:db8::1]:8443",
      userinfo = "user:pa%20ss", user = "user", password = "pa%20ss",
      host = "2001:db8::1", port = "8443", path = "/a/b", params = "type=d",
      query = "x=1&y=2", fragment = "top"}},
    {"http://[::1]/", {scheme = "http", authority = "[::1]", host = "::1",
      path = "/"}},
    {"http://host:/p", {scheme = "http", authority = "host:", host = "host",
      port = "", path = "/p"}},
    {"ftp://anonymous@ftp.example.org", {scheme = "ftp",
      authority = "anonymous@ftp.example.org", userinfo = "anonymous",
      user = "anonymous", host = "ftp.example.org"}},
    {"mailto:someone@example.com", {scheme = "mailto",
      path = "someone@example.com"}},
    {"//cdn.example.net:8080/?q", {authority = "cdn.example.net:8080",
      host = "cdn.example.net", port = "8080", path = "/", query = "q"}},
    -- LuaSocket 3.1's authority runs to the first "/", "?" and "#" too
    {"//cdn.example.net:8080?q", {authority = "cdn.example.net:8080?q",
      host = "cdn.example.net", port = "8080?q"}},
    {"/rel/path;p?q=a#f?g", {path = "/rel/path", params = "p", query = "q=a",
      fragment = "f?g"}},
    {"?only=query", {query = "only=query"}},
    {"#frag", {fragment = "frag"}},
    {"http://u:@h:1/", {scheme = "http", authority = "u:@h:1",
      userinfo = "u:", user = "u", password = "", host = "h", port = "1",
      path = "/"}},
    {"http://[fe80::1%25eth0]:80/x?", {scheme = "http",
      authority = "[fe80::1%25eth0]:80", host = "fe80::1%25eth0",
      port = "80", path = "/x", query = ""}},
    -- an unclosed bracket stays as it came (found by tests/fuzz/url)
    -- malformed hosts (found by fuzz_url): LuaSocket 3.1's parts, and
    -- its build(), which does not give the same text back
    {"//[fe80::1:/p", {authority = "[fe80::1:", host = "[fe80::1",
      port = "", path = "/p"}, "//[[fe80::1]:/p"},
    {"//[::1]]:4", {authority = "[::1]]:4", host = "::1]", port = "4"}},
    {"//[name]:2/p", {authority = "[name]:2", host = "name", port = "2",
      path = "/p"}, "//name:2/p"},
    {"//a@x:1]:/p", {authority = "a@x:1]:", userinfo = "a", user = "a",
      host = "x:1]", port = "", path = "/p"}, "//a@[x:1]]:/p"},
  }

  it("parses the parts LuaSocket names, and builds them back", function()
    for _, c in ipairs(cases) do
      local p = assert(url.parse(c[1]))
      assert.are.same(c[2], p, c[1])
      assert.are.equal(c[3] or c[1], url.build(p))
    end
  end)

  it("parse: defaults, invalid input; build: fields win", function()
    local p = url.parse("//h/x", {scheme = "http", port = 80, path = "/d"})
    assert.are.equal("http", p.scheme)
    assert.are.equal(80, p.port)
    assert.are.equal("/x", p.path)
    local r, err = url.parse("")
    assert.is_nil(r)
    assert.are.equal("invalid url", err)
    assert.is_nil((url.parse(nil)))
    assert.are.equal("http://me:pw@[::2]:81/p", url.build{scheme = "http",
      authority = "ignored", user = "me", password = "pw", host = "::2",
      port = 81, path = "/p"})
    assert.are.equal("http://old/p", url.build{scheme = "http",
      authority = "old", path = "/p"})
  end)

  -- RFC 3986, 5.4.1 and 5.4.2: every example, with LuaSocket 3.1's answer
  -- where it differs (marked 3.1): a reference without a path keeps the
  -- base's params, and dots go from the query and fragment too
  local base = "http://a/b/c/d;p?q"
  local rfc = {
    {"g:h", "g:h"}, {"g", "http://a/b/c/g"}, {"./g", "http://a/b/c/g"},
    {"g/", "http://a/b/c/g/"}, {"/g", "http://a/g"}, {"//g", "http://g"},
    {"?y", "http://a/b/c/d;p?y"}, {"g?y", "http://a/b/c/g?y"},
    {"#s", "http://a/b/c/d;p?q#s"}, {"g#s", "http://a/b/c/g#s"},
    {"g?y#s", "http://a/b/c/g?y#s"}, {";x", "http://a/b/c/d;x"} --[[ 3.1 ]],
    {"g;x", "http://a/b/c/g;x"}, {"g;x?y#s", "http://a/b/c/g;x?y#s"},
    {"", "http://a/b/c/d;p?q"}, {".", "http://a/b/c/"},
    {"./", "http://a/b/c/"}, {"..", "http://a/b/"}, {"../", "http://a/b/"},
    {"../g", "http://a/b/g"}, {"../..", "http://a/"},
    {"../../", "http://a/"}, {"../../g", "http://a/g"},
    -- abnormal
    {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"},
    {"/./g", "http://a/g"}, {"/../g", "http://a/g"},
    {"g.", "http://a/b/c/g."}, {".g", "http://a/b/c/.g"},
    {"g..", "http://a/b/c/g.."}, {"..g", "http://a/b/c/..g"},
    {"./../g", "http://a/b/g"}, {"./g/.", "http://a/b/c/g/"},
    {"g/./h", "http://a/b/c/g/h"}, {"g/../h", "http://a/b/c/h"},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y"}, {"g;x=1/../y", "http://a/b/c/y"},
    {"g?y/./x", "http://a/b/c/g?y/x"},        -- 3.1
    {"g?y/../x", "http://a/b/c/x"},           -- 3.1
    {"g#s/./x", "http://a/b/c/g#s/x"},        -- 3.1
    {"g#s/../x", "http://a/b/c/x"},           -- 3.1
    {"http:g", "http:g"},
  }

  it("absolute() resolves RFC 3986's normal and abnormal examples", function()
    assert.are.equal(42, #rfc)
    for _, c in ipairs(rfc) do
      assert.are.equal(c[2], url.absolute(base, c[1]), c[1])
    end
    -- a parsed base; a base without a path
    assert.are.equal("http://a/b/c/g", url.absolute(url.parse(base), "g"))
    assert.are.equal("http://h/x", url.absolute("http://h", "x"))
  end)

  it("escape/unescape", function()
    assert.are.equal("a%20b%2fc%3d%25_Z9", url.escape("a b/c=%_Z9"))
    assert.are.equal("a b/c=%_Z9", url.unescape("a%20b%2fc%3d%25_Z9"))
    assert.are.equal("%zz%4", url.unescape("%zz%4"))
    local all = bytes(256, 3)
    assert.are.equal(all, url.unescape(url.escape(all)))
    assert.matches("^[%w_%%]*$", url.escape(all))
  end)

  it("parse_path/build_path", function()
    local p = url.parse_path("/a%20b/c%2Fd/")
    assert.are.same({"a b", "c/d", is_absolute = 1, is_directory = 1}, p)
    assert.are.equal("/a%20b/c%2Fd/", url.build_path(p))
    assert.are.equal("/a b/c/d/", url.build_path(p, true))
    assert.are.equal("x/y:@&=+$,", url.build_path{"x", "y:@&=+$,"})
    assert.are.same({}, url.parse_path(""))
    assert.are.equal("URL 1.0.3", url._VERSION)
  end)
end)

describe("mime", function()
  local rfc4648 = {
    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  }

  it("base64: RFC 4648 test vectors, low level", function()
    for _, v in ipairs(rfc4648) do
      local e = mime.b64(v[1])
      assert.are.equal(v[2], e or "", v[1])
      local d = mime.unb64(v[2])
      assert.are.equal(v[1], d or "", v[2])
    end
    -- incremental: the rest waits for the next chunk
    local a, b = mime.b64("", "fooba")
    assert.are.equal("Zm9v", a)
    assert.are.equal("ba", b)
    a, b = mime.b64(b, nil)
    assert.are.equal("YmE=", a)
    assert.is_nil(b)
    a, b = mime.unb64("Zm9", "vY\r\nm")         -- CRLF skipped
    assert.are.equal("foo", a)
    assert.are.equal("Ym", b)
    assert.is_nil(mime.b64(nil))
    assert.are.equal("ZGllZ286cGFzc3dvcmQ=", (mime.b64("diego:password")))
  end)

  it("quoted-printable: trailing spaces, soft breaks, CRLF", function()
    assert.are.equal("caf=E9 au lait", (mime.qp("caf\233 au lait")))
    -- space before a line break is quoted; spaces elsewhere are not
    assert.are.equal("a b=20\r\nc", (mime.qp("a b \r\nc")))
    -- a trailing space or tab at the very end: quoted + soft break
    assert.are.equal("end=20=09=\r\n", (mime.qp("end \t")))
    -- binary mode: CRLF is data
    local enc = mime.encode("quoted-printable", "binary")
    assert.are.equal("x=0D=0Ay", enc("x\r\ny") .. (enc(nil) or ""))
    -- a lone LF and "=" are quoted
    assert.are.equal("1=0A2=3D3", (mime.qp("1\n2=3")))
    -- decoding: soft breaks go, escapes (either case) decode, bad ones stay
    assert.are.equal("long line joined", (mime.unqp("long li=\r\nne joined")))
    assert.are.equal("caf\233=\233", (mime.unqp("caf=E9=3d=e9")))
    assert.are.equal("=ZZ ok", (mime.unqp("=ZZ ok")))
    assert.are.equal("a \r\nb", (mime.unqp("a=20\r\nb")))
    -- qpwrp breaks long lines softly, never inside =XX
    local long = (mime.qp(("\233"):rep(40)))
    local wrapped = mime.qpwrp(76, long) .. (mime.qpwrp(0) or "")
    for line in wrapped:gmatch("([^\r\n]*)\r\n") do
      assert.is_true(#line <= 76, line)
      assert.is_nil(line:match("=%x$"), line)    -- no =XX cut in two
    end
    assert.are.equal(("\233"):rep(40), (mime.unqp(wrapped)))
  end)

  it("round-trips random binary data through encode+wrap, decode", function()
    for _, n in ipairs{0, 1, 2, 3, 57, 1000, 50001} do
      local data = bytes(n, n + 1)
      for _, size in ipairs{1, 7, 2048} do
        with_blocksize(size, function()
          local b64 = drain(ltn12.source.chain(ltn12.source.string(data),
            mime.encode("base64"), mime.wrap("base64")))
          for line in b64:gmatch("([^\r\n]*)\r\n") do
            assert.is_true(#line <= 76)
          end
          assert.are.equal(#data == 0 and "" or "\r\n", b64:sub(-2, -1)
            :gsub("^[^\r].", ""))
          local back = drain(ltn12.source.chain(ltn12.source.string(b64),
            mime.decode("base64")))
          assert.are.equal(data, back)
          local qp = drain(ltn12.source.chain(ltn12.source.string(data),
            mime.encode("quoted-printable", "binary"),
            mime.wrap("quoted-printable")))
          assert.is_nil(qp:find("[^\t\r\n\32-\126]"))
          assert.are.equal(data, drain(ltn12.source.chain(
            ltn12.source.string(qp), mime.decode("quoted-printable"))))
        end)
      end
    end
  end)

  it("whole-string base64 matches base64(1) on 100 KB", function()
    local data = bytes(100000, 11)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    local p = assert(io.popen("base64 -w0 " .. path))
    local want = p:read("a")
    p:close()
    os.remove(path)
    assert.are.equal(want, (mime.b64(data)))
    assert.are.equal(data, (mime.unb64(want)))
  end)

  it("wrap, normalize, stuff", function()
    local w = mime.wrap("text", 4)
    assert.are.equal("abcd\r\nef", w("abcdef"))
    assert.are.equal("\r\n", w(nil))
    assert.is_nil(w(nil))
    assert.are.equal("ab\r\ncd\r\n", drain(ltn12.source.chain(
      ltn12.source.string("ab\ncd"), mime.wrap(76))))
    local n = mime.normalize()
    assert.are.equal("a\r\nb\r\nc\r\n\r\nd\r\n", n("a\nb\r\nc\r") .. n("\rd\r")
      .. (n(nil) or ""))
    assert.are.equal("x\ny\n", (mime.eol(0, "x\r\ny\r", "\n")))
    assert.are.equal("..\r\nStuffing the message.\r\n..\r\n..",
      (mime.dot(2, ".\r\nStuffing the message.\r\n.\r\n.")))
    local s = mime.stuff()
    assert.are.equal("a\r\n", s("a\r\n"))
    assert.are.equal("..b", s(".b"))            -- the line began before
    assert.has_error(function() mime.encode("rot13") end)
  end)
end)

-- a connected pair: our client and the server's side of it
local function pair()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local p = assert(s:accept())
  s:close()
  return c, p
end

describe("socket.sink/socket.source", function()
  it("constants, modes, headers", function()
    assert.are.equal(8192, socket._DATAGRAMSIZE)
    assert.has_error(function() socket.sink("bogus", {}) end,
      "unknown key (bogus)")
    assert.has_error(function() socket.source("bogus", {}) end,
      "unknown key (bogus)")
    local canonic = socket.headers.canonic
    assert.are.equal(require("socket.headers"), socket.headers)
    assert.are.equal("Content-Type", canonic["content-type"])
    assert.are.equal("ETag", canonic["etag"])
    assert.are.equal("WWW-Authenticate", canonic["www-authenticate"])
    assert.are.equal("Content-MD5", canonic["content-md5"])
    assert.are.equal("TE", canonic["te"])
    assert.are.equal(url, socket.url)
  end)

  it("http-chunked both ways", function()
    local c, p = pair()
    local data = bytes(20000, 5)
    local w = spawn(function()
      return ltn12.pump.all(ltn12.source.string(data),
        socket.sink("http-chunked", c))
    end)
    local trailers = {}
    local got = drain(socket.source("http-chunked", p, trailers))
    assert.are.equal(data, got)
    assert.are.equal(1, w:join())
    -- the exact bytes on the wire; an empty chunk sends nothing
    local snk = socket.sink("http-chunked", c)
    assert.truthy(snk("hello"))
    assert.truthy(snk(""))
    assert.truthy(snk(("x"):rep(26)))
    assert.truthy(snk(nil))
    local wire = "5\r\nhello\r\n1A\r\n" .. ("x"):rep(26) .. "\r\n0\r\n\r\n"
    assert.are.equal(wire, p:receive(#wire))
    -- a hand-written stream: extensions, trailers
    assert(c:send("4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 42\r\n"
      .. "X-Other:  a \r\n\r\nnext"))
    got = drain(socket.source("http-chunked", p, trailers))
    assert.are.equal("Wikipedia", got)
    assert.are.same({["x-sum"] = "42", ["x-other"] = "a"}, trailers)
    assert.are.equal("next", p:receive(4))     -- nothing read past the end
    assert(c:send("zz\r\n"))
    local r, err = socket.source("http-chunked", p)()
    assert.is_nil(r)
    assert.are.equal("invalid chunk size", err)
    c:close()
    p:close()
  end)

  it("by-length reads exactly length bytes", function()
    local c, p = pair()
    local data = bytes(10000, 9)
    assert(c:send(data .. "TAIL"))
    local src = socket.source("by-length", p, #data)
    assert.are.equal(data, drain(src))
    assert.is_nil(src())
    assert.are.equal("TAIL", p:receive(4))
    -- the peer goes away first
    assert(c:send("short"))
    c:close()
    local r, err = drain(socket.source("by-length", p, 100))
    assert.is_nil(r)
    assert.are.equal("closed", err)
    p:close()
  end)

  it("until-closed reads to the end, then closes its socket", function()
    local c, p = pair()
    local data = bytes(30000, 4)
    spawn(function()
      assert(c:send(data))
      c:close()
    end)
    local src = socket.source(p)                -- the default mode
    assert.are.equal(data, drain(src))
    local ok, err = p:send("x")
    assert.is_nil(ok)
    assert.are.equal("closed", err)
  end)

  it("close-when-done closes at the end; keep-open does not", function()
    local c, p = pair()
    assert.are.equal(1, ltn12.pump.all(ltn12.source.string("kept"),
      socket.sink(c)))                          -- default: keep-open
    assert.are.equal(1, ltn12.pump.all(ltn12.source.string(" open"),
      socket.sink("keep-open", c)))
    assert.truthy(c:send("!"))
    assert.are.equal("kept open!", p:receive(10))
    assert.are.equal(1, ltn12.pump.all(ltn12.source.string("bye"),
      socket.sink("close-when-done", c)))
    local ok, err = c:send("x")
    assert.is_nil(ok)
    assert.are.equal("closed", err)
    assert.are.equal("bye", p:receive("*a"))
    p:close()
  end)

  it("sinks and sources carry getfd/dirty, and select waits on them",
     function()
    local c, p = pair()
    local src = socket.source("until-closed", p)
    assert.are.equal(p:getfd(), src:getfd())
    assert.is_false(not not src:dirty())
    assert.are.equal(c:getfd(), socket.sink(c):getfd())
    -- select waits on the socket behind a source, and returns the source
    spawn(function() sleep(0.1); c:send("ready") end)
    local t0 = task.now()
    local r, _, err = socket.select({src}, nil, 5)
    assert.is_nil(err)
    assert.is_true(task.now() - t0 < 2)
    assert.are.equal(src, r[1])
    assert.are.equal(1, r[src])
    assert.are.equal("ready", src())
    local _, w = socket.select(nil, {socket.sink(c)}, 5)
    assert.are.equal(1, #w)
    c:close()
    p:close()
  end)
end)

describe("socket.http with ltn12", function()
  local http = require "socket.http"

  -- A server answering one request: it echoes the body reversed, with the
  -- method, and sends its reply in small pieces. -> base url, task
  local function one_shot()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local t = spawn(function()
      local c = assert(s:accept())
      s:close()
      local line = assert(c:receive("*l"))
      local method = line:match("^(%u+) ")
      local len = 0
      while true do
        local h = assert(c:receive("*l"))
        if h == "" then break end
        local n = h:lower():match("^content%-length:%s*(%d+)")
        if n then len = tonumber(n) end
      end
      local body = len > 0 and assert(c:receive(len)) or ""
      local reply = method .. ":" .. body:reverse() .. ("."):rep(5000)
      c:send("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n"
        .. "X-Test: yes\r\nConnection: close\r\nContent-Length: "
        .. #reply .. "\r\n\r\n")
      for i = 1, #reply, 1000 do
        c:send(reply:sub(i, i + 999))
        sleep(0.001)
      end
      c:close()
      return line
    end)
    return "http://127.0.0.1:" .. port .. "/path?q=1", t
  end

  it("request{sink = ltn12.sink.table, source = ltn12.source.string}",
    function()
      local u, server = one_shot()
      local t = {}
      local body = ("abc"):rep(3000)
      local one, code, headers, status = http.request{
        url = u, method = "POST",
        headers = {["content-length"] = tostring(#body)},
        source = ltn12.source.string(body),
        sink = ltn12.sink.table(t),
      }
      assert.are.equal(1, one)
      assert.are.equal(201, code)
      assert.are.equal("yes", headers["x-test"])
      assert.are.equal("HTTP/1.1 201 Created", status)
      assert.are.equal("POST:" .. body:reverse() .. ("."):rep(5000),
        table.concat(t))
      assert.are.equal("POST /path?q=1 HTTP/1.1", server:join())
    end)

  it("accepts step = ltn12.pump.step, and uses the step given", function()
    local u = one_shot()
    local t = {}
    local one, code = http.request{url = u, sink = ltn12.sink.table(t),
      step = ltn12.pump.step}
    assert.are.equal(1, one)
    assert.are.equal(201, code)
    assert.are.equal("GET:" .. ("."):rep(5000), table.concat(t))
    local steps = 0
    u = one_shot()
    t = {}
    one = http.request{url = u, method = "PUT",
      source = ltn12.source.table{"x", "y", "z"},
      headers = {["Content-Length"] = "3"},
      sink = ltn12.sink.chain(upper(), (ltn12.sink.table(t))),
      step = function(src, snk)
        steps = steps + 1
        return ltn12.pump.step(src, snk)
      end}
    assert.are.equal(1, one)
    assert.are.equal("PUT:ZYX" .. ("."):rep(5000), table.concat(t))
    assert.is_true(steps >= 4 + 2)   -- 3 chunks + end, then the reply's
  end)

  it("a failing sink ends the request with its error", function()
    local u = one_shot()
    local r, err = http.request{url = u, sink = ltn12.sink.error("no room")}
    assert.is_nil(r)
    assert.are.equal("no room", err)
  end)
end)

describe("embedding", function()
  it("the modules load from the binary, run from /tmp", function()
    local p = assert(io.popen("cd /tmp && env -u NETSH_LUA_DIR " .. NETSH
      .. [[ -e 'require "ltn12"; require "socket.url"; require "mime";]]
      .. [[ require "socket.headers"; print(package.searchpath("ltn12",]]
      .. [[ package.path), (require "mime").b64("hi"),]]
      .. [[ socket.url.escape("/"), socket.headers.canonic.etag)' 2>&1]]))
    local out = p:read("a")
    p:close()
    assert.are.equal("nil\taGk=\t%2f\tETag\n", out)
  end)

  it("start-up loads none of them", function()
    local p = assert(io.popen(NETSH .. [[ -e 'local n = 0;]]
      .. [[ for _, m in ipairs{"ltn12", "mime", "socket.url",]]
      .. [["socket.headers", "socket"} do]]
      .. [[ if package.loaded[m] then n = n + 1 end end;]]
      .. [[ local s = socket; for _, m in ipairs{"ltn12", "mime",]]
      .. [["socket.url", "socket.headers"} do]]
      .. [[ if package.loaded[m] then n = n + 1 end end; print(n)' 2>&1]]))
    local out = p:read("a")
    p:close()
    assert.are.equal("0\n", out)
  end)
end)
