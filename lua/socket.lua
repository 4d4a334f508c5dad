-- socket.lua -- the public "socket" module (also the global `socket`):
-- LuaSocket's TCP API on netsh cosockets. Every call that would block
-- parks the calling task instead (src/socket_tcp.c, "socket.core").
-- This file adds what is easier in Lua: socket.connect/bind, LuaSocket's
-- try/protect, Python-style aliases (sendall, recv, create_connection,
-- create_server), OpenResty's receiveuntil, lines(), and server:serve(),
-- the one server idiom: a task per client, closed when its handler ends.
-- TLS: sock:starttls(), socket.connect(host, port, {tls = ...}) and the
-- certificate getters at the end; OpenSSL (tls.core) loads on first use.
--
-- Timeouts are seconds. Defaults: DNS 30 s (socket.dns.TIMEOUT) and
-- connect 30 s DNS included (socket.CONNECT_TIMEOUT), unless settimeout
-- says otherwise; receive, send and accept wait as LuaSocket's do (forever)
-- until settimeout. Enclosing task.timeout scopes bound everything.
local core = require "socket.core"
local dns = require "socket.dns"
local task = require "task"

local M = {
  _VERSION = "LuaSocket 3.1 (netsh)",
  _SETSIZE = core._SETSIZE,
  _SOCKETINVALID = core._SOCKETINVALID,
  _DATAGRAMSIZE = 8192,
  BLOCKSIZE = 2048,
  CONNECT_TIMEOUT = core.CONNECT_TIMEOUT,
  HAPPY_EYEBALLS_DELAY = core.HAPPY_EYEBALLS_DELAY_MS / 1000,
  tcp = core.tcp,
  tcp4 = core.tcp4,
  tcp6 = core.tcp6,
  select = core.select,
  gettime = core.gettime,
  dns = dns,
}

local methods = core.tcp_methods
local stderr = io.stderr

-- sleep(seconds): parks the task (LuaSocket's blocks the process)
function M.sleep(s)
  local n = tonumber(s)
  if type(s) ~= "number" and (type(s) ~= "string" or not n) then
    error(("bad argument #1 to 'sleep' (number expected, got %s)"):format(
      s == nil and "no value" or type(s)), 2)      -- at the user's line
  end
  task.sleep(n)
end

local function master(family)
  if family == "inet" then return core.tcp4() end
  if family == "inet6" then return core.tcp6() end
  if family ~= nil and family ~= "unspec" then
    error("bad argument #5 to 'connect' (invalid family '"
      .. tostring(family) .. "')", 3)
  end
  return core.tcp()
end

-- The steps of every client: timeout, local address, connect, TLS; the
-- socket is closed on the first failure. -> sock | nil, err
local function open_client(sock, host, port, locaddr, locport, timeout, tls)
  local ok, err
  if timeout then sock:settimeout(timeout) end
  if locaddr then
    ok, err = sock:bind(locaddr, locport or 0)
    if not ok then sock:close() return nil, err end
  end
  ok, err = sock:connect(host, port)
  if not ok then sock:close() return nil, err end
  if tls then
    ok, err = sock:starttls(tls)
    if not ok then sock:close() return nil, err end
  end
  return sock
end

-- connect(host, port [, locaddr [, locport [, family]]]) -> client | nil, err
-- connect("unix:PATH" [, opts]): a Unix domain socket (see socket.unix)
-- connect(host, port, {tls =, timeout =, locaddr =, locport =, family =}):
-- tls = true or TLS options (see starttls) makes it a TLS client, the
-- handshake done; timeout is the socket's (settimeout).
-- connect("127.0.0.1:8080"): say that host and port are two arguments
local function check_port(name, host, port, level)
  if port ~= nil or type(host) ~= "string" or host:find("^unix:") then
    return
  end
  local h, p = host:match("^%[(.*)%]:(%d+)$")
  if not h then h, p = host:match("^([^:]*):(%d+)$") end
  error(("bad argument #2 to '%s' (port expected, got no value%s)"):format(
    name, h and (": host and port are two arguments, %s(%q, %s)")
      :format(name, h, p) or ""), level + 1)
end

function M.connect(host, port, locaddr, locport, family)
  local opts
  if type(port) == "table" then            -- connect("unix:PATH", opts)
    port, locaddr = nil, port
  end
  check_port(family == "inet" and "connect4" or family == "inet6"
    and "connect6" or "connect", host, port, family and 3 or 2)
  if type(locaddr) == "table" then
    opts = locaddr
    locaddr, locport, family = opts.locaddr, opts.locport, opts.family
  end
  local sock, err = master(family)
  if not sock then return nil, err end
  return open_client(sock, host, port, locaddr, locport,
    opts and opts.timeout, opts and opts.tls)
end

function M.connect4(host, port, locaddr, locport)
  return M.connect(host, port, locaddr, locport, "inet")
end

function M.connect6(host, port, locaddr, locport)
  return M.connect(host, port, locaddr, locport, "inet6")
end

-- bind(host, port [, backlog]) -> server | nil, err ("*" = any)
-- bind("unix:PATH" [, backlog | opts]): listens on a Unix socket file
-- bind(host, port, {backlog =, tls = {certfile =, keyfile =, ...}}): a
-- TLS server (see starttls).
function M.bind(host, port, backlog)
  local tls
  if type(port) == "table" or (backlog == nil and type(host) == "string"
      and host:sub(1, 5) == "unix:") then   -- bind("unix:PATH", ...)
    port, backlog = nil, port
  end
  if type(backlog) == "table" then
    tls, backlog = backlog.tls, backlog.backlog
  end
  local sock, err = core.tcp()
  if not sock then return nil, err end
  sock:setoption("reuseaddr", true)
  local ok
  ok, err = sock:bind(host, port)
  if ok then ok, err = sock:listen(backlog) end
  if ok and tls then ok, err = sock:starttls(tls) end
  if not ok then sock:close() return nil, err end
  return sock
end

---------------------------------------------------------------------------
-- LuaSocket's error helpers

local try_error = {}
try_error.__index = try_error

function M.newtry(finalizer)
  return function(...)
    if not (...) then
      if finalizer then pcall(finalizer) end
      error(setmetatable({(select(2, ...))}, try_error), 0)
    end
    return ...
  end
end

M.try = M.newtry()

function M.protect(f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local e = r[2]
    if getmetatable(e) == try_error then return nil, e[1] end
    error(e, 0)
  end
end

function M.skip(d, ...)
  return select(d + 1, ...)
end

---------------------------------------------------------------------------
-- Python-style aliases

-- An alias calls the core method through here, so that an argument
-- error names the alias the user called, at the user's line (not the core
-- method, in this file). f is called as f(self, ...): its argument #1 is
-- self, so numbers shift by one.
local function rename(name, ok, ...)
  if ok then return ... end
  local e = ...
  if type(e) == "string" then
    local k, why = e:match("^[^:]*%.lua:%d+: bad argument #(%d+) to '[^']*' %((.*)%)$")
    if not k then
      k, why = e:match("^bad argument #(%d+) to '[^']*' %((.*)%)$")
    end
    if k == "1" then
      error(("calling '%s' on bad self (%s)"):format(name, why), 3)
    elseif k then
      error(("bad argument #%d to '%s' (%s)"):format(tonumber(k) - 1, name,
        why), 3)
    end
  end
  error(e, 0)
end

-- sendall(data) -> true | nil, err, bytes sent
function methods:sendall(data)
  local last, err, sent = rename("sendall", pcall(methods.send, self, data))
  if last then return true end
  return nil, err, sent
end

-- forward(dst [, max]) -> n | nil, err [, sent]: receives what comes
-- (as receiveany(max), max at most 65536, the default) and sends it to
-- dst, without making a Lua string of it. nil, err alone: the receive
-- failed ("closed" at the end); nil, err, sent: the send did, after sent
-- of those bytes. dst may be the socket itself (an echo).
function methods:forward(dst, max)
  local n, err, sent = self:forward_raw(dst, max)
  if n ~= false then return n, err, sent end
  local data
  data, err = self:receiveany(max or 65536)
  if not data then return nil, err end
  n, err, sent = dst:send(data)
  if not n then return nil, err, sent end
  return #data
end

-- sendfile(file [, offset [, count]]) -> bytes sent | nil, err, sent:
-- sends count bytes (default: to the end) of file (a path or an open
-- file handle, whose position is left alone) from offset (default 0).
-- Plain TCP and Unix sockets use sendfile(2) while the kernel takes the
-- bytes; when it is full, one 64 KiB chunk goes the queued way (which
-- waits as send does, bounded by the send timeout), then sendfile(2)
-- again. TLS and pipes read and send 64 KiB at a time. A file shorter
-- than offset + count: nil, "file too short", sent.
local SENDFILE_CHUNK = 65536
function methods:sendfile(file, offset, count)
  local f, own
  if type(file) == "string" then
    local err
    f, err = io.open(file, "rb")
    if not f then return nil, err, 0 end
    own = true
  elseif io.type(file) == "file" then
    f = file
  else
    error(("bad argument #1 to 'sendfile' (path or file expected, got %s)")
      :format(io.type(file) == "closed file" and "closed file"
              or type(file)), 2)
  end
  offset = offset or 0
  if math.type(offset) ~= "integer" or offset < 0 then
    if own then f:close() end
    error("bad argument #2 to 'sendfile' (non-negative integer expected)", 2)
  end
  if count ~= nil and (math.type(count) ~= "integer" or count < 0) then
    if own then f:close() end
    error("bad argument #3 to 'sendfile' (non-negative integer expected)", 2)
  end
  if count == nil then
    local pos = f:seek()
    local size = f:seek("end")
    if pos then f:seek("set", pos) end
    if not size then
      if own then f:close() end
      return nil, "not a seekable file", 0
    end
    count = size > offset and size - offset or 0
  end
  -- closed however this ends (an error, the task cancelled in a send)
  local guard <close> = own and f or nil
  local sent, plain = 0, false
  local function finish(...) return ... end
  while sent < count do
    local n, state, part
    if not plain then
      n, state, part = self:sendfile_raw(f, offset + sent, count - sent)
      if n == false then
        plain = true
      elseif n == nil then
        return finish(nil, state, sent + part)
      else
        sent = sent + n
        if state == "eof" then return finish(nil, "file too short", sent) end
      end
    end
    if sent < count then    -- the kernel is full (or the plain path)
      local pos = f:seek()
      f:seek("set", offset + sent)
      local want = count - sent
      local data = f:read(want < SENDFILE_CHUNK and want or SENDFILE_CHUNK)
      if pos then f:seek("set", pos) end
      if not data then return finish(nil, "file too short", sent) end
      local last, err, done = self:send(data)
      if not last then return finish(nil, err, sent + done) end
      sent = sent + #data
    end
  end
  return finish(sent)
end

-- recv(n) -> up to n bytes, waiting only if there are none; "" at EOF;
-- nil, "closed" when the peer reset the connection (readerror() says)
function methods:recv(n)
  local data, err, partial =
    rename("recv", pcall(methods.receiveany, self, n))
  if data then return data end
  if err == "closed" and not self:readerror() then return partial or "" end
  return nil, err, partial
end

local function address(a, what)
  if type(a) ~= "table" then
    error(("bad argument #1 to '%s' ({host, port} expected, got %s)")
      :format(what, type(a)), 3)
  end
  return a[1] or a.host, a[2] or a.port
end

-- create_connection({host, port} [, timeout [, {srchost, srcport}
-- [, {tls = true | options}]]]) -> client | nil, err; timeout also
-- becomes the socket's timeout (and bounds the TLS handshake)
function M.create_connection(addr, timeout, source, opts)
  local host, port = address(addr, "create_connection")
  local sock, err = core.tcp()
  if not sock then return nil, err end
  local locaddr, locport
  if source then locaddr, locport = address(source, "create_connection") end
  return open_client(sock, host, port, locaddr, locport, timeout,
    opts and opts.tls)
end

-- create_server({host, port} [, {family=, backlog=, reuse_port=, tls=}])
-- -> server | nil, err; its accept() returns conn, ip, port as Python's.
-- host "" or "*" means every address (dual-stack where possible).
function M.create_server(addr, opts)
  local host, port = address(addr, "create_server")
  opts = opts or {}
  local sock, err = master(opts.family)
  if not sock then return nil, err end
  sock:setoption("reuseaddr", true)
  if opts.reuse_port then sock:setoption("reuseport", true) end
  local ok
  ok, err = sock:bind(host == "" and "*" or host, port)
  if ok then ok, err = sock:listen(opts.backlog) end
  if ok and opts.tls then ok, err = sock:starttls(opts.tls) end
  if not ok then sock:close() return nil, err end
  return core.pyaccept(sock, true)
end

---------------------------------------------------------------------------
-- OpenResty-style reading, and lines()

-- receiveuntil(pattern [, {inclusive = bool}]) -> iterator
-- iter() returns the data before the next pattern; iter(size) returns
-- chunks of at most size bytes, then nil, nil at the pattern.
function methods:receiveuntil(pattern, opts)
  if type(pattern) ~= "string" or pattern == "" then
    error("bad argument #1 to 'receiveuntil' (non-empty string expected)", 2)
  end
  local inclusive = opts and opts.inclusive
  local at_boundary = false
  return function(size)
    if at_boundary then
      at_boundary = false
      return nil, nil
    end
    local data, found, partial = self:receiveuntil_raw(pattern, size)
    if not data then return nil, found, partial end
    if found then
      if inclusive then data = data .. pattern end
      if size then
        if data == "" then return nil, nil end
        at_boundary = true
      end
    end
    return data
  end
end

-- lines() -> iterator over lines (LuaSocket's "*l"), ending at EOF;
-- other errors, a reset by the peer too, are raised.
function methods:lines()
  return function()
    local line, err, partial = self:receive("*l")
    if line then return line end
    if err == "closed" and self:readerror() then
      error(self:readerror(), 2)
    end
    if err == "closed" then
      if partial and partial ~= "" then return partial end
      return nil
    end
    error(err, 2)
  end
end

---------------------------------------------------------------------------
-- server:serve(handler): the server idiom

-- serve(handler) -> nil, "closed" once the server is closed.
-- Accepts forever; each client runs handler(client) in a task of its own
-- and is closed when the handler returns or fails (the error is logged,
-- the other clients go on). When serve ends -- the server closed, Ctrl-C,
-- the calling task cancelled -- every client task is cancelled, which
-- closes its client.
function methods:serve(handler)
  if type(handler) ~= "function" then
    error("bad argument #1 to 'serve' (function expected, got "
      .. type(handler) .. ")", 2)
  end
  local live = {}
  local function run(client)
    local c <close> = client
    local me = task.current()
    local ok, err = xpcall(handler, debug.traceback, c)
    live[me] = nil
    if not ok then
      stderr:write("netsh: client handler failed: ", tostring(err), "\n")
    end
  end
  local ok, err = pcall(function()
    while true do
      local client, e = self:accept()
      if client then
        live[task.spawn(run, client)] = true
      elseif e == "closed" then
        return
      elseif e ~= "timeout" then
        -- out of descriptors or memory: back off, the clients go on
        stderr:write("netsh: accept failed: ", e, "\n")
        task.sleep(0.1)
      end
    end
  end)
  for t in pairs(live) do t:cancel() end
  if not ok then error(err, 0) end
  return nil, "closed"
end

---------------------------------------------------------------------------
-- TLS: the engine is tls.core (src/tls.c, OpenSSL, a module of its own so
-- that netsh starts without loading OpenSSL); socket.core moves the bytes.
-- Options (a table; true means {}):
--   verify = false          no certificate check (on by default: system
--                           store or cafile/capath, host name or IP)
--   servername              SNI and the name checked (default: the host
--                           given to connect)
--   cafile, capath          trust these instead of the system store
--   certfile, keyfile       our certificate (server; client certificate)
--   alpn = {"h2", ...}      protocols offered (client) / accepted (server)
--   min_version, max_version  "TLSv1.2", "TLSv1.3" (minimum 1.2 default)
--   ciphers, ciphersuites   OpenSSL cipher lists (TLS 1.2 / 1.3)
--   handshake_timeout       seconds (default: the socket's timeout, else
--                           30); expiry gives "handshake timeout"
--   session                 a session to resume (getsslsession())
--   context                 a tls.context() to share (certfile, alpn...)
-- Server side, also: verify = true (client certificate required, checked
-- against cafile) or "optional"; sni = {["name"] = {certfile=, keyfile=}
-- | tls context, ...}: the certificate for the name a client asks for
-- ("*.example.org" matches one label; other names get the default).

local tls_core
local function tls()
  tls_core = tls_core or require "tls.core"
  return tls_core
end

-- tls.context(opts) for scripts that make many connections: the CA store
-- and the key are loaded once. opts.mode = "server" for servers.
function M.tlscontext(opts)
  return tls().context(opts)
end

local function is_server(sock)
  return tostring(sock):find("^%a+{server}") ~= nil   -- tcp{} or unix{}
end

-- starttls([opts]) -> true | nil, err
-- A connected socket: the handshake, now, as the client (or the server
-- side for an accepted socket). A listening socket: every socket it
-- accepts speaks TLS, its handshake done by its first receive/send or
-- by starttls() without options; opts need certfile (and keyfile).
function methods:starttls(opts)
  local given = opts
  if opts == nil or opts == true then opts = {} end
  local t = type(opts)
  if t ~= "table" and t ~= "userdata" then
    error("bad argument #1 to 'starttls' (table expected, got " .. t .. ")",
      2)
  end
  if is_server(self) then
    local ctx, err = opts
    if t == "userdata" and not tostring(opts):find("^tls%.context{server}")
    then
      error("bad argument #1 to 'starttls' (server tls context expected)", 2)
    end
    if t == "table" then
      local o = {mode = "server"}
      for k, v in pairs(opts) do o[k] = v end
      ctx, err = tls().context(o)
      if not ctx then return nil, err end
    end
    return self:tlsattach(ctx)
  end
  local ok, err = self:tlsattach(opts)
  if not ok then
    -- starttls() on a socket a TLS server accepted: just the handshake
    if err == "tls already started" and given == nil then
      return self:tlshandshake()
    end
    return nil, err
  end
  return self:tlshandshake()
end

-- OpenResty: sslhandshake(reused_session, server_name, ssl_verify)
-- -> session | true (reused_session == false) | nil, err.
-- Unlike OpenResty, the certificate is checked unless ssl_verify is
-- false (secure by default).
function methods:sslhandshake(reused_session, server_name, ssl_verify)
  local opts = {servername = server_name, verify = ssl_verify ~= false}
  if type(reused_session) == "userdata" then opts.session = reused_session end
  local ok, err = self:starttls(opts)
  if not ok then return nil, err end
  if reused_session == false then return true end
  return self:tlsinfo("session") or true
end

-- getpeercertificate() -> {subject=, issuer=, common_name=, serial=,
-- sans = {"DNS:x", "IP:1.2.3.4"}, not_before=, not_after= (epoch s),
-- not_before_iso=, not_after_iso=, fingerprint= (SHA-256, "AB:CD:.."),
-- pem=, verified=, verify_error=} | nil
function methods:getpeercertificate() return self:tlsinfo("certificate") end
-- getpeerchain() -> {cert, ...}: what the peer sent, its own certificate
-- first, then the intermediates (same fields, without verified) | nil
function methods:getpeerchain() return self:tlsinfo("chain") end
-- "h2", "http/1.1"... | nil
function methods:getalpn() return self:tlsinfo("alpn") end
-- "TLSv1.3"... | nil
function methods:getprotocol() return self:tlsinfo("protocol") end
-- "TLS_AES_256_GCM_SHA384"... | nil
function methods:getcipher() return self:tlsinfo("cipher") end
-- a session for {session = s} / sslhandshake(s) | nil
function methods:getsslsession() return self:tlsinfo("session") end

---------------------------------------------------------------------------
-- LTN12 sinks and sources on sockets (LuaSocket's socket.sink/source; see
-- lua/ltn12.lua for the contracts). They are callable tables with getfd
-- and dirty, so socket.select takes them as LuaSocket's are.

-- choose(t) -> function(name, ...) calling t[name](...); a first argument
-- that is not a string picks t.default.
function M.choose(t)
  return function(name, opt1, opt2)
    if type(name) ~= "string" then
      name, opt1, opt2 = "default", name, opt1
    end
    local f = t[name or "nil"]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(opt1, opt2)
  end
end

-- _socket: socket.select waits on that socket for the sink or source.
local function endpoint(sock, call)
  return setmetatable({
    getfd = function() return sock:getfd() end,
    dirty = function() return sock:dirty() end,
    _socket = sock,
  }, {__call = call})
end

local sinkt, sourcet = {}, {}
M.sinkt, M.sourcet = sinkt, sourcet

sinkt["close-when-done"] = function(sock)
  return endpoint(sock, function(_, chunk)
    if chunk == nil then
      sock:close()
      return 1
    end
    return sock:send(chunk)
  end)
end

sinkt["keep-open"] = function(sock)
  return endpoint(sock, function(_, chunk)
    if chunk == nil then return 1 end
    return sock:send(chunk)
  end)
end

-- HTTP/1.1 chunked transfer coding; the end sends the last chunk. An
-- empty chunk sends nothing (it would read as the end).
sinkt["http-chunked"] = function(sock)
  return endpoint(sock, function(_, chunk)
    if chunk == nil then return sock:send("0\r\n\r\n") end
    if chunk == "" then return 1 end
    return sock:send(("%X\r\n%s\r\n"):format(#chunk, chunk))
  end)
end

sinkt.default = sinkt["keep-open"]

-- by-length: exactly length bytes, in chunks of at most BLOCKSIZE as they
-- arrive; nil, err if the connection fails first.
sourcet["by-length"] = function(sock, length)
  length = tonumber(length)
  if not length then
    error("bad argument #3 to 'source' (number expected)", 3)
  end
  return endpoint(sock, function()
    if length <= 0 then return nil end
    local chunk, err = sock:receiveany(math.min(M.BLOCKSIZE, length))
    if not chunk then return nil, err end
    length = length - #chunk
    return chunk
  end)
end

-- until-closed: everything until the peer closes; then the socket is
-- closed too and the source ends. A reset is an error (nil, "closed"):
-- the data was cut.
sourcet["until-closed"] = function(sock)
  local done = false
  return endpoint(sock, function()
    if done then return nil end
    local chunk, err, partial = sock:receiveany(M.BLOCKSIZE)
    if chunk then return chunk end
    if err ~= "closed" or (sock.readerror and sock:readerror()) then
      return nil, err
    end
    sock:close()
    done = true
    if partial and partial ~= "" then return partial end
    return nil
  end)
end

-- Reads header lines up to the empty line into t (lowercased names,
-- repeated fields joined with ", ", folded lines unfolded).
local function receive_headers(sock, t)
  local name
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    if line == "" then return t end
    local cont = line:match("^[ \t]+(.*)$")
    if cont and name then
      t[name] = t[name] .. " " .. cont
    else
      local n, v = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if not n then return nil, "malformed trailer" end
      name = n:lower()
      t[name] = t[name] and t[name] .. ", " .. v or v
    end
  end
end

-- http-chunked: the chunks' data; the trailer fields go to headers (the
-- third argument, a table) when given.
sourcet["http-chunked"] = function(sock, headers)
  local done = false
  return endpoint(sock, function()
    if done then return nil end
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local size = tonumber((line:gsub(";.*", "")), 16)
    if not size then return nil, "invalid chunk size" end
    if size > 0 then
      local chunk, rerr = sock:receive(size)
      if not chunk then return nil, rerr end
      local crlf, cerr = sock:receive("*l")
      if not crlf then return nil, cerr end
      return chunk
    end
    done = true
    local ok, herr = receive_headers(sock, headers or {})
    if not ok then return nil, herr end
    return nil
  end)
end

sourcet.default = sourcet["until-closed"]

-- sink([mode,] sock) -> sink; mode "keep-open" (default),
-- "close-when-done" or "http-chunked"
M.sink = M.choose(sinkt)
-- source([mode,] sock [, length | headers]) -> source; mode
-- "until-closed" (default), "by-length" or "http-chunked"
M.source = M.choose(sourcet)

---------------------------------------------------------------------------
-- socket.udp* come from the udp module when it exists; socket.headers and
-- socket.url from their modules

-- socket.headers and socket.url load on first use, as LuaSocket's
-- modules of those names set them.
local lazy = {headers = "socket.headers", url = "socket.url",
  unix = "socket.unix", python = "socket.python"}

-- Python's names (socket.socket, AF_INET, gethostbyname...) come with
-- socket.python, which adds them here on first use.
local pynames = {socket = true, gethostbyname = true, gethostbyaddr = true,
  gethostname = true, getaddrinfo = true, error = true, timeout = true,
  gaierror = true, herror = true, getdefaulttimeout = true,
  setdefaulttimeout = true, has_ipv6 = true, address = true,
  getservbyname = true, htons = true, ntohs = true, htonl = true,
  ntohl = true, inet_aton = true, inet_ntoa = true}

setmetatable(M, {
  -- what __index makes, for the REPL's completion (lua/netsh/repl.lua)
  __fields = {headers = "table", url = "table", unix = "table",
    udp = "function", udp4 = "function", udp6 = "function",
    python = "table", socket = "function"},
  __index = function(t, k)
    if lazy[k] then
      local m = require(lazy[k])
      rawset(t, k, m)
      return m
    end
    if type(k) == "string" and (pynames[k] or k:match("^[A-Z][A-Z0-9]*_%w")
        or k == "SOMAXCONN") and not package.loaded["socket.python"] then
      require "socket.python"
      return rawget(t, k)
    end
    if k == "udp" or k == "udp4" or k == "udp6" then
      local ok, udp = pcall(require, "udp")
      if ok and type(udp) == "table" and udp[k] then
        rawset(t, k, udp[k])
        return udp[k]
      end
    end
  end,
})

return M
