-- http/fast.lua -- "http.fast": the HTTP client's own HTTP/1.1 path for
-- plain http:// keep-alive requests, on netsh's TCP sockets (DNS by c-ares,
-- the loop's timeouts) and the strict response parser of src/http_parse.c
-- ("http.parser"). lua/http.lua sends a request here only when libcurl
-- would add nothing (see fast_eligible there: no TLS, proxy, Unix socket,
-- stream, trace, ...); everything else goes to libcurl as before. The
-- result has the fields of the Response the curl path makes (src/http.c
-- finish): status, reason, status_line, http_version, url, redirects,
-- connects, reused, size, elapsed, _head, body, ok, method; _more is
-- made from _c/_cn and _fb on first use (lua/http.lua).
--
-- Connections: a keep-alive pool per session (and one for plain calls),
-- keyed by host:port, used LIFO, at most M.MAX_IDLE idle per key. One
-- request at a time per connection. A kept-alive connection that fails
-- before any byte of the response (the peer closed it meanwhile) is
-- replaced by a fresh one and the request sent again, for idempotent
-- methods only (a POST is never sent twice: before reuse for one, the
-- idle connection is polled, and a dead one dropped).
local socket = require "socket"
local parser = require "http.parser"
local now = require("task").now
local response, chunk, trailers = parser.response, parser.chunk,
  parser.trailers
local concat, fmt = table.concat, string.format
local tonumber = tonumber

local M = {}

M.MAX_IDLE = 256        -- idle connections kept per host:port and pool
M.served = 0            -- requests answered here (the specs read it)
local RECV = 65536      -- one read's size

-- RF_* of src/http_parse.c
local RF_CHUNKED, RF_CLOSE, RF_KEEPALIVE, RF_COOKIE = 1, 2, 4, 8

local IDEMPOTENT = {GET = true, HEAD = true, PUT = true, DELETE = true,
  OPTIONS = true, TRACE = true}

---------------------------------------------------------------------------
-- URLs: only what curl would send unchanged takes this path (lowercase
-- scheme and host, a plain port, a path of URL characters without dot
-- segments); anything else is curl's, which normalises it.

-- split(url) -> host, port, hostport, target, url | nil
local function split_url(url)
  local auth, rest = url:match("^http://([^/?#]*)(.*)$")
  if not auth then return nil end
  local host, port = auth:match("^([%l%d%.%-]+):([1-9]%d?%d?%d?%d?)$")
  if host then
    port = tonumber(port)
    if port > 65535 then return nil end
  else
    host, port = auth:match("^[%l%d%.%-]+$"), 80
    if not host then return nil end
  end
  if host:find("^%.") or host:find("%.%.") or host == "" then return nil end
  local target = rest:match("^([^#]*)")
  if target == "" then
    target = "/"
    url = "http://" .. auth .. "/" .. rest   -- as curl reports it
  elseif target:byte(1) ~= 47 then          -- "/"
    return nil
  end
  if target:find("[^%w%-%._~!$&'()*+,;=:@/?%%]") or target:find("/%.")
      or target:find("%%%X") or target:find("%%%x%X") or target:find("%%.?$")
  then
    return nil
  end
  return host, port, port == 80 and host or (host .. ":" .. port), target,
    url
end

-- the answers for the URLs asked lately (a loop asks for the same ones)
local split_cache, split_n = {}, 0
local function split(url)
  local t = split_cache[url]
  if t then return t[1], t[2], t[3], t[4], t[5] end
  local host, port, hostport, target, nurl = split_url(url)
  if not host then return nil end
  if split_n >= 256 then split_cache, split_n = {}, 0 end
  split_cache[url] = {host, port, hostport, target, nurl}
  split_n = split_n + 1
  return host, port, hostport, target, nurl
end
M.split = split

---------------------------------------------------------------------------
-- Pools: pool[key] is a stack of idle connections {sock, ip, port,
-- local_port}.

function M.new_pool()
  return {}
end
local plain_pool = {}

local function close_conn(c)
  if c.sock then c.sock:close() end
  c.sock = nil
end

function M.close_pool(pool)
  pool[true] = true                      -- closed: put_back closes
  for _, list in pairs(pool) do
    if list == true then goto next end
    for i = #list, 1, -1 do
      close_conn(list[i])
      list[i] = nil
    end
    ::next::
  end
end

local function put_back(pool, key, c)
  if pool[true] then                     -- the session was closed
    close_conn(c)
    return
  end
  local list = pool[key]
  if not list then
    list = {}
    pool[key] = list
  end
  if #list >= M.MAX_IDLE then
    close_conn(c)
    return
  end
  c.sock:idle(true)
  list[#list + 1] = c
end

-- an idle connection polled: gone (EOF, reset, or bytes nobody asked for)
local function dead(c)
  local s = c.sock
  s:settimeout(0)
  c.to = 0
  local data, err = s:receiveany(1)
  return data ~= nil or err ~= "timeout"
end

local DNS_ERR = {["host not found"] = true,
  ["temporary failure in name resolution"] = true,
  ["non-recoverable failure in name resolution"] = true,
  ["host or service not provided, or not known"] = true}

-- connect(host, port, deadline, ctimeout) -> conn | nil, err
local function connect(host, port, deadline, ctimeout)
  local s, err = socket.tcp()
  if not s then return nil, err end
  local t = ctimeout
  if deadline then
    local left = deadline - now()
    if not t or left < t then t = left end
  end
  if t and t <= 0 then
    s:close()
    return nil, "timeout"
  end
  s:settimeout(t or -1)
  local ok
  ok, err = s:connect(host, port)
  if not ok then
    s:close()
    if DNS_ERR[err] then return nil, "could not resolve host: " .. host end
    if err ~= "timeout" and err ~= "connection refused" then
      err = "failed to connect to " .. host .. " port " .. port .. ": "
        .. tostring(err)
    end
    return nil, err
  end
  s:setoption("tcp-nodelay", true)
  local tm = s:timings()
  local ip, rport = s:getpeername()
  local _, lport = s:getsockname()
  return {sock = s, ip = ip, port = rport, local_port = lport,
    dns = tm.dns or 0, conn = tm.connect or 0}
end

---------------------------------------------------------------------------
-- The request head: what curl 7.88 sends for the same spec (checked
-- byte for byte by tests/spec/http_fast_spec.lua): the request line,
-- Host, Authorization, User-Agent, Accept, Accept-Encoding, the spec's
-- header lines in order (a line "Name:" suppresses curl's own Name, sent
-- nothing; "Name;" sends it empty), then for a body Content-Length and
-- (unless given) Content-Type: application/x-www-form-urlencoded.

local function b64(s)
  return (require "mime").b64(s)
end

-- tail(spec) -> the head after the request line's Host field, without
-- Content-Length and the final CRLF, and whether Content-Type was given;
-- kept in the spec (a spec is not changed once built).
local function head_tail(spec)
  local t = spec._fast_tail
  if t then return t, spec._fast_ctype end
  local given, custom, host_line = {}, {}, nil
  for _, line in ipairs(spec.headers or {}) do
    local name, sep, value = line:match("^([^:;]+)([:;])%s*(.*)$")
    if name then
      local lname = name:lower()
      given[lname] = true
      local l
      if sep == ";" then
        l = name .. ":"
      elseif value ~= "" then
        l = name .. ": " .. value
      end
      if lname == "host" then
        host_line = l        -- curl sends a given Host where its own goes
      elseif l then
        custom[#custom + 1] = l
      end
    end
  end
  local out = {host_line}
  if spec.user and not given.authorization then
    out[#out + 1] = "Authorization: Basic "
      .. b64(spec.user .. ":" .. (spec.pass or ""))
  end
  if not given["user-agent"] then
    out[#out + 1] = "User-Agent: " .. (spec.user_agent or M.USER_AGENT)
  end
  if not given.accept then out[#out + 1] = "Accept: */*" end
  if spec.decompress and not given["accept-encoding"] then
    out[#out + 1] = "Accept-Encoding: " .. M.ACCEPT_ENCODING
  end
  for _, l in ipairs(custom) do out[#out + 1] = l end
  out[#out + 1] = ""
  t = concat(out, "\r\n")
  spec._fast_tail, spec._fast_ctype, spec._fast_host = t,
    given["content-type"], given.host
  spec._fast_cred = given.authorization or given.cookie
  spec._fast_reqs = {n = 0}     -- request heads by method and URL
  return t, given["content-type"]
end

---------------------------------------------------------------------------
-- One exchange on one connection.

-- Reads more bytes into c.buf (a string) -> true | nil, err
-- The socket's timeout for the next wait: what is left of the request's
-- (none: set once per connection). -> false when nothing is left.
local function arm(c)
  local d = c.deadline
  if d then
    local left = d - now()
    if left <= 0 then return false end
    c.sock:settimeout(left)
    c.to = left
  elseif c.to ~= -1 then
    c.sock:settimeout(-1)
    c.to = -1
  end
  return true
end

local function more(c)
  local s = c.sock
  -- (arm's work only when there is some: a call per read counts here)
  if (c.deadline or c.to ~= -1) and not arm(c) then
    return nil, "timeout"
  end
  local data, err = s:receiveany(RECV)
  if not data then
    if err == "closed" then
      local re = s:readerror()
      if re == "connection reset by peer" then
        return nil, "reset"
      end
    end
    return nil, err
  end
  if not c.first then c.first = now() end
  c.got = true
  if c.buf == "" then c.buf = data else c.buf = c.buf .. data end
  return true
end

local RESET = "closed: recv failure: Connection reset by peer"

-- more(c) failed once part of the answer had come: the connection is
-- done, and the error is worded as curl words it -> nil, err
local function cut(c, err)
  c.keep = false
  if err == "reset" then return nil, RESET end
  if err == "closed" then
    return nil, "closed: transfer closed with outstanding read data "
      .. "remaining"
  end
  return nil, err
end

-- The body by its framing -> body | nil, err; c.keep stays true only
-- when the connection may serve another request.
local function read_body(c, pos, status, clen, flags, method)
  local buf = c.buf
  if method == "HEAD" or status == 204 or status == 304 or status == 101
  then
    if status == 101 then c.keep = false end  -- no upgrade was asked for
    if #buf >= pos then c.keep = false end  -- bytes nobody asked for
    return ""
  end
  if flags & RF_CHUNKED ~= 0 then
    local parts, n = {}, 0
    while true do
      local size, nx = chunk(c.buf, pos)
      if size == false then
        c.keep = false
        return nil, "bad response: bad chunk size"  -- curl: "closed"?
      end
      if size then
        if size == 0 then
          while true do
            local e, why = trailers(c.buf, nx)
            if e then
              if #c.buf >= e then c.keep = false end
              -- trailer fields join the head, as curl shows them
              if e - 3 >= nx then c.trailer = c.buf:sub(nx, e - 3) end
              return concat(parts)
            end
            if e == false then
              c.keep = false
              return nil, "bad response: " .. why
            end
            local ok, err = more(c)
            if not ok then
              c.keep = false
              if err == "reset" then return nil, RESET end
              if err == "closed" then return concat(parts) end
              return nil, err
            end
          end
        end
        while #c.buf < nx + size + 1 do
          local ok, err = more(c)
          if not ok then return cut(c, err) end
        end
        local b = c.buf
        if b:sub(nx + size, nx + size + 1) ~= "\r\n" then
          c.keep = false
          return nil, "bad response: bad chunk end"
        end
        n = n + 1
        parts[n] = b:sub(nx, nx + size - 1)
        pos = nx + size + 2
      else
        local ok, err = more(c)
        if not ok then return cut(c, err) end
      end
    end
  end
  if clen >= 0 then
    local have = #buf - pos + 1
    if have >= clen then
      if have > clen then c.keep = false end
      if pos == 1 and have == clen then return buf end
      return buf:sub(pos, pos + clen - 1)
    end
    local s = c.sock
    if not arm(c) then return nil, "timeout" end
    local data, err, partial = s:receive(clen - have)
    if not data then
      c.keep = false
      if err == "closed" then
        if s:readerror() == "connection reset by peer" then
          return nil, RESET
        end
        return nil, fmt("closed: transfer closed with %d bytes remaining "
          .. "to read", clen - have - #(partial or ""))
      end
      return nil, err
    end
    return buf:sub(pos) .. data
  end
  -- no length: the body ends when the peer closes
  c.keep = false
  local parts = {buf:sub(pos)}
  c.buf = ""
  while true do
    local ok, err = more(c)
    if not ok then
      if err == "closed" then return concat(parts) end
      if err == "reset" then return nil, RESET end
      return nil, err
    end
    parts[#parts + 1] = c.buf
    c.buf = ""
  end
end

-- exchange(c, req, body, method) -> true (the answer in c's fields status,
-- minor, reason, head, body, enc, loc, cookie, sline) | nil, err; c.keep
-- says whether c may serve another request
local function exchange(c, req, body, method)
  local s = c.sock
  if (c.deadline or c.to ~= -1) and not arm(c) then
    return nil, "timeout"
  end
  local ok, err
  if body and #body > 0 then
    if #body <= 65536 then
      ok, err = s:send(req .. body)
    else
      ok, err = s:send(req)
      if ok then ok, err = s:send(body) end
    end
  else
    ok, err = s:send(req)
  end
  if not ok then
    if err == "closed" then return nil, "send" end
    return nil, err
  end
  c.buf, c.keep, c.got, c.trailer = "", true, false, nil
  local pos = 1
  while true do
    local nx, status, minor, reason, head, clen, flags, enc, loc, sline
    if c.buf ~= "" then
      nx, status, minor, reason, head, clen, flags, enc, loc, sline =
        response(c.buf, pos)
    end
    if nx then
      if status >= 100 and status < 200 and status ~= 101 then
        pos = nx                          -- 100 Continue, 103: skip
      else
        local body_s, berr = read_body(c, nx, status, clen, flags,
          method)
        if not body_s then return nil, berr end
        if flags & RF_CLOSE ~= 0 or (minor == 0 and
            flags & RF_KEEPALIVE == 0) then
          c.keep = false
        end
        if c.trailer then head = head .. c.trailer end
        -- the answer, on the connection (no table per request)
        c.status, c.minor, c.reason, c.head, c.body, c.enc, c.loc,
          c.cookie, c.sline = status, minor, reason, head, body_s, enc, loc,
          flags & RF_COOKIE ~= 0, sline
        return true
      end
    elseif nx == false then
      c.keep = false
      return nil, status                  -- the reason
    else
      ok, err = more(c)
      if not ok then
        c.keep = false
        if not c.got then
          -- closed before any answer: stale, if the connection was reused
          if err == "closed" or err == "reset" then
            return nil, "nothing", err
          end
          return nil, err
        end
        return cut(c, err)
      end
    end
  end
end

---------------------------------------------------------------------------
-- Decoding (gzip, deflate) with the curl path's caps: in http.core.

local function decode(spec, enc, body)
  if not spec.decompress or not enc then return body end
  local e = enc:lower()
  if e == "identity" or e == "" then return body end
  return require("http.core").decode(body, e, spec.max_decoded or 0,
    spec.max_ratio or 0)
end

---------------------------------------------------------------------------
-- Redirects: curl's rules (http.lua follows only GET and HEAD here).

-- user or password as curl puts them in a URL
local function userinfo(s)
  return (s:gsub("[^%w%-%._~]", function(ch)
    return fmt("%%%02x", ch:byte())
  end))
end

-- resolve(base, loc) -> absolute URL (RFC 3986 section 5.2, enough of it)
local function resolve(base, loc)
  if loc:find("^%a[%w+.%-]*:") then return loc end
  local scheme, auth, path = base:match("^(%a[%w+.%-]*:)//([^/?#]*)([^#]*)")
  if loc:find("^//") then return scheme .. loc end
  if loc:find("^/") then return scheme .. "//" .. auth .. loc end
  local p = path:match("^([^?]*)")
  if loc == "" then return scheme .. "//" .. auth .. path end
  if loc:find("^%?") then return scheme .. "//" .. auth .. p .. loc end
  if loc:find("^#") then return scheme .. "//" .. auth .. path end
  local dir = p:match("^(.*/)") or "/"
  local merged = dir .. loc
  -- remove dot segments
  local q = merged:match("[?#].*$") or ""
  local segs = {}
  local mp = merged:sub(1, #merged - #q)
  for seg in (mp:sub(2) .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then
      if #segs > 0 then segs[#segs] = nil end
    elseif seg ~= "." then
      segs[#segs + 1] = seg
    end
  end
  local last = mp:match("/([^/]*)$")
  local out = "/" .. concat(segs, "/")
  if (last == "." or last == "..") and out:sub(-1) ~= "/" then
    out = out .. "/"
  end
  return scheme .. "//" .. auth .. out .. q
end
M.resolve = resolve

---------------------------------------------------------------------------

M.USER_AGENT = parser.user_agent    -- as src/http.c gives curl
M.ACCEPT_ENCODING = "deflate, gzip, br, zstd"   -- curl 7.88's

-- request(spec, url, method, session) -> info table | nil, err | false
-- (false: the URL is not for this path; nothing was sent). The info
-- table is the one x:finish() makes on the curl path.
-- M.handoff(spec, url, method, session, hops) is set by lua/http.lua:
-- it runs a redirect hop this path does not take on the curl path.
function M.request(spec, url, method, session)
  local host, port, hostport, target, nurl = split(url)
  if not host then return false end
  url = nurl
  local t0 = now()
  local deadline = spec.timeout and spec.timeout > 0 and t0 + spec.timeout
  local ctimeout = spec.connect_timeout
  if ctimeout and ctimeout <= 0 then ctimeout = nil end
  local pool = session and session.fast_pool or plain_pool
  local url0, orig_auth = url, nil   -- its authority: on a redirect
  local tail, ctype_given = head_tail(spec)
  local body = spec.body
  if body == nil and (method == "POST" or method == "PUT"
      or method == "PATCH") then
    body = ""
  end
  local follow, max = spec.follow, spec.max_redirects or 10
  local hops, connects = 0, 0
  local dns, conn_t, first, fresh, shown
  local c, status, minor, reason, head, rbody, enc, loc, sline
  while true do
    local key = hostport
    local req
    -- a request without a body: its head is kept per method and URL
    local cache = not body and spec._fast_reqs
    local mc = cache and cache[method]
    req = mc and mc[url]
    if not req then
      if spec._fast_host then
        req = method .. " " .. target .. " HTTP/1.1\r\n" .. tail
      else
        req = method .. " " .. target .. " HTTP/1.1\r\nHost: " .. hostport
          .. "\r\n" .. tail
      end
      if body then
        req = req .. "Content-Length: " .. #body .. "\r\n"
        if not ctype_given then
          req = req .. "Content-Type: application/x-www-form-urlencoded\r\n"
        end
      end
      req = req .. "\r\n"
      if cache and #req < 8192 then
        if cache.n >= 64 then             -- many URLs: start again
          cache = {n = 0}
          spec._fast_reqs = cache
          mc = nil
        end
        if not mc then
          mc = {}
          cache[method] = mc
        end
        mc[url] = req
        cache.n = cache.n + 1
      end
    end
    if #req > 1048576 then                -- curl's limit, and its words
      return nil, "request too large (limit 1 MiB for the request line "
        .. "and headers)"
    end
    local err, why
    local tries = 0
    while true do
      tries = tries + 1
      local list = tries == 1 and pool[key]   -- a retry: a new connection
      c = list and list[#list]
      fresh = false
      if c then
        list[#list] = nil
        c.sock:idle(false)
        if not IDEMPOTENT[method] and dead(c) then
          close_conn(c)
          c = nil
        end
      end
      if not c then
        c, err = connect(host, port, deadline, ctimeout)
        if not c then return nil, err end
        fresh = true
        connects = connects + 1
        dns, conn_t = c.dns, c.conn
      elseif hops == 0 then
        dns, conn_t = 0, 0
      end
      c.deadline, c.first = deadline, nil
      local ok
      ok, err, why = exchange(c, req, body, method)
      if ok then break end
      close_conn(c)
      if err == "timeout" then return nil, err end
      if err == "send" or err == "nothing" then
        -- the connection died before any answer: a kept-alive one is
        -- replaced once for a method that may be sent twice
        if not fresh and tries == 1 and (IDEMPOTENT[method]
            or err == "send") then
          -- loop: a fresh connection
        elseif err == "send" then
          return nil, "closed: send failure: Broken pipe"
        elseif why == "reset" then
          return nil, RESET
        else
          return nil, "closed: empty reply from server"
        end
      else
        return nil, err
      end
    end
    first = c.first
    status, minor, reason, head, rbody, enc, loc, sline = c.status, c.minor,
      c.reason, c.head, c.body, c.enc, c.loc, c.sline
    c.body, c.head, c.buf = nil, nil, ""    -- hold no bytes while idle
    -- cookies: into the session's jar, as curl stores them
    if c.cookie and spec.cookies and session then
      M.store_cookies(session, url, head)
    end
    if c.keep then put_back(pool, key, c) else close_conn(c) end
    if follow and loc and status >= 300 and status < 400
        and status ~= 304 then
      if hops >= max then return nil, "too many redirects" end
      local nurl = resolve(url, loc)
      local scheme = nurl:match("^(%a[%w+.%-]*):")
      scheme = scheme and scheme:lower()
      if scheme ~= "http" and scheme ~= "https" then
        return nil, "redirect to unsupported protocol: "
          .. tostring(scheme)
      end
      hops = hops + 1
      local nhost, nport, nhostport, ntarget, nurl2 = split(nurl)
      nurl = nurl2 or nurl
      -- another origin (scheme, host or port): curl sends no credentials
      local norig = nurl:match("^(%a[%w+.%-]*://[^/?#]*)") or ""
      orig_auth = orig_auth or url0:match("^http://([^/?#]*)")
      local other = norig:gsub("^%a+", string.lower) ~= "http://" .. orig_auth
      if not nhost or (spec.cookies and session and session.fast_off)
          or (other and (spec.user or spec._fast_cred)) then
        -- the rest of the chain on libcurl, which drops credentials for
        -- another host as it would have
        local res, herr = M.handoff(spec, nurl, method, session, hops,
          connects, t0, other)
        return res, herr
      end
      url, host, port, hostport, target = nurl, nhost, nport, nhostport,
        ntarget
      -- curl 7.88 reports a URL made from a relative Location with the
      -- credentials in it ("http://u:p@host/..."): so does this path
      shown = nil
      if spec.user and not loc:find("^%a[%w+.%-]*:") then
        shown = "http://" .. userinfo(spec.user) .. ":"
          .. userinfo(spec.pass or "") .. "@" .. url:sub(8)
      end
    else
      break
    end
  end
  local derr
  rbody, derr = decode(spec, enc, rbody)
  if not rbody then return nil, derr end
  M.served = M.served + 1
  local t1 = now()
  -- _more (dns, connect, tls, first byte, ip, port, local port: see
  -- lua/http.lua) is made on first use from _c (the connection, reused)
  -- or _cn (new) and _fb: 16 fields, as many as one table's hash holds
  -- without doubling
  return {status = status, http_version = minor == 1 and "1.1" or "1.0",
    url = shown or url, redirects = hops, connects = connects,
    reused = connects == 0, size = #rbody, elapsed = t1 - t0,
    status_line = sline, reason = reason, _head = head,
    [fresh and "_cn" or "_c"] = c, _fb = (first or t1) - t0,
    body = rbody, ok = status >= 200 and status < 300, method = method}
end

return M
