-- socket/url.lua -- "socket.url": LuaSocket's URL functions (also
-- socket.url). parse() names the parts as LuaSocket does:
--   scheme://userinfo@host:port/path;params?query#fragment
-- with authority = userinfo@host:port and userinfo = user:password; an
-- IPv6 host comes without its brackets. A drop-in: where LuaSocket 3.1
-- and RFC 3986 disagree (odd URLs, absolute()), LuaSocket's answer wins.
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

-- parse(url [, default]) -> parts | nil, "invalid url"
-- default: a table whose fields fill the parts the url lacks. The parts
-- are cut off in LuaSocket's order, which is not quite RFC 3986's: the
-- authority runs to the first "/" (so "?" and "#" may be in it), then the
-- fragment from the first "#", the query from the first "?" and the
-- params from the first ";" of what is left; the rest is the path.
function M.parse(url, default)
  local p = {}
  for k, v in pairs(default or p) do p[k] = v end
  if url == nil or url == "" then return nil, "invalid url" end
  local rest = url
  local scheme, after = rest:match("^(%w[%w+%-.]*):(.*)$")
  if scheme then p.scheme, rest = scheme, after end
  local authority
  authority, after = rest:match("^//([^/]*)(.*)$")
  if authority then p.authority, rest = authority, after end
  for _, part in ipairs{{"fragment", "#"}, {"query", "?"}, {"params", ";"}} do
    local at = rest:find(part[2], 1, true)
    if at then p[part[1]], rest = rest:sub(at + 1), rest:sub(1, at - 1) end
  end
  if rest ~= "" then p.path = rest end
  if not authority then return p end
  local userinfo, hostport = authority:match("^([^@]*)@(.*)$")
  if userinfo then p.userinfo = userinfo else hostport = authority end
  -- the port follows the last ":" outside an IPv6 literal's brackets
  local host, port = hostport:match("^(.*):([^:%]]*)$")
  if host then p.port = port else host = hostport end
  if host ~= "" then p.host = host:match("^%[(.+)%]$") or host end
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
    if authority:find(":", 1, true) then
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
-- absolute(), as LuaSocket 3.1 resolves: close to RFC 3986 section 5.2,
-- but ";params" are a part of their own (a reference without a path keeps
-- the base's params) and the dot segments are removed from the whole
-- result, query and fragment included.

-- s with pattern pat replaced by repl, one match at a time, until no
-- match is left
local function rewrite(s, pat, repl)
  local n
  repeat s, n = s:gsub(pat, repl, 1) until n == 0
  return s
end

-- Dot segments out of a path or a whole URL. An empty segment ("//") is
-- kept apart by a marker byte while the rules run, so that ".." can take
-- it as it takes a named segment.
local EMPTY = "\1"
local function remove_dots(path)
  path = rewrite(path, "//", "/" .. EMPTY .. "/")
  path = rewrite(path, "/%./", "/")
  path = rewrite(path, "[^/]+/%.%./([^/]+)", "%1")     -- "seg/../next"
  path = path:gsub("[^/]+/%.%./*$", "")                 -- "seg/.." at the end
  path = path:gsub("/%.%.$", "/"):gsub("/%.$", "/"):gsub("^/%.%./", "/")
  return (path:gsub(EMPTY, ""))
end

-- a relative path put after the directory of the base path
local function absolute_path(base_path, rel_path)
  if rel_path:sub(1, 1) == "/" then return remove_dots(rel_path) end
  local dir = base_path:gsub("[^/]*$", "")
  if dir:sub(-1) ~= "/" then dir = dir .. "/" end
  return remove_dots(dir .. rel_path)
end

-- absolute(base, relative) -> url; base may be a parse() table.
function M.absolute(base_url, relative)
  local b
  if type(base_url) == "table" then
    b, base_url = base_url, M.build(base_url)
  else
    b = M.parse(base_url)
  end
  local r = M.parse(relative)
  local result
  if not b then
    result = relative
  elseif not r then
    result = base_url
  elseif r.scheme then
    result = relative
  else
    r.scheme = b.scheme
    if not r.authority then
      r.authority = b.authority
      if r.path then
        r.path = absolute_path(b.path or "", r.path)
      else
        -- each part the reference lacks comes from the base, up to the
        -- first it has
        r.path = b.path
        if not r.params then
          r.params = b.params
          if not r.query then r.query = b.query end
        end
      end
    end
    result = M.build(r)
  end
  if result == nil then return nil end
  return remove_dots(result)
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
