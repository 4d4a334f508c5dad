-- http/server.lua -- http.server{...}: a strict HTTP/1.1 server on netsh's
-- cosockets, and http.router(). Loaded by the http module on first use of
-- http.server/http.router; it needs neither libcurl nor OpenSSL (TLS
-- loads tls.core only when tls = {...} is given).
--
--   local srv = assert(http.server{port = 8080, handler = function(req)
--     return 200, {["content-type"] = "text/plain"}, "hello\n"
--   end})
--   srv:serve()            -- blocks (parks this task) until srv:close()
--
-- One task per connection; it reads a request head, runs the handler for
-- it in that same task, writes the response, and goes on with the next
-- request on the connection (so pipelined requests are answered in order
-- and a slow handler holds only its own connection). The head is parsed
-- in C (src/http_parse.c, strict RFC 9112: anything a proxy could read
-- differently is refused with 400 and the connection is closed).
--
-- Who owns what: the server owns every accepted socket until the handler
-- calls req:hijack(); from then on the socket is the handler's, the server
-- never reads, writes or times it out again, and only counts it against
-- max_connections until it is closed.
local parser = require "http.parser"
local socket = require "socket"
local task = require "task"

local M = {}

local type, pairs, ipairs, tostring, tonumber, setmetatable, rawget,
  rawset, select, error = type, pairs, ipairs, tostring, tonumber,
  setmetatable, rawget, rawset, select, error
local sub, find, fmt, char, gsub = string.sub, string.find, string.format,
  string.char, string.gsub
local concat = table.concat
local now, spawn = task.now, task.spawn
local parse_request, parse_chunk, parse_trailers = parser.request,
  parser.chunk, parser.trailers
local stderr = io.stderr

-- Limits; every one can be given to http.server{} under the same name.
M.defaults = {
  max_header_bytes = 16384,   -- request line + fields: 414 / 431 past it
  max_headers = 100,          -- field lines: 431 past it
  max_body = 8 * 1024 * 1024, -- bytes of a request body: 413 past it
  header_timeout = 10,        -- s from the first byte to the end of the head: 408
  body_timeout = 60,          -- s for the whole body, once the handler reads it: 408
  keepalive_timeout = 5,      -- s an idle connection waits for its next request
  send_timeout = 60,          -- s a response write may wait for the client
  max_connections = 4096,     -- accepted at once; more wait in the backlog
  grace = 5,                  -- s close() lets in-flight requests finish
  backlog = 511,
}

local reasons = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK",
  [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [411] = "Length Required", [412] = "Precondition Failed",
  [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
  [417] = "Expectation Failed", [422] = "Unprocessable Content",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented",
  [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
}
M.reasons = reasons

-- "HTTP/1.1 200 OK\r\n", built once per status
local status_lines = setmetatable({}, {__index = function(t, s)
  local line = fmt("HTTP/1.1 %d %s\r\n", s, reasons[s] or "Unknown")
  t[s] = line
  return line
end})

local date_t, date_line = -1, nil
local function date()
  local t = os.time()
  if t ~= date_t then
    date_t, date_line = t, os.date("!Date: %a, %d %b %Y %H:%M:%S GMT\r\n", t)
  end
  return date_line
end

---------------------------------------------------------------------------
-- Body errors: raised by req.body and req:json() when the request body
-- cannot be read; the server answers them itself (408, 413, 400) without
-- a traceback, since the client is at fault.

local BodyError = {}
BodyError.__index = BodyError
BodyError.__tostring = function(e) return "request body: " .. e.msg end
local function body_error(status, msg)
  return setmetatable({status = status, msg = msg}, BodyError)
end
M.BodyError = BodyError

---------------------------------------------------------------------------
-- Reading. A connection c holds c.buf (received bytes) and c.pos (the
-- first one not consumed yet).

local READ = 65536

-- fill(c, deadline) -> true | nil, err: append what the socket has
local function fill(c, deadline)
  local sock = c.sock
  if deadline then
    local left = deadline - now()
    if left <= 0 then return nil, "timeout" end
    sock:settimeout(left)
  end
  local data, err = sock:receiveany(READ)
  if not data then return nil, err end
  local buf, pos = c.buf, c.pos
  if pos > #buf then
    c.buf, c.pos = data, 1
  elseif pos > 1 then
    c.buf, c.pos = sub(buf, pos) .. data, 1
  else
    c.buf = buf .. data
  end
  return true
end

local function send_continue(c)
  c.expect = false
  c.sock:settimeout(c.srv.opts.send_timeout)
  return c.sock:send("HTTP/1.1 100 Continue\r\n\r\n")
end

-- next_piece(c) -> data | nil (end of body) | nil, err, status
-- The body state: c.left (bytes left in the body or the current chunk),
-- c.chunked, c.bdone.
local function next_piece(c)
  if c.bdone then return nil end
  if c.expect then
    local ok, err = send_continue(c)
    if not ok then return nil, err, 0 end
  end
  local opts = c.srv.opts
  if not c.bdeadline then c.bdeadline = now() + opts.body_timeout end
  local deadline = c.bdeadline
  while true do
    local buf, pos = c.buf, c.pos
    if c.left > 0 then
      local avail = #buf - pos + 1
      if avail > 0 then
        local n = avail < c.left and avail or c.left
        c.pos = pos + n
        c.left = c.left - n
        c.got = c.got + n
        if not c.chunked and c.left == 0 then c.bdone = true end
        if c.got > opts.max_body then
          c.bdone, c.broken = true, true
          return nil, "body too large", 413
        end
        return n == avail and pos == 1 and buf or sub(buf, pos, pos + n - 1)
      end
    elseif c.chunked then
      if c.crlf then                      -- the CRLF after a chunk's data
        if #buf - pos + 1 >= 2 then
          if sub(buf, pos, pos + 1) ~= "\r\n" then
            c.bdone, c.broken = true, true
            return nil, "bad chunk", 400
          end
          c.pos, c.crlf = pos + 2, false
          pos = c.pos
        end
      end
      if not c.crlf then
        local size, nxt
        if c.trailers then
          nxt, size = parse_trailers(buf, pos, opts.max_header_bytes)
          if nxt then
            c.pos, c.bdone = nxt, true
            return nil
          end
          if nxt == false then
            c.bdone, c.broken = true, true
            return nil, "bad trailers", 400
          end
        else
          size, nxt = parse_chunk(buf, pos)
          if size == false then
            c.bdone, c.broken = true, true
            return nil, "bad chunk size", 400
          elseif size then
            c.pos = nxt
            if size == 0 then
              c.trailers = true
            else
              if c.got + size > opts.max_body then
                c.bdone, c.broken = true, true
                return nil, "body too large", 413
              end
              c.left, c.crlf = size, true
            end
            goto continue
          end
        end
      end
    else
      c.bdone = true
      return nil
    end
    do
      local ok, err = fill(c, deadline)
      if not ok then
        c.bdone, c.broken = true, true
        return nil, err, err == "timeout" and 408 or 0
      end
    end
    ::continue::
  end
end

-- read_all(c) -> body | nil, err, status
local function read_all(c)
  local parts, n = nil, 0
  local first
  while true do
    local piece, err, status = next_piece(c)
    if not piece then
      if err then return nil, err, status end
      break
    end
    if not first then
      first = piece
    else
      if not parts then parts, n = {first}, 1 end
      n = n + 1
      parts[n] = piece
    end
  end
  if parts then return concat(parts) end
  return first or ""
end

---------------------------------------------------------------------------
-- The request object: fields from the parser (method, target, path,
-- query_string, version, headers), remote_ip, remote_port; lazy fields
-- body and query; methods below.

local Request = {}
local lazy = {}

local function unescape(s)
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end
M.unescape = unescape

function lazy.body(req)
  local c = req._c
  if c.hijacked then error("request hijacked", 3) end
  local body, err, status = read_all(c)
  if not body then error(body_error(status, err), 3) end
  rawset(req, "body", body)
  return body
end

function lazy.query(req)
  local q = {}
  local s = req.query_string
  if s then
    for pair in s:gmatch("[^&;]+") do
      local k, v = pair:match("^([^=]*)=?(.*)$")
      q[unescape(k)] = unescape(v)
    end
  end
  rawset(req, "query", q)
  return q
end

Request.__index = function(req, k)
  local f = lazy[k]
  if f then return f(req) end
  return Request[k]
end

-- req:json() -> value | nil, err (invalid JSON); a body that cannot be
-- read raises as req.body does
function Request:json()
  local body = self.body
  return require("json").try_decode(body)
end

-- req:read_body() -> body | nil, err: req.body without raising
function Request:read_body()
  local b = rawget(self, "body")
  if b then return b end
  local body, err = read_all(self._c)
  if not body then return nil, err end
  rawset(self, "body", body)
  return body
end

-- req:body_reader() -> fn: each call returns the next piece of the body,
-- nil at its end, or nil, err ("timeout", "closed", "body too large",
-- "bad chunk size")
function Request:body_reader()
  local c = self._c
  return function()
    local piece, err = next_piece(c)
    return piece, err
  end
end

-- req:header_values(name) -> {values} (repeated fields kept apart)
function Request:header_values(name)
  name = name:lower()
  local m = self._multi and self._multi[name]
  if m then return {table.unpack(m)} end
  local v = self.headers[name]
  return v and {v} or {}
end

-- req:hijack() -> sock, pending: the connection is the caller's from now
-- on (see the file header); pending holds the bytes already received past
-- the request head ("" if none).
function Request:hijack()
  local c = self._c
  if c.hijacked then error("request already hijacked", 2) end
  c.hijacked = true
  local pending = sub(c.buf, c.pos)
  c.buf, c.pos = "", 1
  c.sock:settimeout(-1)
  return c.sock, pending
end

-- req:websocket(opts): the WebSocket handshake (module "websocket")
function Request:websocket(opts)
  return require("websocket").accept(self, opts)
end

M.Request = Request

---------------------------------------------------------------------------
-- Writing a response

local TOKEN = "^[!#$%%&'*+.^_`|~%w-]+$"

local function bad_header(k, v)
  error(fmt("bad response header %q: %q", tostring(k), tostring(v)), 0)
end

-- appends "Name: value\r\n" lines to out from n; returns n and whether
-- content-type was given. Content-Length, Transfer-Encoding and Date are
-- the server's and dropped; names and values are checked (no CR, LF or
-- NUL: no header injection).
local skip = {["content-length"] = true, ["transfer-encoding"] = true,
  date = true}
-- checked names -> lower case, and checked values: memos, since handlers
-- send the same few again and again (emptied when they grow past 1000)
local names, nnames, values, nvalues = {}, 0, {}, 0
local function check_value(k, v)
  if values[v] then return end
  if find(v, "[%z\r\n]") then bad_header(k, v) end
  if nvalues >= 1000 then values, nvalues = {}, 0 end
  values[v], nvalues = true, nvalues + 1
end
local function add_headers(out, n, headers, c)
  local ctype = false
  for k, v in pairs(headers) do
    local lk = names[k]
    if not lk then
      if type(k) ~= "string" or not find(k, TOKEN) then bad_header(k, v) end
      lk = k:lower()
      if nnames >= 1000 then names, nnames = {}, 0 end
      names[k], nnames = lk, nnames + 1
    end
    if lk == "content-type" then ctype = true end
    if lk == "connection" and type(v) == "string" and
        v:lower():find("close", 1, true) then
      c.keepalive = false
    end
    if not skip[lk] then
      if type(v) == "table" then
        for _, x in ipairs(v) do
          x = tostring(x)
          check_value(k, x)
          out[n + 1], out[n + 2], out[n + 3], out[n + 4] = k, ": ", x, "\r\n"
          n = n + 4
        end
      else
        if type(v) ~= "string" then v = tostring(v) end
        check_value(k, v)
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = k, ": ", v, "\r\n"
        n = n + 4
      end
    end
  end
  return n, ctype
end

local function send_all(c, data)
  local ok, err = c.sock:send(data)
  if not ok then c.keepalive = false; c.dead = true end
  return ok, err
end

-- open_file(spec) -> file handle, offset, length: a file body
-- {file = path or open file, offset = 0, length = to the end}; raises
-- (a 500) when the file cannot be opened or is shorter than asked.
local function open_file(spec)
  local f, offset, length = spec.file, spec.offset or 0, spec.length
  if type(f) == "string" then
    local err
    f, err = io.open(f, "rb")
    if not f then error("file response: " .. err, 0) end
  elseif io.type(f) ~= "file" then
    error("bad response body (file: path or open file expected, got "
      .. (io.type(f) or type(f)) .. ")", 0)
  end
  local size = f:seek("end")
  if math.type(offset) ~= "integer" or offset < 0 or
      (length ~= nil and (math.type(length) ~= "integer" or length < 0)) or
      not size or offset + (length or 0) > size then
    f:close()
    error(fmt("bad file response (offset %s, length %s, file size %s)",
      tostring(offset), tostring(length), tostring(size)), 0)
  end
  return f, offset, length or size - offset
end

-- respond(c, req, status, headers, body) -> bytes of body sent | nil, err
-- body: string, table of strings, function (an iterator: chunked unless
-- length gives its size), {file = path or handle, offset =, length =}
-- (sent with sock:sendfile, the handle closed once sent), nil.
-- Raises (before writing anything) on a bad header or body type.
local function respond(c, req, status, headers, body, length)
  local out = c.out
  if type(status) ~= "number" or status < 100 or status > 999 or
      status % 1 ~= 0 then
    error(fmt("bad response status %s", tostring(status)), 0)
  end
  local n, ctype = 2, false
  out[1], out[2] = status_lines[status], date()
  if headers ~= nil then
    if type(headers) ~= "table" then
      error("bad response headers (table expected, got "
        .. type(headers) .. ")", 0)
    end
    n, ctype = add_headers(out, n, headers, c)
  end
  local bt = type(body)
  local file, foff
  if bt == "table" and body.file ~= nil then
    file, foff, length = open_file(body)
    body, bt = nil, "file"
  elseif bt == "table" then
    body, bt = concat(body), "string"
  elseif bt == "number" then
    body, bt = tostring(body), "string"
  elseif bt ~= "string" and bt ~= "function" and bt ~= "nil" then
    error("bad response body (string, table or function expected, got "
      .. bt .. ")", 0)
  end
  local nobody = status < 200 or status == 204 or status == 304
  local head_only = nobody or req.method == "HEAD"
  local chunked = false
  if bt == "string" and not nobody then
    if not ctype and #body > 0 then
      n = n + 1
      out[n] = "Content-Type: text/plain; charset=utf-8\r\n"
    end
    out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", #body, "\r\n"
    n = n + 3
  elseif bt == "function" and not nobody then
    if length then
      out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", length, "\r\n"
      n = n + 3
    elseif req.version == "1.1" then
      chunked = true
      n = n + 1
      out[n] = "Transfer-Encoding: chunked\r\n"
    else
      c.keepalive = false     -- HTTP/1.0: the close ends the body
    end
  elseif bt == "file" and not nobody then
    if not ctype then
      n = n + 1
      out[n] = "Content-Type: application/octet-stream\r\n"
    end
    out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", length, "\r\n"
    n = n + 3
  elseif bt == "nil" and not nobody then
    n = n + 1
    out[n] = "Content-Length: 0\r\n"
  end
  if not c.keepalive then
    n = n + 1
    out[n] = "Connection: close\r\n"
  elseif req.version == "1.0" then
    n = n + 1
    out[n] = "Connection: keep-alive\r\n"
  end
  n = n + 1
  out[n] = "\r\n"
  local blen = bt == "string" and #body or 0
  if bt == "string" and not head_only and blen <= 65536 then
    n = n + 1
    out[n] = body
    body = nil
  end
  local head = concat(out, "", 1, n)
  for i = n, 1, -1 do out[i] = nil end
  c.sock:settimeout(c.srv.opts.send_timeout)
  c.status = status
  local ok, err = send_all(c, head)
  c.head_sent = true
  if bt == "file" and (head_only or not ok) then file:close() end
  if not ok then return nil, err end
  if head_only then return 0 end
  if bt == "file" then
    local sent
    ok, err, sent = c.sock:sendfile(file, foff, length)
    file:close()
    if not ok then
      c.keepalive, c.dead = false, true
      return nil, err
    end
    return ok
  end
  if bt == "string" then
    if body then
      ok, err = send_all(c, body)
      if not ok then return nil, err end
    end
    return blen
  elseif bt == "function" then
    local total = 0
    while true do
      local piece = body()
      if piece == nil then break end
      if type(piece) ~= "string" then piece = tostring(piece) end
      if #piece > 0 then
        total = total + #piece
        if chunked then
          ok, err = send_all(c, fmt("%x\r\n", #piece) .. piece .. "\r\n")
        else
          ok, err = send_all(c, piece)
        end
        if not ok then return nil, err end
      end
    end
    if chunked then
      ok, err = send_all(c, "0\r\n\r\n")
      if not ok then return nil, err end
    end
    if length and total ~= length then c.keepalive = false end
    return total
  end
  return 0
end

-- a response the server makes itself (errors); closes the connection
local function simple(c, status, msg)
  c.keepalive = false
  c.linger = true
  local body = fmt("%d %s%s\n", status, reasons[status] or "",
    msg and (": " .. msg) or "")
  c.sock:settimeout(c.srv.opts.send_timeout)
  c.status = status
  c.sock:send(concat{status_lines[status], date(),
    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ", #body,
    "\r\nConnection: close\r\n\r\n", body})
end

-- the handler's results -> status, headers, body
local function normalize(a, b, d)
  local ta = type(a)
  if ta == "number" then return a, b, d end
  if ta == "string" then return 200, nil, a end
  if ta == "nil" then return 204, nil, nil end
  if ta == "table" then
    local body = a.body
    local headers = a.headers
    if a.json ~= nil then
      body = require("json").encode(a.json)
      local h = {}
      if headers then for k, v in pairs(headers) do h[k] = v end end
      h["Content-Type"] = h["Content-Type"] or "application/json"
      headers = h
    end
    return a.status or 200, headers, body, a.length
  end
  error("bad handler result (" .. ta .. ")", 0)
end

---------------------------------------------------------------------------
-- One connection

local function log_error(srv, req, err)
  stderr:write(fmt("http.server: handler failed on %s %s: %s\n",
    tostring(req.method), tostring(req.target), tostring(err)))
end

-- drain what the handler left of the body, so the next request can be
-- read; gives up (closing) past 256 KiB or on any error
local function drain(c)
  local left = 262144
  while not c.bdone do
    local piece = next_piece(c)
    if not piece then break end
    left = left - #piece
    if left < 0 then return false end
  end
  return not c.broken
end

local traceback = debug.traceback
local function run(srv, c)
  local sock, opts, handler = c.sock, srv.opts, srv.handler
  local max_head, max_headers = opts.max_header_bytes, opts.max_headers
  while true do
    -- 1. the head
    local nxt, len, ka, expect, req
    local deadline
    while true do
      nxt, len, ka, expect, req = parse_request(c.buf, c.pos, Request,
        max_head, max_headers)
      if nxt then break end
      if nxt == false then
        return simple(c, len, ka)
      end
      local pending = #c.buf - c.pos + 1
      local ok, err
      if pending == 0 and not deadline then
        -- idle between requests: closable by srv:close()
        if srv.closing then return end
        c.idle = true
        sock:settimeout(c.served > 0 and opts.keepalive_timeout or
          opts.header_timeout)
        local old = #c.buf
        ok, err = fill(c, nil)
        c.idle = false
        if ok and #c.buf - old > 0 then deadline = now() + opts.header_timeout end
        if not ok then return end          -- idle timeout, close: quietly
      else
        if not deadline then deadline = now() + opts.header_timeout end
        local before, oldpos = #c.buf, c.pos
        ok, err = fill(c, deadline)
        if not ok then
          if err == "timeout" then return simple(c, 408) end
          return
        end
        -- a head that has not ended a line since may just keep growing
        if not find(c.buf, "\n", before - oldpos + 2, true) then
          if #c.buf - c.pos + 1 > max_head then
            return simple(c, 431)
          end
          goto again
        end
      end
      ::again::
    end
    c.pos = nxt
    req._c, req.remote_ip, req.remote_port = c, c.ip, c.port
    -- 2. the body's framing
    c.keepalive = ka and not srv.closing
    c.expect = expect
    c.got, c.bdeadline, c.broken, c.crlf, c.trailers = 0, nil, false,
      false, false
    if len == -1 then
      c.chunked, c.left, c.bdone = true, 0, false
    else
      c.chunked, c.left, c.bdone = false, len, len == 0
      if len > opts.max_body then
        c.expect = false
        return simple(c, 413)
      end
    end
    -- 3. the handler
    local t0 = srv.log and now()
    local ok, a, b, d = xpcall(handler, traceback, req)
    local status, headers, body, length
    if c.hijacked then return "hijacked" end
    if ok then
      if type(a) == "number" then
        status, headers, body = a, b, d
      else
        ok, status, headers, body, length = pcall(normalize, a, b, d)
        if not ok then a = status end
      end
    end
    if not ok then
      if getmetatable(a) == BodyError then
        if a.status and a.status > 0 then simple(c, a.status, a.msg) end
        return
      end
      log_error(srv, req, a)
      status, headers, body = 500, nil, "500 Internal Server Error\n"
      c.keepalive = false
    end
    if c.expect or c.broken or (not c.bdone and not drain(c)) then
      c.keepalive = false     -- the body is (partly) still on the wire
    end
    if srv.closing then c.keepalive = false end
    local sent, err = nil, nil
    ok, sent, err = pcall(respond, c, req, status, headers, body, length)
    if not ok then
      log_error(srv, req, sent)
      if not c.head_sent and not c.dead then simple(c, 500) end
      return
    end
    c.head_sent = false
    c.served = c.served + 1
    if srv.log then srv.log(req, c.status, sent or 0, now() - t0) end
    c.status = nil
    if not sent or not c.keepalive then return end
  end
end

-- the end of a connection, also when its task is cancelled (close()'s
-- grace ran out): the socket closes unless hijacked, the slot frees
local Conn = {}
Conn.__close = function(c)
  if c.released then return end
  c.released = true
  c.srv.conns[c] = nil
  if not c.hijacked then c.sock:close() end
  local srv = c.srv
  srv.live = srv.live - 1
  srv.slot:signal()
  if srv.live == 0 then srv.idle:broadcast() end
end

local function conn_task(srv, sock)
  local ip, port = sock:getpeername()
  local c <close> = setmetatable({sock = sock, srv = srv, buf = "", pos = 1,
    out = {}, ip = ip, port = port, served = 0}, Conn)
  srv.conns[c] = true
  sock:setoption("tcp-nodelay", true)
  local ok, res = xpcall(run, traceback, srv, c)
  srv.conns[c] = nil
  if not ok then stderr:write("http.server: ", tostring(res), "\n") end
  if c.hijacked then
    -- the socket is the handler's now; it counts until closed
    while sock:getfd() >= 0 do task.sleep(1) end
  elseif c.linger and not c.dead then
    -- an error answer: stop sending, then read what the client still
    -- sends for a moment, so our answer is not lost in a reset
    sock:shutdown("send")
    sock:settimeout(0.5)
    local left = 1048576
    while left > 0 do
      local d = sock:receiveany(READ)
      if not d then break end
      left = left - #d
    end
  end
end

---------------------------------------------------------------------------
-- The server object

local Server = {}
Server.__index = Server

local function check_handler(h)
  if type(h) == "function" then return true end
  local mt = getmetatable(h)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

-- http.server{handler =, host = "127.0.0.1", port = 8080 | unix = path,
--   tls = {certfile =, keyfile =, sni =, ...}, log = fn(req, status,
--   bytes, seconds), limits (see M.defaults)} -> srv | nil, err
function M.server(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'server' (table expected, got "
      .. type(opts) .. ")", 2)
  end
  if not check_handler(opts.handler) then
    error("bad option 'handler' (function expected, got "
      .. type(opts.handler) .. ")", 2)
  end
  local o = {}
  for k, v in pairs(M.defaults) do
    local x = opts[k]
    if x == nil then x = v end
    if type(x) ~= "number" or x < 0 then
      error(fmt("bad option '%s' (non-negative number expected, got %s)",
        k, type(x)), 2)
    end
    o[k] = x
  end
  local lsock, err
  local bopts = {backlog = o.backlog, tls = opts.tls}
  if opts.unix then
    lsock, err = socket.bind("unix:" .. opts.unix, bopts)
  else
    lsock, err = socket.bind(opts.host or "127.0.0.1",
      opts.port == nil and 8080 or opts.port, bopts)
  end
  if not lsock then return nil, err end
  local srv = setmetatable({opts = o, handler = opts.handler, log = opts.log,
    listener = lsock, conns = {}, live = 0, slot = task.cond(),
    idle = task.cond(), closing = false, unix = opts.unix,
    tls = opts.tls ~= nil}, Server)
  if not opts.unix then srv.host, srv.port = lsock:getsockname() end
  return srv
end

-- srv:serve() -> true once closed and drained. Accepts until srv:close();
-- then waits up to opts.grace seconds for requests in progress (and
-- hijacked connections) and cancels what is left.
function Server:serve()
  if self.serving then error("server already serving", 2) end
  self.serving = true
  local lsock, max = self.listener, self.opts.max_connections
  local tasks = {}
  self.tasks = tasks
  while not self.closing do
    while self.live >= max and not self.closing do self.slot:wait() end
    if self.closing then break end
    local client, err = lsock:accept()
    if client then
      self.live = self.live + 1
      local t = spawn(conn_task, self, client)
      tasks[t] = true
      if self.live % 1024 == 0 then    -- forget finished tasks now and then
        for x in pairs(tasks) do
          if x:status() == "done" or x:status() == "failed"
              or x:status() == "cancelled" then tasks[x] = nil end
        end
      end
    elseif err == "closed" then
      break
    elseif err ~= "timeout" then
      stderr:write("http.server: accept failed: ", err, "\n")
      task.sleep(0.1)
    end
  end
  local deadline = now() + self.opts.grace
  while self.live > 0 do
    local left = deadline - now()
    if left <= 0 then break end
    self.idle:wait(left)
  end
  for t in pairs(tasks) do
    local s = t:status()
    if s ~= "done" and s ~= "failed" and s ~= "cancelled" then t:cancel() end
  end
  if self.unix then os.remove(self.unix) end
  self.serving = false
  return true
end

-- srv:close(): stop accepting, close idle keep-alive connections, let
-- busy ones finish their request (then they close); serve() returns
-- when they are done or after the grace time. Returns at once.
function Server:close()
  if self.closing then return true end
  self.closing = true
  self.listener:close()
  for c in pairs(self.conns) do
    if c.idle and not c.hijacked then c.sock:close() end
  end
  self.slot:broadcast()
  if not self.serving and self.unix then os.remove(self.unix) end
  return true
end

-- srv:connections() -> number of open connections (hijacked included)
function Server:connections() return self.live end

Server.__close = Server.close
M.Server = Server

---------------------------------------------------------------------------
-- The router: r:get("/items/:id", fn), r:post(...), r:route(method, ...);
-- ":name" matches one path segment, "*name" (last) the rest. The router
-- is a handler: http.server{handler = r}. req.params holds the decoded
-- parameters. No route for the path: 404; for the path but not the
-- method: 405 with Allow. HEAD uses GET's route.

local Router = {}
Router.__index = Router

local function compile(pattern)
  if type(pattern) ~= "string" or sub(pattern, 1, 1) ~= "/" then
    error("bad argument #2 to 'route' (path starting with '/' expected)", 3)
  end
  local names = {}
  local lp = gsub(pattern, "[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
  lp = gsub(lp, "/:([%w_]+)", function(name)
    names[#names + 1] = name
    return "/([^/]+)"
  end)
  lp = gsub(lp, "/%*([%w_]*)$", function(name)
    names[#names + 1] = name ~= "" and name or "rest"
    return "/(.*)"
  end)
  return "^" .. lp .. "$", names
end

function M.router()
  return setmetatable({routes = {}}, Router)
end

function Router:route(method, pattern, fn)
  if type(fn) ~= "function" then
    error("bad argument #3 to 'route' (function expected, got "
      .. type(fn) .. ")", 2)
  end
  local lp, names = compile(pattern)
  self.routes[#self.routes + 1] = {method = method:upper(), lp = lp,
    names = names, fn = fn}
  return self
end

for _, m in ipairs{"get", "post", "put", "delete", "patch", "options"} do
  Router[m] = function(self, pattern, fn)
    return self:route(m, pattern, fn)
  end
end

local function match(rt, path)
  local caps = {find(path, rt.lp)}
  if not caps[1] then return nil end
  local params = {}
  for i, name in ipairs(rt.names) do
    params[name] = unescape(gsub(caps[i + 2], "+", "%%2B"))
  end
  return params
end

Router.__call = function(self, req)
  local method, path = req.method, req.path
  local allow
  for _, rt in ipairs(self.routes) do
    local params = match(rt, path)
    if params then
      if rt.method == method or (method == "HEAD" and rt.method == "GET") then
        req.params = params
        return rt.fn(req, params)
      end
      allow = allow or {}
      allow[#allow + 1] = rt.method
    end
  end
  if allow then
    return 405, {Allow = concat(allow, ", ")}, "405 Method Not Allowed\n"
  end
  return 404, nil, "404 Not Found\n"
end

M.Router = Router

return M
