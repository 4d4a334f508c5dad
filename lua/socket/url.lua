-- socket/url.lua -- "socket.url": LuaSocket's URL functions (also
-- socket.url). parse() names the parts as LuaSocket does:
--   scheme://userinfo@host:port/path;params?query#fragment
-- with authority = userinfo@host:port and userinfo = user:password; an
-- IPv6 host comes without its brackets. absolute() resolves a reference
-- as RFC 3986 section 5.2 says (";params" are part of the path there).
local M = {_VERSION = "URL 1.0.3"}

local format, byte, char = string.format, string.byte, string.char

local function hex(c)
  return format("%%%02x", byte(c))
end

-- escape(s): every byte but letters, digits and "_" as %xx
function M.escape(s)
  return (s:gsub("[^%w_]", hex))
end

-- unescape(s): %xx back to bytes (malformed escapes stay as they are)
function M.unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

-- The five components of RFC 3986's appendix B (nil when absent).
local function split(u)
  local r = {}
  local rest = u
  local scheme, after = rest:match("^(%a[%w+%-.]*):(.*)$")
  if scheme then r.scheme, rest = scheme, after end
  local authority
  authority, after = rest:match("^//([^/?#]*)(.*)$")
  if authority then r.authority, rest = authority, after end
  local f = rest:find("#", 1, true)
  if f then r.fragment, rest = rest:sub(f + 1), rest:sub(1, f - 1) end
  local q = rest:find("?", 1, true)
  if q then r.query, rest = rest:sub(q + 1), rest:sub(1, q - 1) end
  r.path = rest
  return r
end

-- parse(url [, default]) -> parts | nil, "invalid url"
-- default: a table whose fields fill the parts the url lacks.
function M.parse(url, default)
  local p = {}
  for k, v in pairs(default or p) do p[k] = v end
  if url == nil or url == "" then return nil, "invalid url" end
  local r = split(url)
  local authority, rest = r.authority, r.path
  for _, k in ipairs{"scheme", "authority", "fragment", "query"} do
    if r[k] then p[k] = r[k] end
  end
  local s = rest:find(";", 1, true)
  if s then p.params, rest = rest:sub(s + 1), rest:sub(1, s - 1) end
  if rest ~= "" then p.path = rest end
  if not authority then return p end
  local userinfo, hostport = authority:match("^([^@]*)@(.*)$")
  if userinfo then p.userinfo = userinfo else hostport = authority end
  -- the port follows the last ":" outside an IPv6 literal's brackets
  local host, port = hostport:match("^(.*):([^:%]]*)$")
  if host then p.port = port else host = hostport end
  -- brackets go from an IPv6 literal only: build() puts them back on a
  -- host with a ":", so "[name]" keeps them
  if host ~= "" then
    p.host = host:match("^%[([^%[%]]*:[^%[%]]*)%]$") or host
  end
  if userinfo then
    local user, password = userinfo:match("^(.*):([^:]*)$")
    if user then p.user, p.password = user, password
    else p.user = userinfo end
  end
  return p
end

-- build(parts) -> url; host, port, user, password win over authority and
-- userinfo when present.
function M.build(p)
  local out = {}
  if p.scheme then out[#out + 1] = p.scheme .. ":" end
  local authority = p.authority
  if p.host then
    authority = p.host
    -- an IPv6 literal gets its brackets back; a malformed host that has
    -- a bracket of its own ("[x:", "x:]") stays as it came
    if authority:find(":", 1, true) and not authority:find("[%[%]]") then
      authority = "[" .. authority .. "]"
    end
    if p.port then authority = authority .. ":" .. tostring(p.port) end
    local userinfo = p.userinfo
    if p.user then
      userinfo = p.user
      if p.password then userinfo = userinfo .. ":" .. p.password end
    end
    if userinfo then authority = userinfo .. "@" .. authority end
  end
  if authority then out[#out + 1] = "//" .. authority end
  out[#out + 1] = p.path
  if p.params then out[#out + 1] = ";" .. p.params end
  if p.query then out[#out + 1] = "?" .. p.query end
  if p.fragment then out[#out + 1] = "#" .. p.fragment end
  return table.concat(out)
end

---------------------------------------------------------------------------
-- absolute(): RFC 3986, section 5.2

-- remove_dot_segments (5.2.4), done on whole segments: "." goes, ".."
-- takes the segment before it along; either one last leaves a "/".
local function remove_dots(path)
  if not path:find(".", 1, true) then return path end
  local abs = path:sub(1, 1) == "/"
  local parts = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do parts[#parts + 1] = seg end
  if abs then table.remove(parts, 1) end
  local segs, n = {}, 0
  for i, seg in ipairs(parts) do
    if seg == ".." or seg == "." then
      if seg == ".." and n > 0 then
        segs[n] = nil
        n = n - 1
      end
      if i == #parts then
        n = n + 1
        segs[n] = ""
      end
    else
      n = n + 1
      segs[n] = seg
    end
  end
  local out = table.concat(segs, "/")
  if abs then out = "/" .. out end
  return out
end

local function merge(base, rel_path)
  if base.authority and base.path == "" then return "/" .. rel_path end
  return (base.path:match("^(.*/)") or "") .. rel_path
end

local function recompose(t)
  local out = {}
  if t.scheme then out[#out + 1] = t.scheme .. ":" end
  if t.authority then out[#out + 1] = "//" .. t.authority end
  out[#out + 1] = t.path
  if t.query then out[#out + 1] = "?" .. t.query end
  if t.fragment then out[#out + 1] = "#" .. t.fragment end
  return table.concat(out)
end

-- absolute(base, relative) -> url; base may be a parse() table.
function M.absolute(base_url, relative)
  if type(base_url) == "table" then base_url = M.build(base_url) end
  if base_url == nil or base_url == "" then return relative end
  if relative == nil or relative == "" then return base_url end
  local b, r, t = split(base_url), split(relative), {}
  if r.scheme then
    t.scheme, t.authority, t.query = r.scheme, r.authority, r.query
    t.path = remove_dots(r.path)
  else
    if r.authority then
      t.authority, t.query = r.authority, r.query
      t.path = remove_dots(r.path)
    else
      if r.path == "" then
        t.path = b.path
        t.query = r.query or b.query
      else
        if r.path:sub(1, 1) == "/" then t.path = remove_dots(r.path)
        else t.path = remove_dots(merge(b, r.path)) end
        t.query = r.query
      end
      t.authority = b.authority
    end
    t.scheme = b.scheme
  end
  t.fragment = r.fragment
  return recompose(t)
end

---------------------------------------------------------------------------
-- paths

-- parse_path(path) -> {segment, ..., is_absolute = 1?, is_directory = 1?}
-- with the segments unescaped (empty segments are skipped)
function M.parse_path(path)
  local t = {}
  path = path or ""
  for seg in path:gmatch("[^/]+") do t[#t + 1] = M.unescape(seg) end
  if path:sub(1, 1) == "/" then t.is_absolute = 1 end
  if path:sub(-1) == "/" then t.is_directory = 1 end
  return t
end

-- a segment's bytes that are not allowed there, as %XX
local segment_ok = {}
for c in ("-_.!~*'():@&=+$,"):gmatch(".") do segment_ok[c] = true end

local function protect(seg)
  return (seg:gsub("[^%w_]", function(c)
    if segment_ok[c] then return c end
    return format("%%%02X", byte(c))
  end))
end

-- build_path(parts [, unsafe]) -> path; segments are escaped unless
-- unsafe is true.
function M.build_path(t, unsafe)
  local segs = {}
  for i = 1, #t do segs[i] = unsafe and t[i] or protect(t[i]) end
  local path = table.concat(segs, "/")
  if #t > 0 and t.is_directory then path = path .. "/" end
  if t.is_absolute then path = "/" .. path end
  return path
end

return M
