-- netsh/cookie.lua -- "netsh.cookie": a Set-Cookie value the HTTP client's
-- fast path received (lua/http/fast.lua), turned into the Netscape cookie
-- file line that curl's jar takes (CURLOPT_COOKIELIST), as curl 7.88 would
-- have stored it (Curl_cookie_add for a header line): name=value with both
-- trimmed, Domain (a leading dot dropped; refused unless it is the host
-- or, for a name, a domain of it; a given Domain on a name matches
-- subdomains), Path as given (else the request path up to its last "/",
-- included), Max-Age over Expires, Secure, HttpOnly. Pure Lua, apart from
-- the date parser the caller passes (curl's), so tests/fuzz/fuzz_cookie
-- runs it on random values.
--
-- line(host, path, value [, getdate]) -> line | nil (refused)
local format = string.format
local M = {}

function M.line(host, path, v, getdate)
  local pairs_ = {}
  for part in (v .. ";"):gmatch("([^;]*);") do
    pairs_[#pairs_ + 1] = part
  end
  local name, value = (pairs_[1] or ""):match("^%s*([^=]-)%s*=%s*(.-)%s*$")
  if not name or name == "" or name:find("[%c\t]") or value:find("%c")
      or #name + #value > 4096 then
    return nil
  end
  if name:find("^__[Ss][Ee][Cc][Uu][Rr][Ee]%-")
      or name:find("^__[Hh][Oo][Ss][Tt]%-") then
    return nil                        -- prefixed names need a secure origin
  end
  local domain, tail, cpath, expires, httponly = host, "FALSE", nil, 0, false
  local maxage_seen, secure = false, "FALSE"
  local is_ip = host:find("^[%d%.]+$") ~= nil
  for i = 2, #pairs_ do
    local k, val = pairs_[i]:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if not k then k = pairs_[i]:match("^%s*(.-)%s*$") end
    local lk = k:lower()
    if lk == "secure" then
      secure = "TRUE"
    elseif lk == "httponly" then
      httponly = true
    elseif lk == "domain" and val then
      local d = val:gsub("^%.", ""):lower()
      if is_ip then
        if d ~= host then return nil end
      elseif d == host or (host:sub(-#d - 1) == "." .. d and d:find("%.")) then
        domain, tail = "." .. d, "TRUE"
      else
        return nil
      end
    elseif lk == "path" and val then
      cpath = val
    elseif lk == "max-age" and val then
      maxage_seen = true
      local digits = (val:gsub('^"', "")):match("^%-?%d+")
      local n = digits and tonumber(digits)
      if not n or n <= 0 then
        expires = 1
      else                             -- too big: the end of time, as curl
        local now = os.time()
        n = math.tointeger(n)
        expires = (not n or n > math.maxinteger - now) and math.maxinteger
          or now + n
      end
    elseif lk == "expires" and val and not maxage_seen and expires == 0 then
      local t = getdate and math.tointeger(getdate(val))
      if t then expires = t > 0 and t or 1 end
    end
  end
  if not cpath then                    -- a given one is kept as it is
    local p = path:match("^([^?]*)")
    cpath = p:match("^(.*/)") or "/"
  end
  -- a tab (or any control byte) would be a field of the jar's line
  if cpath:find("%c") then return nil end
  return format("%s%s\t%s\t%s\t%s\t%d\t%s\t%s",
    httponly and "#HttpOnly_" or "", domain, tail, cpath, secure, expires,
    name, value)
end

return M
