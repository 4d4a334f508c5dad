-- http.lua -- the public "http" module: a requests-like HTTP client.
-- The transfers run in libcurl's multi interface on the netsh loop
-- (src/http.c, "http.core"): every call only parks its task, so any number
-- of requests run at once from one script. This file turns options into a
-- transfer spec and a transfer into a response object.
--
--   local res, err = http.get(url, {params = {q = "x"}, timeout = 5})
--   if not res then error(err) end
--   print(res.status, res.headers["content-type"], #res.body)
--
-- Failures (no response at all) return nil, err; HTTP error statuses are
-- responses with res.ok == false (res:raise_for_status() raises).
local task = require "task"

-- http.core (libcurl) loads on the first client call: http.server and
-- http.router (lua/http/server.lua) never load it.
local core = setmetatable({}, {__index = function(t, k)
  local c = require "http.core"
  setmetatable(t, nil)
  for name, v in pairs(c) do t[name] = v end
  return c[k]
end})

local M = setmetatable({}, {__index = function(t, k)
  if k == "version" then
    t.version = core.version()
    return t.version
  end
end})

-- the server side: http.server{...}, http.router()
function M.server(opts)
  return require("http.server").server(opts)
end
function M.router()
  return require("http.server").router()
end

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs,
  tostring, tonumber
local concat, floor, fmt = table.concat, math.floor, string.format


-- Decoded-size cap for compressed bodies (gzip/br/deflate/zstd): a body
-- that decodes past this fails with "bad response: decompressed body too
-- large". Streams (stream = true, download) hold only chunk_size bytes at
-- a time, so this cap applies to them only when given as decompress = N.
M.MAX_DECODED = 256 * 1024 * 1024
-- Expansion-ratio guard against compression bombs: past its first MiB a
-- compressed body may decode to at most MAX_RATIO times the bytes received
-- (per request: max_ratio = N, or false for no ratio limit).
M.MAX_RATIO = 100

---------------------------------------------------------------------------
-- JSON: the project's "json" module when present, else lua-cjson.
local json_mod
local function json()
  if json_mod == nil then
    local ok, j = pcall(require, "json")
    if ok and type(j) == "table" and j.encode and j.decode then
      json_mod = j
    else
      json_mod = require "cjson"
    end
  end
  return json_mod
end

local function json_decode(s)
  local ok, v, err = pcall(json().decode, s)
  if not ok then return nil, tostring(v) end
  if v == nil and err ~= nil then return nil, tostring(err) end
  return v
end

-- a value json cannot encode is the caller's mistake: raised at the
-- user's line (level as build's), naming the option
local function json_encode(v, level)
  local ok, s, err = pcall(json().encode, v)
  if not ok or s == nil then
    local msg = tostring(ok and err or s):gsub("^[^:]*%.lua:%d+: ", "")
    error(fmt("bad option 'json' (%s)", msg), level + 2)
  end
  return s
end

---------------------------------------------------------------------------
-- URL encoding

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return fmt("%%%02X", c:byte())
  end))
end
M.escape = escape

function M.unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- {a = 1, b = {"x", "y"}} or {{"a", 1}, {"b", "x"}} -> "a=1&b=x&b=y"
-- (keys sorted in the map form, so the result is stable)
local function encode_query(t)
  local out = {}
  local function add(k, v)
    if type(v) == "table" then
      for _, e in ipairs(v) do
        out[#out + 1] = escape(k) .. "=" .. escape(e)
      end
    elseif v ~= nil and v ~= false then
      out[#out + 1] = escape(k) .. "=" .. escape(v == true and "" or v)
    end
  end
  if type(t[1]) == "table" then
    for _, kv in ipairs(t) do add(kv[1], kv[2]) end
  else
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = t[k]
      if v == nil then v = t[tonumber(k)] end
      add(k, v)
    end
  end
  return concat(out, "&")
end
M.encode_query = encode_query

local function add_params(url, params)
  local q = type(params) == "string" and params or encode_query(params)
  if q == "" then return url end
  local base, frag = url:match("^([^#]*)(#.*)$")
  if not base then base, frag = url, "" end
  local sep = base:find("?", 1, true) and "&" or "?"
  if base:sub(-1) == "?" or base:sub(-1) == "&" then sep = "" end
  return base .. sep .. q .. frag
end

---------------------------------------------------------------------------
-- Options

local known = {
  headers = "table", params = true, body = "string", json = true,
  form = true, timeout = "number", connect_timeout = "number",
  follow = true, verify = "boolean", cafile = "string", auth = "table",
  proxy = true, http_version = "string", decompress = true,
  max_size = "number", stream = "boolean", chunk_size = "number",
  max_ratio = true,
  user_agent = "string", cookies = "boolean", unix_socket = "string",
  verbose = true, retry = true,
  -- download only
  progress = "function", progress_bar = "boolean",
}

-- CR or LF would end a line of the request head (and add lines of the
-- caller's choosing to it); NUL would cut the string where C reads it.
local function unsafe(s)
  return type(s) == "string" and s:find("[\r\n\0]") ~= nil
end

-- The options whose strings reach the request head or C (the body and
-- form, sent as bytes, may hold anything).
local cstrings = {user_agent = true, cafile = true, unix_socket = true,
  http_version = true, proxy = true}

-- retry = true | n (attempts) | {attempts =, backoff =, max_backoff =,
-- factor =, jitter =, on = {...}, methods = {...}, attempt_timeout =,
-- on_retry = function(attempt, delay, res, err)}: see request_retry.
local RETRY_FIELDS = {attempts = "number", backoff = "number",
  max_backoff = "number", factor = "number", jitter = "boolean",
  on = "table", methods = "table", attempt_timeout = "number",
  on_retry = "function"}
local RETRY_ON = {"connect", "timeout", "5xx", "429"}
local RETRY_CLASSES = {connect = true, timeout = true, ["4xx"] = true,
  ["5xx"] = true}
-- RFC 9110's idempotent methods: sending one twice does no more harm
local IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}

-- retry_conf(v, level) -> the retry option as {attempts =, ..., on = set,
-- methods = set}, or nil for false; raises on a bad one.
local function retry_conf(v, level)
  if v == false then return nil end
  if v == true then
    v = {}
  elseif type(v) == "number" then
    v = {attempts = v}
  elseif type(v) ~= "table" then
    error(fmt("bad option 'retry' (table, number or boolean expected, "
      .. "got %s)", type(v)), level + 1)
  end
  local c = {}
  for k, x in pairs(v) do
    local want = RETRY_FIELDS[k]
    if not want then
      error(fmt("bad option 'retry' (unknown field '%s')", tostring(k)),
        level + 1)
    end
    if type(x) ~= want or (want == "number" and not (x >= 0))
        or (k == "attempts" and (x < 1 or x ~= floor(x))) then
      error(fmt("bad option 'retry' (field '%s': %s expected)", k,
        k == "attempts" and "integer >= 1" or want == "number"
        and "number >= 0" or want), level + 1)
    end
    c[k] = x
  end
  local on = {}
  for i, x in ipairs(v.on or RETRY_ON) do
    local st = tonumber(x)
    if RETRY_CLASSES[x] then
      on[x] = true
    elseif st and st >= 100 and st <= 599 and st == floor(st) then
      on[floor(st)] = true
    else
      error(fmt("bad option 'retry' (on[%d]: 'connect', 'timeout', "
        .. "'4xx', '5xx' or a status expected)", i), level + 1)
    end
  end
  local methods = {}
  for i, m in ipairs(v.methods or IDEMPOTENT) do
    if type(m) ~= "string" then
      error(fmt("bad option 'retry' (methods[%d]: string expected)", i),
        level + 1)
    end
    methods[m:upper()] = true
  end
  c.on, c.methods = on, methods
  return c
end

local function check_opts(opts, level)
  for k, v in pairs(opts) do
    local want = known[k]
    if want == nil then
      error(fmt("unknown option '%s'", tostring(k)), level + 1)
    end
    if want ~= true and type(v) ~= want then
      error(fmt("bad option '%s' (%s expected, got %s)", k, want, type(v)),
        level + 1)
    end
    if k == "retry" then retry_conf(v, level + 1) end
    local bad = cstrings[k] and unsafe(v)
    if k == "auth" then
      for _, f in pairs(v) do bad = bad or unsafe(f) end
    end
    if bad then
      error(fmt("bad option '%s' (must not contain CR, LF or NUL)", k),
        level + 1)
    end
  end
end

local function bad_header(s)
  return type(s) ~= "string" or unsafe(s)
end

-- RFC 9110's token: what a method may be.
local function bad_method(m)
  return not m:find("^[%w!#$%%&'*+%-.^_`|~]+$")
end

-- A URL with CR, LF or NUL fails as curl fails other malformed URLs
-- (curl itself would cut it at a NUL: "/a\0/../secret" sent "GET /a").
local BAD_URL = "URL using bad/illegal format or missing URL"

-- Request header lines from default and call headers (the call wins,
-- case-insensitively). A value may be a list (repeated header), "" (sent
-- empty) or false (suppress a header curl would add).
local function header_lines(defaults, headers, level)
  local merged, order = {}, {}
  local function add(t)
    if not t then return end
    for k, v in pairs(t) do
      if bad_header(k) or k:find(":", 1, true) or k == "" then
        error(fmt("bad header name %q", tostring(k)), level + 1)
      end
      local lk = k:lower()
      if not merged[lk] then order[#order + 1] = lk end
      merged[lk] = {k, v}
    end
  end
  add(defaults)
  add(headers)
  local lines = {}
  for _, lk in ipairs(order) do
    local k, v = merged[lk][1], merged[lk][2]
    local vals = type(v) == "table" and v or {v}
    for _, e in ipairs(vals) do
      if e == false then
        lines[#lines + 1] = k .. ":"
      else
        e = tostring(e)
        if bad_header(e) then
          error(fmt("bad value for header '%s'", k), level + 1)
        end
        lines[#lines + 1] = e == "" and (k .. ";") or (k .. ": " .. e)
      end
    end
  end
  return lines, merged
end

local function merge(defaults, opts)
  if not defaults then return opts end
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  return o
end

-- The spec table http.core.new() takes (see src/http.c).
local function build(method, url, opts, session, level)
  if type(method) ~= "string" then
    error("bad argument #1 (method expected, got " .. type(method) .. ")",
      level + 1)
  end
  if type(url) ~= "string" then
    error("bad argument (url expected, got " .. type(url) .. ")", level + 1)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad argument (options table expected, got " .. type(opts) .. ")",
      level + 1)
  end
  check_opts(opts, level + 1)
  local defaults = session and session.defaults
  local dheaders = defaults and defaults.headers
  opts = merge(defaults, opts)
  method = method:upper()
  if bad_method(method) then
    error("bad argument #1 to 'request' (method must be a token)", level + 1)
  end
  local spec = {
    method = method, timeout = opts.timeout,
    connect_timeout = opts.connect_timeout or 30,
    verify = opts.verify, cafile = opts.cafile, proxy = opts.proxy,
    unix_socket = opts.unix_socket,
    http_version = opts.http_version, stream = opts.stream,
    chunk_size = opts.chunk_size, user_agent = opts.user_agent,
    max_size = opts.max_size, verbose = opts.verbose,
  }
  if opts.params then url = add_params(url, opts.params) end
  spec.url = url
  -- follow: true (default, at most 10), false, or the maximum
  local follow = opts.follow
  if follow == nil then follow = true end
  if type(follow) == "number" then
    spec.follow, spec.max_redirects = follow > 0, follow
  else
    spec.follow, spec.max_redirects = follow and true or false, 10
  end
  -- decompress: true (default, capped at M.MAX_DECODED), false, or a cap
  local dc = opts.decompress
  if dc == nil then dc = true end
  spec.decompress = dc and true or false
  spec.max_decoded = type(dc) == "number" and dc
    or not opts.stream and M.MAX_DECODED or 0
  local ratio = opts.max_ratio
  if ratio == nil then ratio = M.MAX_RATIO end
  if ratio ~= false and type(ratio) ~= "number" then
    error("bad option 'max_ratio' (number or false expected, got "
      .. type(ratio) .. ")", level + 1)
  end
  spec.max_ratio = ratio or 0
  if opts.auth then
    local a = opts.auth
    spec.user = a.user or a[1]
    spec.pass = a.pass or a.password or a[2] or ""
    spec.auth_type = a.type
    if type(spec.user) ~= "string" then
      error("bad option 'auth' ({user, pass} expected)", level + 1)
    end
  end
  local ctype
  local n = (opts.body and 1 or 0) + (opts.json ~= nil and 1 or 0)
    + (opts.form and 1 or 0)
  if n > 1 then
    error("options 'body', 'json' and 'form' exclude each other", level + 1)
  end
  if opts.body then
    spec.body = opts.body
  elseif opts.json ~= nil then
    spec.body = json_encode(opts.json, level)
    ctype = "application/json"
  elseif opts.form then
    spec.body = type(opts.form) == "string" and opts.form
      or encode_query(opts.form)
    ctype = "application/x-www-form-urlencoded"
  end
  local lines, merged = header_lines(dheaders,
    opts.headers ~= dheaders and opts.headers or nil, level + 1)
  if ctype and not merged["content-type"] then
    lines[#lines + 1] = "Content-Type: " .. ctype
  end
  spec.headers = lines
  if session then
    spec.session = session.share
    spec.cookies = opts.cookies ~= false
  elseif opts.cookies then
    spec.cookies = true
  end
  return spec
end

---------------------------------------------------------------------------
-- Responses

local reasons = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK",
  [201] = "Created", [202] = "Accepted",
  [203] = "Non-Authoritative Information",
  [204] = "No Content", [205] = "Reset Content", [206] = "Partial Content",
  [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [411] = "Length Required", [412] = "Precondition Failed",
  [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
  [418] = "I'm a teapot", [422] = "Unprocessable Content",
  [429] = "Too Many Requests", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}
M.reasons = reasons

-- Header maps: keys are stored lowercased, and looked up case-blind.
local Headers = {}
Headers.__index = function(t, k)
  if type(k) == "string" then return rawget(t, k:lower()) end
end
Headers.__newindex = function(t, k, v)
  rawset(t, type(k) == "string" and k:lower() or k, v)
end

-- A response is the table x:info() made (see src/http.c) with this
-- metatable; headers, header_list, timings, ip, port and local_port are
-- built on first use.
local Response = {}
M.Response = Response

local function phase(a, b)
  local d = a - b
  return d > 0 and d or 0
end

-- _more (see src/http.c): {dns, connect, tls, first_byte, ip, port,
-- local_port}, kept apart so that a response stays a small table.
local function more(r, i)
  local m = rawget(r, "_more")
  if not m then
    local c = rawget(r, "_c")      -- a fast-path response (http/fast.lua)
    local new = not c
    if new then c = rawget(r, "_cn") end
    if not c then return nil end
    m = {new and c.dns or 0, new and c.conn or 0, 0, rawget(r, "_fb"),
      c.ip or false, c.port or 0, c.local_port or 0}
    rawset(r, "_more", m)
  end
  return m[i]
end

local lazy = {
  headers = function(r)
    local map, list = core.parse_head(r._head or "")
    setmetatable(map, Headers)
    rawset(r, "header_list", list)
    return map
  end,
  header_list = function(r)
    local _ = r.headers
    return rawget(r, "header_list")
  end,
  timings = function(r)
    local dns, conn, tls = more(r, 1) or 0, more(r, 2) or 0, more(r, 3) or 0
    return {
      dns = dns,
      connect = phase(conn, dns),
      tls = tls > 0 and phase(tls, conn) or 0,
      first_byte = more(r, 4) or 0,
      total = r.elapsed,
    }
  end,
  ip = function(r) return more(r, 5) or nil end,
  port = function(r) return more(r, 6) end,
  local_port = function(r) return more(r, 7) end,
  attempts = function() return 1 end,    -- set by request_retry
}

Response.__index = function(r, k)
  local f = lazy[k]
  if f then
    local v = f(r)
    rawset(r, k, v)
    return v
  end
  return Response[k]
end

local function human_size(n)
  if n < 1024 then return fmt("%d B", n) end
  if n < 1024 * 1024 then return fmt("%.1f KB", n / 1024) end
  if n < 1024 ^ 3 then return fmt("%.1f MB", n / 1024 / 1024) end
  return fmt("%.1f GB", n / 1024 ^ 3)
end

local function human_ms(s)
  local ms = s * 1000
  if ms < 10 then return fmt("%.1f ms", ms) end
  return fmt("%d ms", floor(ms + 0.5))
end

Response.__tostring = function(r)
  local size = r.body and #r.body or r.size or 0
  return fmt("<http %d %s %s %s>", r.status, r.reason, human_size(size),
    human_ms(r.elapsed))
end

local function make_response(info, method)
  local status = info.status
  if info.reason == "" then info.reason = reasons[status] or "" end
  info.ok = status >= 200 and status < 300
  info.method = method
  return setmetatable(info, Response)
end

-- res:header_values(name) -> every value of a (repeated) header, in
-- order (res.header_list holds all {name, value} pairs as received).
function Response:header_values(name)
  local out = {}
  name = name:lower()
  for _, kv in ipairs(self.header_list) do
    if kv[1]:lower() == name then out[#out + 1] = kv[2] end
  end
  return out
end

function Response:raise_for_status()
  if not self.ok then
    error(fmt("http %d %s: %s", self.status, self.reason, self.url), 2)
  end
  return self
end

-- Streams: read() -> chunk | nil (end) | nil, err. Never raises.
function Response:read()
  local x = self._x
  if not x then
    if self.body and not self._taken then
      self._taken = true
      if self.body ~= "" then return self.body end
    end
    return nil
  end
  local chunk, err = x:read()
  if chunk then
    self.size = (self.size or 0) + #chunk
    return chunk
  end
  self.error = err
  self._x = nil
  local info = x:info()
  if info then
    self.elapsed = info.elapsed
    if rawget(self, "timings") then self.timings.total = info.elapsed end
  end
  x:close()
  return nil, err
end

-- for chunk in res:chunks() do ... end; raises on a transfer error, so a
-- truncated body never looks like a complete one (as io.lines does).
function Response:chunks()
  return function()
    local chunk, err = self:read()
    if chunk then return chunk end
    if err then error(err, 2) end
    return nil
  end
end

-- for line in res:lines() do ... end: lines without "\n" (and "\r").
function Response:lines()
  local buf, pos, eof = "", 1, false
  return function()
    while true do
      local i = buf:find("\n", pos, true)
      if i then
        local line = buf:sub(pos, i - 1)
        pos = i + 1
        return (line:gsub("\r$", ""))
      end
      if eof then
        if pos <= #buf then
          local line = buf:sub(pos)
          pos = #buf + 1
          return (line:gsub("\r$", ""))
        end
        return nil
      end
      local chunk, err = self:read()
      if err then error(err, 2) end
      if chunk then
        buf = buf:sub(pos) .. chunk
        pos = 1
      else
        eof = true
      end
    end
  end
end

-- The rest of a streamed body as one string (| nil, err).
function Response:text()
  if not self._x then return self.body end
  local parts = {}
  while true do
    local chunk, err = self:read()
    if err then return nil, err end
    if not chunk then break end
    parts[#parts + 1] = chunk
  end
  self.body = concat(parts)
  return self.body
end

-- res:json() -> value | nil, "invalid JSON: ..."
function Response:json()
  local body, err = self:text()
  if not body then return nil, err end
  local v, jerr = json_decode(body)
  if jerr then return nil, "invalid JSON: " .. jerr end
  return v
end

-- Stop a streamed transfer early; frees the connection.
function Response:close()
  local x = self._x
  self._x = nil
  if x then x:close() end
end
Response.__close = Response.close

-- what the REPL completes on a response (its __index is a function): the
-- documented fields, the lazy ones without computing them, and methods
Response.__fields = {status = "field", reason = "field", ok = "field",
  url = "field", method = "field", body = "field", elapsed = "field",
  http_version = "field", redirects = "field", reused = "field",
  size = "field", headers = "table", header_list = "table",
  timings = "table", ip = "field", port = "field", local_port = "field"}
for k, v in pairs(Response) do
  if type(v) == "function" and k:sub(1, 1) ~= "_" then
    Response.__fields[k] = "function"
  end
end

---------------------------------------------------------------------------
-- Requests

-- The spec of a call without options, per session (and one for plain
-- calls): built once, shared by every such request (core.new takes the
-- url and method apart). Rebuilt when M.MAX_DECODED or M.MAX_RATIO
-- changes.
local fast_eligible, fast_request
local UPPER = {GET = true, POST = true, PUT = true, PATCH = true,
  DELETE = true, HEAD = true, OPTIONS = true}
local plain_base
local last_id = 0

-- A base spec is never changed once built; its _id lets http.core reuse
-- an easy handle last set up from it without setting it up again.
local function base_spec(session, level)
  local b
  if session then b = session.base else b = plain_base end
  if b and b.max_decoded == M.MAX_DECODED and b.max_ratio == M.MAX_RATIO
  then
    return b
  end
  b = build("GET", "", nil, session, level + 1)
  last_id = last_id + 1
  b._id = last_id
  if session then session.base = b else plain_base = b end
  return b
end

---------------------------------------------------------------------------
-- The fast path (lua/http/fast.lua): plain http:// HTTP/1.1 requests on
-- netsh's own sockets; libcurl for everything else. http.engine = "curl"
-- (or NETSH_HTTP_ENGINE=curl in the environment) sends all to libcurl.

M.engine = os.getenv("NETSH_HTTP_ENGINE") == "curl" and "curl" or "auto"

-- A proxy variable in the environment (curl reads them per request; the
-- fast path leaves any request they could apply to to curl).
local env_proxy = false
for _, v in ipairs{"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"} do
  local e = os.getenv(v)
  if e and e ~= "" then env_proxy = true end
end

local fast
local function fast_mod()
  fast = require "http.fast"
  fast.handoff = function(...) return M._handoff(...) end
  fast.store_cookies = function(...) return M._store_cookies(...) end
  return fast
end

local REDIRECT_SAFE = {GET = true, HEAD = true}

-- fast_eligible(spec, method, session): all of: no stream, proxy, Unix
-- socket, max_size; HTTP/1.1 (or unset); basic auth (or none); cookies
-- only in a session whose jar is still empty; redirects followed only
-- for GET and HEAD. The URL is checked by fast.request (false: curl's).
local function fast_static(spec)
  if spec.stream or spec.proxy or spec.unix_socket or spec.max_size then
    return false
  end
  if spec.proxy == nil and env_proxy then return false end
  local v = spec.http_version
  if v ~= nil and v ~= "1.1" then return false end
  if spec.user and spec.auth_type and spec.auth_type ~= "basic" then
    return false
  end
  return true
end

fast_eligible = function(spec, method, session)
  local ok = spec._fast_ok        -- a spec is not changed once built
  if ok == nil then
    ok = fast_static(spec)
    spec._fast_ok = ok
  end
  if not ok then return false end
  if spec.cookies and (not session or session.fast_off) then return false end
  if spec.follow and not REDIRECT_SAFE[method] then return false end
  return true
end

fast_request = function(spec, url, method, session)
  if session and not session.fast_pool then session.fast_pool = {} end
  return (fast or fast_mod()).request(spec, url, method, session)
end

-- The rest of a redirect chain the fast path does not take (another
-- scheme, cookies in the jar, credentials and another host): on libcurl,
-- with the redirects left; the counts carry over.
function M._handoff(spec, url, method, session, hops, connects, t0, other)
  local s = {}
  for k, v in pairs(spec) do
    if k:sub(1, 1) ~= "_" then s[k] = v end
  end
  s.url, s.method = url, method
  s.max_redirects = (spec.max_redirects or 10) - hops
  if other then                          -- curl sends them to one host
    s.user, s.pass = nil, nil
    local h = {}
    for _, line in ipairs(spec.headers or {}) do
      local n = line:match("^([^:;]+)"):lower()
      if n ~= "authorization" and n ~= "cookie" then h[#h + 1] = line end
    end
    s.headers = h
  end
  if session and spec.cookies then session.fast_off = true end
  local x = core.new(s, url, method)
  local ok, err = x:perform()
  if not ok then
    x:close()
    return nil, err
  end
  local res = x:finish(method)
  res.redirects = res.redirects + hops
  res.connects = res.connects + connects
  res.reused = res.connects == 0
  res.elapsed = task.now() - t0
  return res
end

-- Set-Cookie fields the fast path received in a session with cookies on:
-- into the session's curl jar (lua/netsh/cookie.lua makes each line as
-- curl would have stored it). From then on the session's requests go to
-- libcurl (it sends the jar).
local cookie = require "netsh.cookie"
local function cookie_line(host, path, v)
  return cookie.line(host, path, v, core.getdate)
end
M._cookie_line = cookie_line

function M._store_cookies(session, url, head)
  session.fast_off = true
  if not session.share then return end
  local host = url:match("^http://([^/:?#]*)")
  local path = url:match("^http://[^/?#]*(/[^#]*)") or "/"
  for line in head:gmatch("[^\n]+") do
    local name, v = line:match("^([^:]+):%s*(.-)%s*\r?$")
    if name and name:lower() == "set-cookie" then
      local l = cookie_line(host, path, v)
      if l then session.share:add_cookie(l) end
    end
  end
end

local function request(method, url, opts, session, level)
  local spec
  if opts == nil and type(url) == "string" and UPPER[method] then
    spec = base_spec(session, level + 1)       -- the common fast path
  else
    spec = build(method, url, opts, session, level + 1)
    url, method = spec.url, spec.method
  end
  -- verbose = true (or "hex"), --trace or NETSH_TRACE: curl -v on stderr
  local trace = package.loaded["netsh.trace"]
  local verbose = spec.verbose or (trace and trace.enabled)
  -- (the fast path takes only URLs of plain characters: no CR, LF, NUL)
  if not verbose and M.engine ~= "curl" and fast_eligible(spec, method,
      session) then
    local res, err = fast_request(spec, url, method, session)
    if res then
      if res.reason == "" then res.reason = reasons[res.status] or "" end
      setmetatable(res, Response)
      if session then
        session.requests = session.requests + 1
        session.connections = session.connections + res.connects
      end
      return res
    end
    if res == nil then return nil, err end
    -- false: not for the fast path after all (nothing was sent)
  end
  if unsafe(url) then return nil, BAD_URL end
  if session and spec.cookies then
    session.fast_off = true      -- the jar may hold cookies from now on
  end
  local x, tname
  if verbose then
    local t = task.current()
    tname = t and t:name() or "-"
    x = core.new(spec, url, method, tname,
      spec.verbose == "hex" or (trace and trace.enabled and trace.hexdump))
  else
    x = core.new(spec, url, method)
  end
  local ok, err = x:perform()
  if not ok then
    x:close()
    if verbose then
      io.stderr:write(fmt("netsh trace: [%s] http * %s %s -> nil, %s\n",
        tname, method, url, tostring(err)))
    end
    return nil, err
  end
  local res
  if spec.stream then
    res = make_response(x:info(), method)
    res._x = x
    res.size = 0
  else
    res = x:finish(method)      -- info, body, ok, method; closes x
    if res.reason == "" then res.reason = reasons[res.status] or "" end
    setmetatable(res, Response)
  end
  if session then
    session.requests = session.requests + 1
    session.connections = session.connections + res.connects
  end
  if verbose then
    local t = res.timings
    io.stderr:write(fmt("netsh trace: [%s] http * %d %s, %s%s: dns %s, "
      .. "connect %s, tls %s, first byte %s, total %s\n", tname, res.status,
      res.reason, res.reused and "reused connection" or "new connection",
      res.ip and (" to " .. res.ip .. ":" .. tostring(res.port)) or "",
      human_ms(t.dns), human_ms(t.connect), human_ms(t.tls),
      human_ms(t.first_byte), human_ms(t.total)))
  end
  return res
end

---------------------------------------------------------------------------
-- Retries (opts.retry): the attempts run in task.retry (lua/task.lua),
-- with its backoff. Retried: the methods in retry.methods (idempotent
-- ones by default) after the failures and statuses in retry.on:
-- "connect" (refused, could not connect, closed before a whole
-- response), "timeout", "4xx"/"5xx" or a status. The call's timeout
-- bounds the whole sequence (retry.attempt_timeout, each attempt); a
-- Retry-After in a retried response replaces the backoff, capped at
-- max_backoff.

local function retry_class(err)
  if err == "timeout" then return "timeout" end
  if err == "connection refused" or err:find("^failed to connect")
      or err:find("^couldn't connect") or err:find("^closed") then
    return "connect"
  end
end

local MONTHS = {Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12}

-- Days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Retry-After: delay-seconds or an HTTP-date (IMF-fixdate) -> seconds
-- from now, or nil when it is neither.
local function retry_after(v)
  if not v then return nil end
  local n = v:match("^%s*(%d+)%s*$")
  if n then return tonumber(n) end
  local d, mon, y, h, mi, s = v:match(
    "^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  if not d or not MONTHS[mon] then return nil end
  local t = days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
  return math.max(0, t - os.time())
end
M.retry_after = retry_after

local request_once = request

local function request_retry(conf, method, url, opts, session, level)
  -- bad options raise here, at the caller's level, not inside the loop
  build(method, url, opts, session, level + 1)
  method = method:upper()
  if not conf.methods[method] then
    local res, err = request_once(method, url, opts, session, level + 1)
    if res then res.attempts = 1 end
    return res, err
  end
  local timeout = opts.timeout
  if timeout == nil and session then timeout = session.defaults.timeout end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local tries = 0
  local res, err = task.retry(function(n, left)
    tries = n
    local t = conf.attempt_timeout
    if left then t = t and math.min(t, left) or left end
    if t then o.timeout = math.max(t, 0.001) end
    local r, e = request_once(method, url, o, session, 1)
    if r then r.attempts = n end
    return r, e
  end, {attempts = conf.attempts, backoff = conf.backoff,
    max_backoff = conf.max_backoff, factor = conf.factor,
    jitter = conf.jitter, timeout = timeout,
    retry_if = function(r, e)
      if not r then
        local class = retry_class(e)
        return class ~= nil and conf.on[class] == true
      end
      local st = r.status
      if conf.on[st] or conf.on[(st // 100) .. "xx"] then
        return true, retry_after(r.headers["retry-after"])
      end
      return false
    end,
    on_retry = function(n, d, r, e)
      if conf.on_retry then conf.on_retry(n, d, r, e) end
      if r then r:close() end
    end})
  if not res and tries > 1 then
    err = fmt("%s (after %d attempts)", tostring(err), tries)
  end
  return res, err
end

-- From here on every call goes through this: no retry option, the
-- request as before; with one, request_retry.
request = function(method, url, opts, session, level)
  local conf = opts and opts.retry
  if conf == nil and session then conf = session.defaults.retry end
  if not conf then return request_once(method, url, opts, session, level) end
  return request_retry(retry_conf(conf, level + 1), method, url, opts or {},
    session, level)
end

-- http.request(method, url [, opts]) | http.request{method=, url=, ...}
function M.request(method, url, opts)
  if type(method) == "table" and url == nil then
    local t = {}
    for k, v in pairs(method) do t[k] = v end
    method, url = t.method or "GET", t.url
    t.method, t.url = nil, nil
    opts = t
  end
  local res, err = request(method, url, opts, nil, 2)  -- not a tail call:
  return res, err                     -- errors point at the user's line
end

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  local METHOD = m:upper()
  M[m] = function(url, opts)
    local res, err = request(METHOD, url, opts, nil, 2)
    return res, err
  end
end

---------------------------------------------------------------------------
-- Server-sent events: the parser is lua/netsh/sse.lua; res:events() on a
-- response and http.events(), which reconnects, are here.
local sse = require "netsh.sse"

-- http.sse_parser([last_id, retry]) -> a parser (see netsh/sse.lua);
-- http.SSE_MAX_EVENT is the size one event may reach (16 MiB)
function M.sse_parser(last_id, retry)
  return sse.parser(last_id, retry, M.SSE_MAX_EVENT)
end
M.SSE_MAX_EVENT = sse.MAX_EVENT

-- for ev in res:events() do ... end, on a streamed (or any) response;
-- raises on a transfer error, as chunks() does.
function Response:events()
  local p = M.sse_parser()
  local queue, qi = {}, 1
  return function()
    while true do
      local ev = queue[qi]
      if ev then
        queue[qi] = nil
        qi = qi + 1
        return ev
      end
      local chunk, err = self:read()
      if err then error(err, 2) end
      if not chunk then return nil end
      queue, qi = p:feed(chunk), 1
    end
  end
end

-- for ev in http.events(url [, opts]) do ... end: an EventSource. Sends
-- Accept: text/event-stream and, when reconnecting, Last-Event-ID; after
-- the stream ends or fails (refused, closed, timeout) connects again
-- after the server's retry time, else opts.reconnect seconds (3), at
-- most opts.max_reconnects times (no limit by default; then a failure
-- to connect raises "connection refused (after 4 attempts)"; the first
-- request sends opts.last_event_id when given): until the task
-- is cancelled or the loop is left (the connection is closed then). A
-- 204 ends the events; another status, or a response that is not
-- text/event-stream, raises "http 404 Not Found: <url>" or
-- "not an event stream: <content-type>". Other opts: as http.get.
function M.events(url, opts)
  if type(url) ~= "string" then
    error("bad argument #1 to 'events' (string expected, got "
      .. type(url) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'events' (table expected, got "
      .. type(opts) .. ")", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local reconnect, max, first_id = o.reconnect or 3, o.max_reconnects,
    o.last_event_id
  o.reconnect, o.max_reconnects, o.last_event_id = nil, nil, nil
  if type(reconnect) ~= "number" or not (reconnect >= 0) then
    error("bad option 'reconnect' (number >= 0 expected)", 2)
  end
  if max ~= nil and (math.type(max) ~= "integer" or max < 0) then
    error("bad option 'max_reconnects' (integer >= 0 expected)", 2)
  end
  if first_id ~= nil and (type(first_id) ~= "string" or unsafe(first_id))
      then
    error("bad option 'last_event_id' (string without CR, LF or NUL "
      .. "expected)", 2)
  end
  o.stream = true
  check_opts(o, 2)
  local headers = {}
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  local has_accept = false
  for k in pairs(headers) do
    if type(k) == "string" and k:lower() == "accept" then
      has_accept = true
    end
  end
  if not has_accept then headers.Accept = "text/event-stream" end
  o.headers = headers
  -- res, parser, id, retry, reconnects, started
  local st = {id = first_id}
  local closer = setmetatable({}, {__close = function()
    if st.res then st.res:close() end
    st.res = nil
  end})
  local queue, qi = {}, 1
  local function connect()
    if st.started then
      if max and (st.reconnects or 0) >= max then
        -- given up: a failure to connect is an error, a stream that
        -- ended is the end
        if st.err then
          error(fmt("%s (after %d attempts)", st.err, max + 1), 0)
        end
        return false
      end
      st.reconnects = (st.reconnects or 0) + 1
      task.sleep(st.retry and st.retry / 1000 or reconnect)
    end
    st.started = true
    headers["Last-Event-ID"] = st.id ~= "" and st.id or nil
    local res, err = request("GET", url, o, nil, 1)
    st.err = err
    if not res then return true end            -- a network error: again
    if res.status == 204 then
      res:close()
      return false
    end
    local ctype = res.headers["content-type"] or ""
    if not res.ok then
      res:close()
      error(fmt("http %d %s: %s", res.status, res.reason, url), 0)
    end
    if not ctype:lower():find("^%s*text/event%-stream") then
      res:close()
      error("not an event stream: " .. ctype, 0)
    end
    st.res, st.parser = res, M.sse_parser(st.id, st.retry)
    return true
  end
  return function()
    while true do
      local ev = queue[qi]
      if ev then
        queue[qi] = nil
        qi = qi + 1
        return ev
      end
      if not st.res then
        if not connect() then return nil end
      else
        local chunk = st.res:read()
        if chunk then
          local p = st.parser
          queue, qi = p:feed(chunk), 1
          st.id, st.retry = p.id, p.retry
        else
          st.res:close()             -- ended or failed: connect again
          st.res = nil
        end
      end
    end
  end, nil, nil, closer
end

---------------------------------------------------------------------------
-- Sessions: default options, shared cookies and a connection pool of
-- their own (keep-alive: res.reused, s.connections counts new ones).

local Session = {}
Session.__index = Session
M.Session = Session

function M.session(defaults)
  defaults = defaults or {}
  if type(defaults) ~= "table" then
    error("bad argument #1 to 'session' (table expected, got "
      .. type(defaults) .. ")", 2)
  end
  check_opts(defaults, 2)
  local d = {}
  for k, v in pairs(defaults) do d[k] = v end
  return setmetatable({defaults = d, share = core.session(), requests = 0,
    connections = 0, fast_pool = {}}, Session)
end

function Session:request(method, url, opts)
  if not self.share then error("session is closed", 2) end
  local res, err = request(method, url, opts, self, 2)
  return res, err
end

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  local METHOD = m:upper()
  Session[m] = function(self, url, opts)
    if not self.share then error("session is closed", 2) end
    local res, err = request(METHOD, url, opts, self, 2)
    return res, err
  end
end

-- s:cookies() -> {{name=, value=, domain=, path=, secure=, expires=}, ...}
function Session:cookies()
  local out = {}
  if not self.share then return out end
  for _, line in ipairs(self.share:cookies()) do
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
    local domain, path, secure, expires, name, value =
      f[1], f[3], f[4], f[5], f[6], f[7]
    if value then
      out[#out + 1] = {domain = domain:gsub("^#HttpOnly_", ""), path = path,
        secure = secure == "TRUE", expires = tonumber(expires),
        name = name, value = value}
    end
  end
  return out
end

function Session:close()
  if self.fast_pool and fast then fast.close_pool(self.fast_pool) end
  if self.share then
    self.share:close()
    self.share = nil
  end
end
Session.__close = Session.close

---------------------------------------------------------------------------
-- download(url, path [, opts]) -> res | nil, err [, res]
-- Streams to path .. ".part-XXXXXX" and renames it over path at the end,
-- so path is either the old file or the complete new one; a symlink's
-- target is replaced so, a device or FIFO written through (see
-- core.open_download). opts.progress is
-- called as progress(done, total|nil); a bar goes to stderr when it is a
-- terminal (opts.progress_bar = false turns it off).

local function bar_printer()
  local now_fn = require("task").now
  local t0, last = now_fn(), 0
  return function(done, total, final)
    local now = now_fn()
    if not final and now - last < 0.1 then return end
    last = now
    local rate = done / math.max(now - t0, 1e-3)
    local line
    if total and total > 0 then
      local frac = math.min(done / total, 1)
      local w = 30
      local fill = floor(frac * w + 0.5)
      line = fmt("\r[%s%s] %3d%% %s / %s  %s/s ", ("#"):rep(fill),
        (" "):rep(w - fill), floor(frac * 100), human_size(done),
        human_size(total), human_size(rate))
    else
      line = fmt("\r%s  %s/s ", human_size(done), human_size(rate))
    end
    io.stderr:write(line, final and "\n" or "")
    io.stderr:flush()
  end
end

local function download(session, url, path, opts)
  if type(path) ~= "string" then
    error("bad argument #2 to 'download' (string expected, got "
      .. type(path) .. ")", 2)
  end
  if path:find("\0", 1, true) then
    error("bad argument #2 to 'download' (path must not contain a NUL "
      .. "byte)", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local progress, show = o.progress, o.progress_bar
  o.progress, o.progress_bar = nil, nil
  o.stream = true
  local res, err = request("GET", url, o, session, 3)
  if not res then return nil, err end
  if not res.ok then
    res:close()
    return nil, fmt("http %d %s", res.status, res.reason), res
  end
  local total = tonumber(res.headers["content-length"])
  if res.headers["content-encoding"] then total = nil end
  local bar
  if show ~= false and core.isatty(2) then bar = bar_printer() end
  -- tmp is nil when path is written through (a device, a FIFO)
  local f, tmp, target = core.open_download(path)
  if not f then
    res:close()
    return nil, tmp
  end
  -- written through, f may be our own stdout (/dev/stdout): what the
  -- script printed so far goes first
  if not tmp then pcall(io.stdout.flush, io.stdout) end
  -- on an error raised through here (deadline, interrupt): no leftovers
  local guard <close> = setmetatable({}, {__close = function(g)
    if not g.ok then
      if not g.closed then f:close() end
      if tmp then os.remove(tmp) end
      res:close()
    end
  end})
  local done = 0
  while true do
    local chunk, rerr = res:read()
    if rerr then return nil, rerr end
    if not chunk then break end
    local ok, werr = f:write(chunk)
    if not ok then return nil, werr end
    done = done + #chunk
    if progress then progress(done, total) end
    if bar then bar(done, total) end
  end
  if bar then bar(done, total, true) end
  guard.closed = true
  local ok, cerr = f:close()
  if not ok then return nil, cerr end
  if tmp then
    ok, cerr = os.rename(tmp, target)
    if not ok then return nil, cerr end
  end
  guard.ok = true
  res.path, res.size = path, done
  return res
end

function M.download(url, path, opts)
  return download(nil, url, path, opts)
end

function Session:download(url, path, opts)
  if not self.share then error("session is closed", 2) end
  return download(self, url, path, opts)
end

return M
