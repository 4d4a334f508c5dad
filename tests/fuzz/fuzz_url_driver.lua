-- fuzz_url_driver.lua -- socket.url (lua/socket/url.lua) on random text:
-- the input is a URL and, after the first NUL, a reference to resolve
-- against it. Checks: nothing raises; unescape(escape(s)) == s; escape's
-- output holds only letters, digits, "_" and %xx; parse() of a non-empty
-- string gives a table whose build() parses to the same parts (unless
-- its host is malformed: see below);
-- absolute() gives a string.
local url = require "socket.url"

local FIELDS = {"scheme", "authority", "path", "params", "query",
  "fragment", "userinfo", "host", "port", "user", "password"}

return function(s)
  local base, ref = s:match("^(.-)%z(.*)$")
  if not base then base, ref = s, "" end
  for _, x in ipairs{base, ref} do
    local e = url.escape(x)
    assert(not e:find("[^%w_%%]"), "escape left " .. ("%q"):format(e))
    assert(url.unescape(e) == x, "unescape(escape(s)) ~= s")
  end
  local p = url.parse(base)
  if base == "" then
    assert(p == nil)
  else
    assert(type(p) == "table", "parse: no table")
    -- a host with a ':' that was not a bracketed literal ("a:b:1") is
    -- malformed: parse splits the port at the last ':', build cannot know;
    -- nor can LuaSocket 3.1 (whose answers socket.url gives) build back a
    -- host with a stray bracket ("[x:", "x:]") or a bracketed name
    if p.host and (p.host:find("[%[%]]") or p.host:find(":", 1, true) and
        not (p.authority or ""):find("[" .. p.host .. "]", 1, true)) then
      return
    end
    if (p.authority or ""):find("[" .. (p.host or "") .. "]", 1, true)
        and not (p.host or ""):find(":", 1, true) then
      return
    end
    local again = url.parse(url.build(p))
    for _, k in ipairs(FIELDS) do
      assert(again[k] == p[k], ("build/parse changed %s: %q -> %q (%q)")
        :format(k, tostring(p[k]), tostring(again[k]), base))
    end
  end
  local abs = url.absolute(base, ref)
  assert(type(abs) == "string", "absolute: no string")
  local segs = url.parse_path(base)
  assert(type(segs) == "table")
  assert(type(url.build_path(segs)) == "string")
  assert(type(url.build_path(segs, true)) == "string")
end
