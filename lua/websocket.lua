-- websocket.lua -- RFC 6455 WebSocket client and server over netsh's
-- cosockets (TCP, TLS, Unix), with permessage-deflate (RFC 7692).
--
--   local ws = assert(websocket.connect("ws://127.0.0.1:8080/chat"))
--   ws:send("hello")                    -- text; ws:send(bytes, "binary")
--   local msg, kind = ws:receive(5)     -- or nil, "closed", code, reason
--   for msg, kind in ws:messages() do ... end
--   ws:close(1000, "bye")
--
-- Server side: in an http.serve handler, req:websocket(opts) is
-- websocket.accept(req, opts): the handshake on the hijacked connection.
-- websocket.server{host=, port=, handler=} serves WebSocket only: on
-- http.server when present, else on a small accept loop of its own that
-- gives handlers the same req (method, path, headers, hijack, websocket).
--
-- Framing, masking and UTF-8 checks are C (websocket.core); compression
-- is zlib in netsh_wsdeflate.so, loaded on the first connection that
-- negotiates it. A ws object is used by one reading task at a time (the
-- others get nil, "busy") and any number of sending tasks (sends are
-- serialised). Pings are answered while a task is in receive().
local core = require "websocket.core"
local socket = require "socket"
local url = require "socket.url"
local task = require "task"

local M = {}

M.MAX_MESSAGE = 16 * 1024 * 1024   -- bytes, after decompression
M.MAX_RATIO = 100                  -- the HTTP client's bomb rule
M.TIMEOUT = 30                     -- handshake, seconds
M.CLOSE_TIMEOUT = 5                -- closing handshake, seconds
M.COMPRESS_MIN = 32                -- smaller messages are sent as they are

local concat, unpack, pack = table.concat, string.unpack, string.pack
local now = task.now
local OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
local KIND = {[OP_TEXT] = "text", [OP_BIN] = "binary"}
local READ = 65536

local WS = {}
WS.__index = WS
WS.__name = "websocket"

local function deflate_mod()
  return require "websocket.deflate"
end

---------------------------------------------------------------------------
-- reading frames

-- fill(self, need, deadline) -> true | nil, err: at least need unread
-- bytes in self.buf (from self.pos). deadline: absolute, nil: none.
local function fill(self, need, deadline)
  local sock = self.sock
  while #self.buf - self.pos + 1 < need do
    local wait = -1
    if deadline then
      wait = deadline - now()
      if wait <= 0 then return nil, "timeout" end
    end
    sock:settimeouts(nil, self.send_to, wait)
    if self.pos > 1 then
      self.buf, self.pos = self.buf:sub(self.pos), 1
    end
    local missing = need - #self.buf
    local data, err, partial
    if missing > READ then
      data, err, partial = sock:receive(missing)
      data = data or partial
    else
      data, err = sock:receiveany(READ)
    end
    if data and #data > 0 then
      self.buf = self.buf == "" and data or self.buf .. data
      self.rx = now()
    end
    if err then return nil, err end
  end
  return true
end

local function close_payload(code, reason)
  if not code then return "" end
  return pack(">I2", code) .. (reason or "")
end

-- Sends one frame; sends from several tasks are serialised.
local function send_frame(self, op, payload, fin, rsv1)
  if self.wbusy then
    self.wwaiting = self.wwaiting + 1
    repeat self.wcond:wait() until not self.wbusy
    self.wwaiting = self.wwaiting - 1
  end
  self.wbusy, self.wpending = true, true
  local _ <close> = self.wguard
  local ok, err = self.sock:send(core.frame(op, payload, fin ~= false,
    rsv1, not self.server))
  self.wpending = false
  if not ok then return nil, err end
  return true
end

local function shut(self, code, reason)
  if self.state ~= "closed" then
    self.state = "closed"
    self.close_code, self.close_reason = code, reason
    self.sock:close()
    if self.inflater then self.inflater:close() end
    if self.deflater then self.deflater:close() end
  end
  return nil, "closed", self.close_code, self.close_reason
end

-- The peer broke the protocol: send a close frame with code (bounded by
-- a short timeout, the peer may not read), drop the connection.
local function fail(self, code, why)
  if self.state == "open" then
    self.state = "closing"
    self.send_to = 1
    self.sock:settimeouts(nil, 1, -1)
    send_frame(self, OP_CLOSE, close_payload(code, why))
  end
  return shut(self, code, why)
end

-- A close code a peer may send (RFC 6455 7.4).
local function valid_code(c)
  return (c >= 1000 and c <= 1003) or (c >= 1007 and c <= 1014)
    or (c >= 3000 and c <= 4999)
end

-- The peer's close frame: answer it (unless we started), end the TCP
-- connection (the client waits a little for the server to end it first).
local function on_close(self, payload)
  local code, reason
  if #payload == 0 then
    code, reason = 1005, ""
  elseif #payload == 1 then
    return fail(self, 1002, "invalid close frame")
  else
    code = unpack(">I2", payload)
    reason = payload:sub(3)
    if not valid_code(code) then
      return fail(self, 1002, "invalid close code")
    end
    if not core.utf8(reason) then
      return fail(self, 1007, "invalid UTF-8 in close reason")
    end
  end
  if self.state == "open" then
    self.state = "closing"
    self.send_to = 1
    self.sock:settimeouts(nil, 1, -1)
    -- the echo: the same code and reason (none for none)
    send_frame(self, OP_CLOSE, close_payload(code ~= 1005 and code or nil,
      reason))
  end
  if not self.server then  -- RFC 6455 7.1.1: the server closes TCP first
    self.sock:settimeouts(nil, self.send_to, 1)
    self.sock:receiveany(READ)
  end
  return shut(self, code, reason)
end

local function decompress(self, payload)
  local msg, why = self.inflater:decompress(payload, self.max_message,
    self.max_ratio)
  if msg then return msg end
  if why == "bad data" then return nil, 1007, "invalid compressed data" end
  if why == "ratio" then
    return nil, 1009, "compression ratio over " .. self.max_ratio
  end
  return nil, 1009, "message too big"
end

-- A whole message: decompress, check text. -> msg, kind | fail's results
local function deliver(self, op, payload, compressed)
  if compressed then
    local code, why
    payload, code, why = decompress(self, payload)
    if not payload then return fail(self, code, why) end
  end
  if op == OP_TEXT and not core.utf8(payload) then
    return fail(self, 1007, "invalid UTF-8")
  end
  return payload, KIND[op]
end

-- The keepalive: a ping after ping_interval s without data, and the
-- connection fails when no pong comes within ping_timeout s.
local function keepalive_deadline(self)
  if not self.ping_interval then return nil end
  if self.ping_due then return self.ping_due end
  return self.rx + self.ping_interval
end

local function receive(self, deadline)
  local flags, max = self.flags, self.max_message
  while true do
    local op, fin, rsv1, payload, nextpos =
      core.parse(self.buf, self.pos, flags, max)
    if op then
      self.pos = nextpos
      if op == OP_TEXT or op == OP_BIN then
        if self.frag_op then
          return fail(self, 1002, "expected a continuation frame")
        end
        if fin then return deliver(self, op, payload, rsv1) end
        self.frag_op, self.frag_rsv1 = op, rsv1
        self.frag, self.frag_len = {payload}, #payload
      elseif op == OP_CONT then
        if not self.frag_op then
          return fail(self, 1002, "unexpected continuation frame")
        end
        if rsv1 then return fail(self, 1002, "reserved bits set") end
        self.frag_len = self.frag_len + #payload
        if self.frag_len > max then
          return fail(self, 1009, "message too big")
        end
        local parts = self.frag
        parts[#parts + 1] = payload
        if fin then
          local fop, frsv1 = self.frag_op, self.frag_rsv1
          self.frag_op, self.frag = nil, nil
          return deliver(self, fop, concat(parts), frsv1)
        end
      elseif op == OP_PING then
        if self.state == "open" then
          local ok = send_frame(self, OP_PONG, payload)
          if not ok then return shut(self, 1006, "") end
        end
      elseif op == OP_PONG then
        self.ping_due = nil
        self.last_pong, self.pong_data = now(), payload
      else
        return on_close(self, payload)
      end
    elseif op == false then
      return fail(self, fin, rsv1)    -- false, code, why
    else
      local need = fin
      local ka = keepalive_deadline(self)
      local until_ = deadline
      if ka and (not until_ or ka < until_) then until_ = ka end
      local ok, err = fill(self, need, until_)
      if not ok then
        if err ~= "timeout" then return shut(self, 1006, "") end
        if ka and now() >= ka then
          if self.ping_due then
            self.ping_due = nil
            return fail(self, 1011, "keepalive ping timeout")
          end
          self.ping_due = now() + self.ping_timeout
          if not send_frame(self, OP_PING, "") then
            return shut(self, 1006, "")
          end
        elseif deadline and now() >= deadline then
          return nil, "timeout"
        end
      end
    end
  end
end

-- ws:receive([timeout]) -> message, "text"|"binary"
--   | nil, "closed", code, reason | nil, "timeout" | nil, "busy"
-- code and reason: the peer's close frame (1005 when it had none), or
-- what netsh sent on a protocol error (1002, 1007, 1009, 1011), or 1006
-- when the connection ended without a close frame.
function WS:receive(timeout)
  if self.state == "closed" then
    return nil, "closed", self.close_code, self.close_reason
  end
  if self.reading then return nil, "busy" end
  self.reading = true
  local _ <close> = self.rguard
  local deadline = timeout and timeout >= 0 and now() + timeout or nil
  return receive(self, deadline)
end

-- for message, kind in ws:messages() do ... end  (ends when closed)
function WS:messages(timeout)
  return function()
    local m, k = self:receive(timeout)
    if m then return m, k end
    return nil
  end
end

-- ws:send(data [, "text"|"binary"]) -> true | nil, err
-- data may be a list of strings: the fragments of one message.
function WS:send(data, kind)
  local op
  if kind == nil or kind == "text" then op = OP_TEXT
  elseif kind == "binary" then op = OP_BIN
  else
    error("bad argument #2 to 'send' ('text' or 'binary' expected, got "
      .. tostring(kind) .. ")", 2)
  end
  local parts
  if type(data) == "table" then
    parts, data = data, concat(data)
  elseif type(data) ~= "string" then
    if type(data) ~= "number" then
      error("bad argument #1 to 'send' (string expected, got "
        .. type(data) .. ")", 2)
    end
    data = tostring(data)
  end
  if op == OP_TEXT and not core.utf8(data) then
    error("bad argument #1 to 'send' (text is not UTF-8: send it as "
      .. "binary)", 2)
  end
  if self.state ~= "open" then return nil, "closed" end
  local rsv1 = false
  if self.deflater and #data >= self.compress_min then
    local z = self.deflater:compress(data)
    if parts then     -- as many fragments, of the compressed bytes
      local n, size, list = #parts, #z, {}
      for i = 1, n do
        list[i] = z:sub((i - 1) * size // n + 1, i * size // n)
      end
      parts = list
    end
    data, rsv1 = z, true
  end
  local ok, err
  if parts and #parts > 1 then
    for i = 1, #parts do
      ok, err = send_frame(self, i == 1 and op or OP_CONT, parts[i],
        i == #parts, i == 1 and rsv1)
      if not ok then break end
    end
  else
    ok, err = send_frame(self, op, data, true, rsv1)
  end
  if not ok then
    shut(self, 1006, "")
    return nil, err
  end
  return true
end

-- ws:ping([data]) -> true | nil, err (the pong is read by receive())
function WS:ping(data)
  data = data or ""
  if #data > 125 then
    error("bad argument #1 to 'ping' (at most 125 bytes)", 2)
  end
  if self.state ~= "open" then return nil, "closed" end
  local ok, err = send_frame(self, OP_PING, data)
  if not ok then shut(self, 1006, "") return nil, err end
  return true
end

-- ws:close([code [, reason]]) -> true: the closing handshake, bounded by
-- close_timeout; messages still arriving are dropped. Calling it again,
-- or on a closed connection, is fine.
function WS:close(code, reason)
  if code ~= nil and (math.type(code) ~= "integer" or
      not (valid_code(code) and code ~= 1005)) then
    error("bad argument #1 to 'close' (close code expected, got "
      .. tostring(code) .. ")", 2)
  end
  reason = reason or ""
  if #reason > 123 then
    error("bad argument #2 to 'close' (reason over 123 bytes)", 2)
  end
  if self.state == "closed" then return true end
  if self.state == "open" then
    self.state = "closing"
    self.close_sent = code or 1000
    self.send_to = self.close_timeout
    self.sock:settimeouts(nil, self.send_to, -1)
    local ok = send_frame(self, OP_CLOSE,
      code and close_payload(code, reason) or "")
    if not ok then shut(self, 1006, "") return true end
  end
  local deadline = now() + self.close_timeout
  if self.reading then
    -- another task reads: it sees the peer's close frame
    self.closers = self.closers or task.cond()
    while self.state ~= "closed" and now() < deadline do
      self.closers:wait(deadline - now())
    end
  else
    self.reading = true
    local _ <close> = self.rguard
    while self.state ~= "closed" do
      local m, err = receive(self, deadline)
      if not m and err == "timeout" then break end
    end
  end
  shut(self, code or 1000, reason)
  return true
end

WS.__close = function(self) if self.state ~= "closed" then self:close() end end
WS.__tostring = function(self)
  return ("websocket{%s %s}"):format(self.server and "server" or "client",
    self.state)
end

-- The ws object over a connected socket, after the handshake.
local function new_ws(sock, server, pending, opts, pmd)
  local ping_interval = opts.ping_interval
  local self = setmetatable({
    sock = sock, server = server, buf = pending or "", pos = 1,
    state = "open", wcond = task.cond(), wwaiting = 0, rx = now(),
    send_to = opts.send_timeout or -1,
    flags = (server and 1 or 0) + (pmd and 2 or 0),
    max_message = opts.max_message or M.MAX_MESSAGE,
    max_ratio = opts.max_ratio == false and 0 or opts.max_ratio
      or M.MAX_RATIO,
    close_timeout = opts.close_timeout or M.CLOSE_TIMEOUT,
    compress_min = opts.compress_min or M.COMPRESS_MIN,
    ping_interval = ping_interval,
    ping_timeout = opts.ping_timeout or ping_interval,
  }, WS)
  -- the end of a read or a send, also when task.timeout or a cancel
  -- interrupts it: the next reader is let in; a frame cut in the middle
  -- leaves the stream unusable, so the connection is dropped
  self.rguard = setmetatable({}, {__close = function()
    self.reading = false
    if self.closers then self.closers:broadcast() end
  end})
  self.wguard = setmetatable({}, {__close = function()
    self.wbusy = false
    if self.wpending then
      self.wpending = false
      shut(self, 1006, "")
    end
    if self.wwaiting > 0 then self.wcond:signal() end
  end})
  sock:settimeout(nil)
  sock:settimeouts(nil, self.send_to, -1)
  pcall(sock.setoption, sock, "tcp-nodelay", true)
  if pmd then
    local z = deflate_mod()
    -- our inflater reads any window (15), the peer's may be smaller
    local err
    self.inflater, err = z.new("inflate", 15, pmd.peer_reset)
    if self.inflater and pmd.bits ~= 8 then  -- zlib: no 256-byte window
      self.deflater, err = z.new("deflate", pmd.bits, pmd.reset)
    end
    if err then
      sock:close()
      return nil, err
    end
    self.extensions = pmd.header
  end
  return self
end

---------------------------------------------------------------------------
-- handshake helpers

local function header_value(v)
  if type(v) == "table" then return concat(v, ", ") end
  return v
end

local function has_token(v, token)
  v = header_value(v)
  if not v then return false end
  for t in v:gmatch("[^,]+") do
    if t:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

-- "permessage-deflate; a; b=1, other" -> {{name=, params={a=true,b="1"}}}
local function parse_extensions(v)
  local list = {}
  v = header_value(v)
  if not v then return list end
  for item in v:gmatch("[^,]+") do
    local name, rest = item:match("^%s*([^;%s]+)%s*(.*)$")
    if name then
      local params, bad = {}, false
      for p in rest:gmatch(";%s*([^;]*)") do
        local k, val = p:match("^([%w_%-]+)%s*=%s*\"?([^\"%s]*)\"?%s*$")
        if not k then
          k = p:match("^([%w_%-]+)%s*$")
          val = true
        end
        if not k or params[k:lower()] ~= nil then bad = true
        else params[k:lower()] = val end
      end
      list[#list + 1] = {name = name:lower(), params = params, bad = bad}
    end
  end
  return list
end

local function window_bits(v)
  if v == true then return true end
  local n = tonumber(v)
  if not n or n % 1 ~= 0 or n < 8 or n > 15 or not v:match("^%d+$") then
    return nil
  end
  return math.tointeger(n)
end

local function check_headers(h, where)
  local out = {}
  if h == nil then return out end
  if type(h) ~= "table" then
    error("bad option 'headers' (table expected, got " .. type(h) .. ")",
      where)
  end
  for k, v in pairs(h) do
    if type(k) == "number" then    -- {"Name: value", ...}
      k, v = tostring(v):match("^([^:]+):%s*(.*)$")
      if not k then
        error("bad option 'headers' (\"Name: value\" expected)", where)
      end
    end
    v = tostring(v)
    if k:find("[%c:]") or v:find("[\r\n%z]") then
      error("bad option 'headers' (CR, LF or NUL in " .. k .. ")", where)
    end
    out[#out + 1] = k .. ": " .. v .. "\r\n"
  end
  return out
end

local function read_head(sock)
  local lines = {}
  local total = 0
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    if line == "" then return lines end
    total = total + #line
    if #lines > 100 or total > 65536 then return nil, "head too large" end
    lines[#lines + 1] = line
  end
end

local function parse_fields(lines, first)
  local h = {}
  for i = first, #lines do
    local k, v = lines[i]:match("^([^:%s]+):%s*(.-)%s*$")
    if not k then return nil end
    k = k:lower()
    h[k] = h[k] and h[k] .. ", " .. v or v
  end
  return h
end

---------------------------------------------------------------------------
-- the client

local function check_opts(opts, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(
      fname, type(opts)), 3)
  end
  return opts
end

-- connect(url [, opts]) -> ws | nil, err
-- url: ws://host[:port]/path or wss://...; opts: headers, protocols
-- (list), timeout (handshake, s), tls (options for wss), unix (a socket
-- path to connect to instead of host:port), compress (default true),
-- max_message, max_ratio, ping_interval, ping_timeout, close_timeout,
-- send_timeout, origin.
function M.connect(target, opts)
  if type(target) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got "
      .. type(target) .. ")", 2)
  end
  opts = check_opts(opts, "connect")
  local u = url.parse(target)
  local scheme = u and u.scheme and u.scheme:lower()
  if not u or (scheme ~= "ws" and scheme ~= "wss") or not u.host then
    error("bad argument #1 to 'connect' (ws:// or wss:// URL expected, got "
      .. target .. ")", 2)
  end
  local extra = check_headers(opts.headers, 3)
  local protocols = opts.protocols
  if type(protocols) == "string" then protocols = {protocols} end
  local secure = scheme == "wss"
  local host = u.host
  local port = tonumber(u.port) or (secure and 443 or 80)
  local timeout = opts.timeout or M.TIMEOUT
  local tls
  if secure then
    tls = {}
    if type(opts.tls) == "table" then
      for k, v in pairs(opts.tls) do tls[k] = v end
    end
    if tls.servername == nil then tls.servername = host end
  end
  local t0 = now()
  local sock, err
  if opts.unix then
    sock, err = socket.connect("unix:" .. opts.unix, {timeout = timeout,
      tls = tls})
  else
    sock, err = socket.connect(host, port, {timeout = timeout, tls = tls})
  end
  if not sock then return nil, err end
  sock:settimeout(math.max(0, timeout - (now() - t0)), "t")
  local key = core.random(16, true)
  local path = u.path or "/"
  if path == "" then path = "/" end
  if u.query then path = path .. "?" .. u.query end
  local hostport = host:find(":") and "[" .. host .. "]" or host
  if u.port then hostport = hostport .. ":" .. u.port end
  local req = {
    "GET ", path, " HTTP/1.1\r\nHost: ", hostport,
    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    "Sec-WebSocket-Key: ", key, "\r\nSec-WebSocket-Version: 13\r\n"}
  if protocols and #protocols > 0 then
    req[#req + 1] = "Sec-WebSocket-Protocol: " .. concat(protocols, ", ")
      .. "\r\n"
  end
  if opts.compress ~= false then
    req[#req + 1] = "Sec-WebSocket-Extensions: permessage-deflate; "
      .. "client_max_window_bits\r\n"
  end
  if opts.origin then req[#req + 1] = "Origin: " .. opts.origin .. "\r\n" end
  for _, line in ipairs(extra) do req[#req + 1] = line end
  req[#req + 1] = "\r\n"
  local ok
  ok, err = sock:send(concat(req))
  if not ok then sock:close() return nil, err end
  local lines
  lines, err = read_head(sock)
  local function bad(why)
    sock:close()
    return nil, "handshake: " .. why
  end
  if not lines then
    if err == "timeout" or err == "closed" then
      sock:close()
      return nil, err
    end
    return bad(err)
  end
  local status = lines[1] and lines[1]:match("^HTTP/1%.1 (%d%d%d)")
  if not status then return bad("not an HTTP response") end
  local h = parse_fields(lines, 2)
  if not h then return bad("malformed header") end
  if status ~= "101" then
    return bad("status " .. lines[1]:match("^HTTP/1%.1 (.*)$"))
  end
  if not has_token(h.upgrade, "websocket") then
    return bad("no 'Upgrade: websocket'")
  end
  if not has_token(h.connection, "upgrade") then
    return bad("no 'Connection: Upgrade'")
  end
  if h["sec-websocket-accept"] ~= core.accept_key(key) then
    return bad("wrong Sec-WebSocket-Accept")
  end
  local proto = h["sec-websocket-protocol"]
  if proto then
    local offered = false
    for _, p in ipairs(protocols or {}) do
      if p == proto then offered = true end
    end
    if not offered then return bad("subprotocol not offered: " .. proto) end
  end
  local pmd
  for _, e in ipairs(parse_extensions(h["sec-websocket-extensions"])) do
    if e.name ~= "permessage-deflate" or opts.compress == false or pmd
        or e.bad then
      return bad("extension not offered: " .. e.name)
    end
    local p = e.params
    pmd = {bits = 15, reset = p.client_no_context_takeover ~= nil,
      peer_reset = p.server_no_context_takeover ~= nil,
      header = h["sec-websocket-extensions"]}
    for k, v in pairs(p) do
      if k == "client_max_window_bits" then
        pmd.bits = window_bits(v)
        if pmd.bits == true or not pmd.bits then
          return bad("bad permessage-deflate parameter " .. k)
        end
      elseif k == "server_max_window_bits" then
        if window_bits(v) == true or not window_bits(v) then
          return bad("bad permessage-deflate parameter " .. k)
        end
      elseif (k ~= "client_no_context_takeover" and
          k ~= "server_no_context_takeover") or v ~= true then
        return bad("bad permessage-deflate parameter " .. k)
      end
    end
  end
  local ws, zerr = new_ws(sock, false, "", opts, pmd)
  if not ws then return nil, zerr end
  ws.protocol, ws.headers, ws.url = proto, h, target
  return ws
end

---------------------------------------------------------------------------
-- the server

local REASON = {[400] = "Bad Request", [426] = "Upgrade Required"}

local function refuse(req, status, why, extra)
  local sock = req:hijack()
  if sock then
    local body = why .. "\n"
    sock:settimeouts(nil, 1, nil)
    sock:send(("HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\n"
      .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(
      status, REASON[status], extra or "", #body, body))
    sock:close()
  end
  return nil, why
end

-- The server's answer to the client's permessage-deflate offers: the
-- first it can take. -> pmd, header value | nil
local function negotiate(v)
  for _, e in ipairs(parse_extensions(v)) do
    if e.name == "permessage-deflate" and not e.bad then
      local p, ok = e.params, true
      local pmd = {bits = 15, reset = false, peer_reset = false}
      local out = {"permessage-deflate"}
      for k, val in pairs(p) do
        if k == "server_no_context_takeover" and val == true then
          pmd.reset = true
          out[#out + 1] = "server_no_context_takeover"
        elseif k == "client_no_context_takeover" and val == true then
          pmd.peer_reset = true
          out[#out + 1] = "client_no_context_takeover"
        elseif k == "server_max_window_bits" and window_bits(val)
            and val ~= true then
          pmd.bits = window_bits(val)
          out[#out + 1] = "server_max_window_bits=" .. val
        elseif k == "client_max_window_bits" and window_bits(val) then
          -- nothing to ask: our inflater takes any window
        else
          ok = false
        end
      end
      if ok then
        pmd.header = concat(out, "; ")
        return pmd
      end
    end
  end
end

-- accept(req [, opts]) -> ws | nil, err (after answering 400/426)
-- req: an http.serve request (method, headers with lower-case names,
-- hijack()). opts: protocols (list, in our order of preference),
-- headers (extra response headers), compress (default true),
-- max_message, max_ratio, ping_interval, ping_timeout, close_timeout,
-- send_timeout.
function M.accept(req, opts)
  if type(req) ~= "table" or type(req.hijack) ~= "function" then
    error("bad argument #1 to 'accept' (request expected)", 2)
  end
  opts = check_opts(opts, "accept")
  local extra = check_headers(opts.headers, 3)
  local h = req.headers or {}
  if req.method ~= "GET" then
    return refuse(req, 400, "websocket: GET expected")
  end
  if not has_token(h.upgrade, "websocket") then
    return refuse(req, 426, "websocket: no 'Upgrade: websocket'",
      "Upgrade: websocket\r\n")
  end
  if not has_token(h.connection, "upgrade") then
    return refuse(req, 400, "websocket: no 'Connection: Upgrade'")
  end
  if header_value(h["sec-websocket-version"]) ~= "13" then
    return refuse(req, 426, "websocket: version 13 expected",
      "Sec-WebSocket-Version: 13\r\n")
  end
  local key = header_value(h["sec-websocket-key"])
  if not key or not key:match("^[%w+/]+==$") or #key ~= 24 then
    return refuse(req, 400, "websocket: bad Sec-WebSocket-Key")
  end
  local proto
  local offered = header_value(h["sec-websocket-protocol"])
  if offered and opts.protocols then
    local set = {}
    for p in offered:gmatch("[^,%s]+") do set[p] = true end
    for _, p in ipairs(opts.protocols) do
      if set[p] then proto = p break end
    end
  end
  local pmd
  if opts.compress ~= false then
    pmd = negotiate(h["sec-websocket-extensions"])
  end
  local sock, pending = req:hijack()
  if not sock then return nil, pending or "closed" end
  local resp = {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
    "Connection: Upgrade\r\nSec-WebSocket-Accept: ", core.accept_key(key),
    "\r\n"}
  if proto then
    resp[#resp + 1] = "Sec-WebSocket-Protocol: " .. proto .. "\r\n"
  end
  if pmd then
    resp[#resp + 1] = "Sec-WebSocket-Extensions: " .. pmd.header .. "\r\n"
  end
  for _, line in ipairs(extra) do resp[#resp + 1] = line end
  resp[#resp + 1] = "\r\n"
  sock:settimeouts(nil, opts.timeout or M.TIMEOUT, nil)
  local ok, err = sock:send(concat(resp))
  if not ok then sock:close() return nil, err end
  local ws, zerr = new_ws(sock, true, pending, opts, pmd)
  if not ws then return nil, zerr end
  ws.protocol, ws.headers = proto, h
  return ws
end

-- The request object a handler gets from server() below: what http.serve
-- gives (method, path, headers, hijack, websocket), over a raw socket.
local Req = {}
Req.__index = Req

function Req:hijack()
  local s = self._sock
  if not s then return nil, "closed" end
  self._sock = nil
  return s, self._pending or ""
end

function Req:websocket(opts)
  return M.accept(self, opts)
end

-- http.server, when this netsh has it (module "http.server").
local function http_server()
  local ok, hs = pcall(require, "http.server")
  if ok and type(hs) == "table" and type(hs.server) == "function" then
    return hs
  end
end

-- server{host=, port=, handler=, tls=, backlog=, grace=} -> server
-- A WebSocket-only server: handler(req) runs in a task per connection and
-- req:websocket([opts]) upgrades (anything else gets accept's 400/426).
-- On http.server when this netsh has it, else on a small accept loop of
-- its own giving handlers the same req (method, path, headers, hijack,
-- websocket). host "unix:PATH": a Unix socket. The server answers
-- getsockname() and close() (which stops it).
function M.server(opts)
  if type(opts) ~= "table" or type(opts.handler) ~= "function" then
    error("bad argument #1 to 'server' (table with handler expected)", 2)
  end
  local host = opts.host or "127.0.0.1"
  local unix = host:sub(1, 5) == "unix:" and host:sub(6) or nil
  local handler = opts.handler
  local hs = http_server()
  if hs then
    local srv, err = hs.server{host = not unix and host or nil,
      port = not unix and (opts.port or 0) or nil, unix = unix,
      tls = opts.tls, backlog = opts.backlog, grace = opts.grace,
      handler = function(req) handler(req) end}
    if not srv then return nil, err end
    task.spawn(srv.serve, srv)
    return setmetatable({}, {__index = {
      getsockname = function() return srv.host, srv.port end,
      close = function() return srv:close() end}})
  end
  local srv, err
  if unix then
    srv, err = socket.bind(host, {backlog = opts.backlog or 511,
      tls = opts.tls})
  else
    srv, err = socket.bind(host, opts.port or 0,
      {backlog = opts.backlog or 511, tls = opts.tls})
  end
  if not srv then return nil, err end
  task.spawn(function()
    srv:serve(function(client)
      client:settimeout(10, "t")
      local lines = read_head(client)
      if not lines then return end
      local method, target = (lines[1] or ""):match("^(%u+) (%S+) HTTP/1%.%d$")
      local h = method and parse_fields(lines, 2)
      if not h then
        client:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
          .. "Connection: close\r\n\r\n")
        return
      end
      client:settimeout(nil)
      local req = setmetatable({method = method, target = target,
        path = target:match("^[^?]*"), query = target:match("%?(.*)$"),
        headers = h, _sock = client}, Req)
      handler(req)
    end)
  end)
  return srv
end

return M
