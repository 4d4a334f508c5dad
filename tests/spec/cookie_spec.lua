-- cookie_spec.lua -- the jar lines the HTTP client's fast path makes of a
-- Set-Cookie value (lua/netsh/cookie.lua through http._cookie_line, with
-- curl's date parser): what the fuzzer found first (a Max-Age past the
-- integers raised; a tab in Path became a field of the line), and the
-- ordinary shapes.
local http = require "http"
local line = http._cookie_line

local function fields(l)
  local f = {}
  for x in (l .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = x end
  return f
end

describe("a Set-Cookie value as a jar line", function()
  it("host-only, default path, a session cookie", function()
    assert.same({"example.com", "FALSE", "/a/", "FALSE", "0", "sid", "1"},
      fields(line("example.com", "/a/b?q=1", "sid=1")))
  end)

  it("Domain, Secure, HttpOnly, Path", function()
    assert.same({"#HttpOnly_.example.com", "TRUE", "/p", "TRUE", "0", "k",
      "v"}, fields(line("a.example.com", "/", "k=v; Domain=.example.com; "
      .. "Path=/p; Secure; HttpOnly")))
    assert.is_nil(line("example.com", "/", "k=v; Domain=other.org"))
  end)

  it("a Max-Age past the integers is the end of time, not an error",
     function()
    local f = fields(line("example.com", "/", "k=v; Max-Age="
      .. ("9"):rep(30)))
    assert.equal(tostring(math.maxinteger), f[5])
    local g = fields(line("example.com", "/", "k=v; Max-Age=60"))
    assert.is_true(math.abs(tonumber(g[5]) - (os.time() + 60)) <= 2)
    assert.equal("1", fields(line("example.com", "/", "k=v; Max-Age=0"))[5])
  end)

  it("refuses a control byte or tab anywhere a field would carry it",
     function()
    assert.is_nil(line("example.com", "/", "k=v; Path=/a\tTRUE"))
    assert.is_nil(line("example.com", "/", "k=v\t1"))
    assert.is_nil(line("example.com", "/", "k\1=v"))
    assert.is_nil(line("example.com", "/x\t/y", "k=v"))
  end)
end)
