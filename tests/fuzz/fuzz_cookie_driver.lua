-- fuzz_cookie_driver.lua -- the Set-Cookie to cookie-jar line of the HTTP
-- client's fast path (lua/netsh/cookie.lua) on random values. The first
-- byte picks the host; the request path runs to the first LF, the
-- Set-Cookie value is the rest. Checks: it never raises; a line it makes
-- has the seven fields of curl's Netscape format (the first maybe marked
-- #HttpOnly_), none with a control byte (a tab inside one would be a
-- field of its own in the jar), TRUE/FALSE flags, an integer expiry, a
-- domain that is the host or a domain of it, a path starting with "/"
-- when the request's did.
local cookie = require "netsh.cookie"

local HOSTS = {"example.com", "a.b.example.com", "127.0.0.1", "localhost"}

local function getdate(s)                -- curl's parser stands apart
  local n = tonumber(s:match("%d+"))
  return n and n % 4102444800 or nil
end

return function(s)
  if #s == 0 then return end
  local host = HOSTS[s:byte(1) % #HOSTS + 1]
  local rest = s:sub(2)
  local path, value = rest:match("^([^\n]*)\n(.*)$")
  if not path then path, value = "/", rest end
  local line = cookie.line(host, path, value, getdate)
  if line == nil then return end
  assert(type(line) == "string", "not a string")
  local f = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
  assert(#f == 7, "not seven fields: " .. ("%q"):format(line))
  for i = 1, 7 do
    assert(not f[i]:find("%c"), "a control byte in field " .. i)
  end
  local domain = f[1]:gsub("^#HttpOnly_", "")
  assert(f[2] == "TRUE" or f[2] == "FALSE", "tailmatch flag")
  assert(f[4] == "TRUE" or f[4] == "FALSE", "secure flag")
  assert(math.tointeger(tonumber(f[5])), "expiry not an integer")
  local bare = domain:gsub("^%.", "")
  assert(bare == host or host:sub(-#bare - 1) == "." .. bare,
    "domain " .. domain .. " for host " .. host)
  assert(f[6] ~= "", "no name")
end
