-- socket/python.lua -- "socket.python": Python's socket module, literally.
-- socket.socket(AF_INET, SOCK_STREAM), bind({host, port}), accept() ->
-- conn, addr, recv(n) -> "" at EOF, sendall(data), failures raised as
-- error objects (ConnectionRefusedError, TimeoutError, gaierror...).
-- The objects wrap netsh's TCP and UDP cosockets (socket.core, udp.core):
-- every call still parks only its task, so task.timeout, cancellation and
-- socket.select work on both APIs, and one spawn makes a literal server
-- concurrent. This is the one place netsh raises on network failures.
--
-- Loading it (any Python name on the global socket does) adds
-- socket.socket, the constants, gethostbyname, getaddrinfo... to the
-- socket module; the names LuaSocket already has (create_connection,
-- create_server) keep their LuaSocket meaning there, and this module's
-- own copies return Python objects: `local socket = require
-- "socket.python"` reads like Python's `import socket`.
--
-- Constants have Linux's values (what Python shows there). An address is
-- a tuple {host, port} (IPv6: {host, port, flowinfo, scope_id}) that
-- prints like Python's; AF_UNIX addresses are paths.
--
-- An object is a table {_socket = cosocket, family, type, proto}: the
-- cosocket owns the descriptor (closed by close(), <close> or its __gc);
-- socket.select finds it through _socket. Errors: the cosocket's
-- LuaSocket string goes through new_error(), which knows the operation
-- ("closed": "" from recv at EOF, EPIPE from send, EBADF after close()).
local core = require "socket.core"
local luasocket = require "socket"
local udp = require "udp"
local dns = require "socket.dns"

local M = {}

---------------------------------------------------------------------------
-- constants (Linux)

local C = {
  AF_UNSPEC = 0, AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10,
  SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3,
  SOCK_NONBLOCK = 2048, SOCK_CLOEXEC = 524288,
  SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4, SO_DONTROUTE = 5,
  SO_BROADCAST = 6, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9,
  SO_REUSEPORT = 15,
  IPPROTO_IP = 0, IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_IPV6 = 41,
  TCP_NODELAY = 1, TCP_KEEPIDLE = 4, TCP_KEEPINTVL = 5, TCP_KEEPCNT = 6,
  IP_MULTICAST_TTL = 33, IP_MULTICAST_LOOP = 34, IPV6_V6ONLY = 26,
  SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2,
  AI_PASSIVE = 1, AI_CANONNAME = 2, AI_NUMERICHOST = 4,
  SOMAXCONN = 4096,
}
for k, v in pairs(C) do M[k] = v end
M.has_ipv6 = true

local family_names = {[0] = "AF_UNSPEC", "AF_UNIX", "AF_INET",
  [10] = "AF_INET6"}
local type_names = {"SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW"}

-- (level, option) -> LuaSocket option name, "b" (boolean) or "i"
local options = {
  [1] = {[2] = {"reuseaddr", "b"}, [4] = {"error", "e"},
    [5] = {"dontroute", "b"}, [6] = {"broadcast", "b"},
    [7] = {"send-buffer-size", "i"}, [8] = {"recv-buffer-size", "i"},
    [9] = {"keepalive", "b"}, [15] = {"reuseport", "b"}},
  [6] = {[1] = {"tcp-nodelay", "b"}, [4] = {"tcp-keepidle", "i"},
    [5] = {"tcp-keepintvl", "i"}, [6] = {"tcp-keepcnt", "i"}},
  [0] = {[33] = {"ip-multicast-ttl", "i"}, [34] = {"ip-multicast-loop", "b"}},
  [41] = {[26] = {"ipv6-v6only", "b"}},
}

---------------------------------------------------------------------------
-- tuples: addresses and getaddrinfo entries print as Python's repr

local Tuple = {}
local List = {}

local function repr(v)
  local t = type(v)
  if t == "string" then
    local q = (v:find("'", 1, true) and not v:find('"', 1, true))
      and '"' or "'"
    return q .. v:gsub("[%c\\'\"\128-\255]", function(c)
      if c == "\\" then return "\\\\" end
      if c == q then return "\\" .. c end
      if c == "'" or c == '"' then return c end
      if c == "\n" then return "\\n" end
      if c == "\r" then return "\\r" end
      if c == "\t" then return "\\t" end
      return ("\\x%02x"):format(c:byte())
    end) .. q
  elseif v == nil then return "None"
  elseif v == true then return "True"
  elseif v == false then return "False"
  end
  return tostring(v)
end

function Tuple.__tostring(t)
  local parts = {}
  for i = 1, t.n or #t do parts[i] = repr(t[i]) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

function Tuple.__eq(a, b)
  local n = a.n or #a
  if n ~= (b.n or #b) then return false end
  for i = 1, n do
    if a[i] ~= b[i] then return false end
  end
  return true
end

function List.__tostring(l)
  local parts = {}
  for i = 1, #l do parts[i] = repr(l[i]) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- an enum member's repr, as Python shows getaddrinfo's first fields
local Enum = {__tostring = function(e) return e.repr end}

local function tuple(...)
  return setmetatable({...}, Tuple)
end

-- address(ip, port, family) -> ('ip', port) or ('ip', port, 0, 0)
local function address(ip, port, family)
  if family == "inet6" then
    return setmetatable({ip, port, 0, 0}, Tuple)
  end
  return setmetatable({ip, port}, Tuple)
end
-- socket.address(host, port) -> the tuple, as addresses print
function M.address(host, port) return address(host, port) end

---------------------------------------------------------------------------
-- errors: netsh's LuaSocket strings -> Python's kind, errno, strerror

local Error = {}
Error.__index = Error
Error.__name = "socket.error"

-- kind -> parent kind (Python's exception hierarchy, the OSError part)
local parents = {
  ConnectionError = "OSError", ConnectionRefusedError = "ConnectionError",
  ConnectionResetError = "ConnectionError",
  ConnectionAbortedError = "ConnectionError",
  BrokenPipeError = "ConnectionError", TimeoutError = "OSError",
  BlockingIOError = "OSError", PermissionError = "OSError",
  InterruptedError = "OSError", gaierror = "OSError", herror = "OSError",
  FileNotFoundError = "OSError",
}
-- what Python prints before the message
local printed = {gaierror = "socket.gaierror", herror = "socket.herror"}

-- Python's names for the classes; a kind is a string
M.error = "OSError"
M.timeout = "TimeoutError"
M.gaierror = "gaierror"
M.herror = "herror"

function Error.__tostring(e)
  local name = printed[e.kind] or e.kind
  if e.errno then
    return ("%s: [Errno %d] %s"):format(name, e.errno, e.strerror)
  end
  return name .. ": " .. e.strerror
end

-- e:is(kind) -> true when e is a kind (or a subclass of it), as
-- Python's isinstance: e:is("OSError") holds for every socket error.
function Error:is(kind)
  local k = self.kind
  while k do
    if k == kind then return true end
    k = parents[k]
  end
  return false
end

local known = {
  ["connection refused"] = {"ConnectionRefusedError", 111,
    "Connection refused"},
  ["connection reset by peer"] = {"ConnectionResetError", 104,
    "Connection reset by peer"},
  ["connection aborted"] = {"ConnectionAbortedError", 103,
    "Software caused connection abort"},
  ["broken pipe"] = {"BrokenPipeError", 32, "Broken pipe"},
  ["address already in use"] = {"OSError", 98, "Address already in use"},
  ["address not available"] = {"OSError", 99,
    "Cannot assign requested address"},
  ["permission denied"] = {"PermissionError", 13, "Permission denied"},
  ["network unreachable"] = {"OSError", 101, "Network is unreachable"},
  ["host unreachable"] = {"OSError", 113, "No route to host"},
  ["already connected"] = {"OSError", 106,
    "Transport endpoint is already connected"},
  ["not connected"] = {"OSError", 107,
    "Transport endpoint is not connected"},
  ["destination address required"] = {"OSError", 89,
    "Destination address required"},
  ["message too long"] = {"OSError", 90, "Message too long"},
  ["too many open files"] = {"OSError", 24, "Too many open files"},
  ["not enough memory"] = {"OSError", 12, "Cannot allocate memory"},
  ["invalid argument"] = {"OSError", 22, "Invalid argument"},
  ["no such file or directory"] = {"FileNotFoundError", 2,
    "No such file or directory"},
  ["bad file descriptor"] = {"OSError", 9, "Bad file descriptor"},
  ["host not found"] = {"gaierror", -2, "Name or service not known"},
  ["host or service not provided, or not known"] = {"gaierror", -2,
    "Name or service not known"},
  ["temporary failure in name resolution"] = {"gaierror", -3,
    "Temporary failure in name resolution"},
  ["non-recoverable failure in name resolution"] = {"gaierror", -4,
    "Non-recoverable failure in name resolution"},
  ["servname not supported"] = {"gaierror", -8,
    "Servname not supported for ai_socktype"},
  ["service not supported for socket type"] = {"gaierror", -8,
    "Servname not supported for ai_socktype"},
  ["address family not supported"] = {"OSError", 97,
    "Address family not supported by protocol"},
  ["socket type not supported"] = {"OSError", 94,
    "Socket type not supported"},
  ["protocol not available"] = {"OSError", 92, "Protocol not available"},
  ["operation not supported"] = {"OSError", 95,
    "Operation not supported"},
  ["would block"] = {"BlockingIOError", 11,
    "Resource temporarily unavailable"},
  ["in progress"] = {"BlockingIOError", 115, "Operation now in progress"},
  ["unknown host"] = {"herror", 1, "Unknown host"},
}

-- new_error(err [, op [, sock]]) -> an error object for netsh's message
-- err, as operation op on sock would have failed in Python.
local function new_error(err, op, sock)
  if err == "timeout" then
    if sock and sock._timeout == 0 then
      err = op == "connect" and "in progress" or "would block"
    else
      return setmetatable({kind = "TimeoutError", strerror = "timed out",
        message = "timed out", err = "timeout"}, Error)
    end
  elseif err == "closed" then
    if sock and sock._closed then err = "bad file descriptor"
    elseif op == "send" then err = "broken pipe"
    elseif op == "recv" then err = "connection reset by peer"
    else err = "connection aborted" end
  end
  local k = known[err]
  if not k then
    return setmetatable({kind = "OSError", strerror = tostring(err),
      message = tostring(err), err = err}, Error)
  end
  return setmetatable({kind = k[1], errno = k[2], strerror = k[3],
    message = k[3], err = err}, Error)
end

local function raise(err, op, sock)
  -- Ctrl-C stays netsh's own error, which the runtime and REPL know
  if err == "interrupted" then error(err, 0) end
  error(new_error(err, op, sock), 0)
end

-- raise_new(kind, message [, errno]): an error netsh has no string for
local function raise_new(kind, msg, errno)
  error(setmetatable({kind = kind, errno = errno, strerror = msg,
    message = msg}, Error), 0)
end

---------------------------------------------------------------------------
-- arguments

-- argerror(n, fname, msg [, level]): level 3 blames the caller of the
-- function calling argerror; helpers of methods pass 4.
local function argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level or 3)
end

-- host, port of an address argument: {host, port} or host, port
local function check_addr(sock, fname, a, b, bind)
  if sock.family == C.AF_UNIX then
    if type(a) ~= "string" then
      argerror(1, fname, "path expected, got " .. type(a), 4)
    end
    return a
  end
  local host, port
  if type(a) == "table" then
    host, port = a[1], a[2]
  elseif type(a) == "string" and b ~= nil then
    host, port = a, b
  else
    argerror(1, fname, "address {host, port} expected, got " .. type(a), 4)
  end
  if type(host) ~= "string" then
    argerror(1, fname, "host must be a string, got " .. type(host), 4)
  end
  port = math.tointeger(port)
  if not port or port < 0 or port > 65535 then
    argerror(1, fname, "port must be 0-65535", 4)
  end
  if host == "" then host = bind and "*" or "localhost" end
  if host == "<broadcast>" then host = "255.255.255.255" end
  return host, port
end

local function check_size(n, fname)
  local v = math.tointeger(n)
  if not v or v < 0 then
    argerror(1, fname, "non-negative integer expected, got "
      .. (type(n) == "number" and tostring(n) or type(n)))
  end
  return v
end

-- MSG_PEEK and friends are not there: flags must be 0
local function check_flags(flags, fname)
  if flags ~= nil and flags ~= 0 then
    argerror(2, fname, "flags not supported, 0 expected", 4)
  end
end

---------------------------------------------------------------------------
-- socket objects

local Socket = {}
local SMT = {__index = Socket, __name = "socket.socket"}

local default_timeout = nil

function M.getdefaulttimeout() return default_timeout end

function M.setdefaulttimeout(t)
  if t ~= nil and (type(t) ~= "number" or t < 0) then
    argerror(1, "setdefaulttimeout", "non-negative number or nil expected")
  end
  default_timeout = t
end

-- wrap(cosocket, family, type) -> a Python socket object over it
local function wrap(s, family, stype)
  local self = setmetatable({_socket = s, family = family, type = stype,
    proto = 0, _timeout = nil, _closed = false}, SMT)
  if default_timeout then self:settimeout(default_timeout) end
  return self
end

local function check(self, fname)
  if getmetatable(self) ~= SMT then
    error(("bad argument #1 to '%s' (socket.socket expected, got %s)")
      :format(fname, type(self)), 3)
  end
  if self._closed then raise("bad file descriptor") end
  return self._socket
end

local function is_stream(self) return self.type == C.SOCK_STREAM end

-- the LuaSocket state of a stream socket: "master", "client", "server"
local function state(s)
  return tostring(s):match("^%a+{(%a+)}")
end

-- is the stream socket connected? (tostring costs a getpeername: asked
-- until the answer is yes, which does not change until close)
local function connected(self, s)
  if self._connected then return true end
  self._connected = state(s) == "client"
  return self._connected
end

-- socket([family [, type [, proto [, fileno]]]]) -> socket object.
-- fileno may be a netsh TCP or UDP object to wrap (socket.connect's...).
function M.socket(family, stype, proto, fileno)
  family = family or C.AF_INET
  stype = stype or C.SOCK_STREAM
  if type(family) ~= "number" then
    argerror(1, "socket", "number expected, got " .. type(family))
  end
  if type(stype) ~= "number" then
    argerror(2, "socket", "number expected, got " .. type(stype))
  end
  local nonblock = stype & C.SOCK_NONBLOCK ~= 0
  stype = stype & ~(C.SOCK_NONBLOCK | C.SOCK_CLOEXEC)
  if proto ~= nil and proto ~= 0 and proto ~= C.IPPROTO_TCP
      and proto ~= C.IPPROTO_UDP then
    raise("protocol not available")
  end
  local s, err
  if fileno ~= nil then
    local kind = type(fileno) == "userdata" and state(fileno)
      and tostring(fileno):match("^(%a+){")
    if not kind then
      argerror(4, "socket", "a netsh socket expected (descriptor numbers "
        .. "cannot be adopted), got " .. type(fileno))
    end
    s = fileno
    stype = kind == "udp" and C.SOCK_DGRAM or C.SOCK_STREAM
    if kind == "unix" then family = C.AF_UNIX end
  elseif family ~= C.AF_INET and family ~= C.AF_INET6
      and family ~= C.AF_UNIX then
    raise("address family not supported")
  elseif stype == C.SOCK_STREAM then
    if family == C.AF_INET then s, err = core.tcp4()
    elseif family == C.AF_INET6 then
      s, err = core.tcp6()
      if s then s:setoption("ipv6-v6only", false) end  -- Linux's default
    else s, err = core.unix() end
  elseif stype == C.SOCK_DGRAM then
    if family == C.AF_UNIX then raise("address family not supported") end
    s, err = (family == C.AF_INET and udp.udp4 or udp.udp6)()
    if s and family == C.AF_INET6 then s:setoption("ipv6-v6only", false) end
  else
    raise("socket type not supported")
  end
  if not s then raise(err) end
  local self = wrap(s, family, stype)
  if nonblock then self:setblocking(false) end
  return self
end

function SMT.__tostring(self)
  if self._closed then
    return ("<socket.socket [closed] fd=-1, family=%s, type=%s, proto=0>")
      :format(family_names[self.family], type_names[self.type])
  end
  local parts = {("<socket.socket fd=%d, family=%s, type=%s, proto=%d")
    :format(self._socket:getfd(), family_names[self.family],
      type_names[self.type], self.proto)}
  local ok, laddr = pcall(self.getsockname, self)
  if ok and laddr ~= "" then parts[#parts + 1] = "laddr=" .. repr(laddr) end
  local ok2, raddr = pcall(self.getpeername, self)
  if ok2 then parts[#parts + 1] = "raddr=" .. repr(raddr) end
  return table.concat(parts, ", ") .. ">"
end

-- `local s <close> = socket.socket()` is Python's `with`
function SMT.__close(self) self:close() end

-- the netsh cosocket underneath (LuaSocket's methods: receive, lines...)
function Socket:cosocket() return check(self, "cosocket") end

-- bind(address) -> nil; host "" is every address
function Socket:bind(a, b)
  local s = check(self, "bind")
  local host, port = check_addr(self, "bind", a, b, true)
  local ok, err
  if is_stream(self) then ok, err = s:bind(host, port)
  else ok, err = s:setsockname(host, port) end
  if not ok then raise(err, "bind", self) end
end

-- listen([backlog]) -> nil
function Socket:listen(backlog)
  local s = check(self, "listen")
  if not is_stream(self) then raise("operation not supported") end
  if backlog ~= nil and not math.tointeger(backlog) then
    argerror(1, "listen", "integer expected, got " .. type(backlog))
  end
  local ok, err = s:listen(math.max(backlog or 128, 0))
  if not ok then raise(err, "listen", self) end
end

-- accept() -> conn, address
function Socket:accept()
  local s = check(self, "accept")
  if not is_stream(self) then raise("operation not supported") end
  if state(s) ~= "server" then raise("invalid argument") end
  local c, err = s:accept()
  if not c then raise(err, "accept", self) end
  local conn = wrap(c, self.family, self.type)
  if not default_timeout then c:settimeout(nil) end
  local addr = ""
  if self.family ~= C.AF_UNIX then
    local ip, port, fam = c:getpeername()
    if not ip then   -- the peer reset it already: no address to be had
      ip, port = self.family == C.AF_INET6 and "::" or "0.0.0.0", 0
      fam = self.family == C.AF_INET6 and "inet6" or "inet"
    end
    addr = address(ip, port, fam)
  end
  return conn, addr
end

-- connect(address) -> nil
function Socket:connect(a, b)
  local s = check(self, "connect")
  local host, port = check_addr(self, "connect", a, b)
  local ok, err
  if is_stream(self) then
    if state(s) ~= "master" then raise("already connected") end
    ok, err = s:connect(host, port)
  else
    ok, err = s:setpeername(host, port)
  end
  if not ok then raise(err, "connect", self) end
end

-- connect_ex(address) -> 0 | errno; name resolution failures still raise
function Socket:connect_ex(a, b)
  local ok, e = pcall(self.connect, self, a, b)
  if ok then return 0 end
  if getmetatable(e) ~= Error or e.kind == "gaierror" then error(e, 0) end
  if e.kind == "TimeoutError" then return 11 end   -- EAGAIN, as Python
  return e.errno or 5                               -- EIO: no better one
end

-- The end of a stream: "" (or what came before it) after a clean close;
-- a reset raises ConnectionResetError, as Python's recv does.
local function at_end(s, partial, sock, op)
  if (partial == nil or partial == "") and s.readerror
      and s:readerror() == "connection reset by peer" then
    raise("connection reset by peer", op, sock)
  end
  return partial or ""
end

-- recv(n) -> up to n bytes, waiting only when there are none; "" at EOF
function Socket:recv(n, flags)
  local s = check(self, "recv")
  n = check_size(n, "recv")
  check_flags(flags, "recv")
  if not is_stream(self) then
    local data, err = s:receive(n > 0 and n or nil)
    if not data then raise(err, "recv", self) end
    return n > 0 and data or ""
  end
  if not connected(self, s) then raise("not connected") end
  if n == 0 then return "" end
  local data, err, partial = s:receiveany(n)
  if data then return data end
  if err == "closed" and not self._closed then
    return at_end(s, partial, self, "recv")
  end
  raise(err, "recv", self)
end

-- recvfrom(n) -> data, address (a stream socket's address is nil)
function Socket:recvfrom(n, flags)
  local s = check(self, "recvfrom")
  n = check_size(n, "recvfrom")
  check_flags(flags, "recvfrom")
  if is_stream(self) then return self:recv(n), nil end
  local data, ip, port = s:receivefrom(n > 0 and n or nil)
  if not data then raise(ip, "recv", self) end
  local fam = ip:find(":", 1, true) and "inet6" or "inet"
  return n > 0 and data or "", address(ip, port, fam)
end

local function check_data(data, fname)
  if type(data) ~= "string" then
    argerror(1, fname, "string expected, got " .. type(data), 4)
  end
  return data
end

-- send(data) -> bytes sent
function Socket:send(data, flags)
  local s = check(self, "send")
  check_data(data, "send")
  check_flags(flags, "send")
  if not is_stream(self) then
    local n, err = s:send(data)
    if not n then raise(err, "send", self) end
    return n
  end
  if not connected(self, s) then raise("not connected") end
  local last, err, sent = s:send(data)
  if last then return #data end
  if sent and sent > 0 and err ~= "closed" then return sent end
  raise(err, "send", self)
end

-- sendall(data) -> nil, every byte sent (or raises)
function Socket:sendall(data, flags)
  local s = check(self, "sendall")
  check_data(data, "sendall")
  check_flags(flags, "sendall")
  if not is_stream(self) then
    self:send(data)
    return
  end
  if not connected(self, s) then raise("not connected") end
  local last, err = s:send(data)
  if not last then raise(err, "send", self) end
end

-- sendto(data, address) or sendto(data, flags, address) -> bytes sent
function Socket:sendto(data, a, b)
  local s = check(self, "sendto")
  check_data(data, "sendto")
  if type(a) == "number" then a, b = b, nil end   -- (data, flags, addr)
  if is_stream(self) then raise("already connected") end
  local host, port = check_addr(self, "sendto", a, b)
  local n, err = s:sendto(data, host, port)
  if not n then raise(err, "send", self) end
  return n
end

-- settimeout(seconds | nil): nil blocks, 0 never waits (BlockingIOError)
function Socket:settimeout(t)
  local s = check(self, "settimeout")
  if t ~= nil and (type(t) ~= "number" or t < 0) then
    argerror(1, "settimeout", "non-negative number or nil expected")
  end
  s:settimeout(t)
  self._timeout = t
end

function Socket:gettimeout() return self._timeout end

-- setblocking(flag): true = settimeout(nil), false = settimeout(0)
function Socket:setblocking(flag)
  self:settimeout((not flag) and 0 or nil)
end

function Socket:getblocking() return self._timeout ~= 0 end

local function option(level, opt, fname)
  local o = options[level] and options[level][opt]
  if not o then
    if type(level) ~= "number" or type(opt) ~= "number" then
      argerror(1, fname, "level and option numbers expected", 4)
    end
    raise("protocol not available")
  end
  return o[1], o[2]
end

-- setsockopt(level, option, value) -> nil (value: 1/0, true/false, n)
function Socket:setsockopt(level, opt, value)
  local s = check(self, "setsockopt")
  local name, kind = option(level, opt, "setsockopt")
  if kind == "e" then raise("protocol not available") end
  if kind == "b" then
    value = value ~= 0 and value ~= false and value ~= nil
  elseif not math.tointeger(value) then
    argerror(3, "setsockopt", "integer expected, got " .. type(value))
  end
  local ok, err = s:setoption(name, value)
  if not ok then raise(err, "setsockopt", self) end
end

-- getsockopt(level, option) -> integer (booleans as 1 / 0)
function Socket:getsockopt(level, opt)
  local s = check(self, "getsockopt")
  local name, kind = option(level, opt, "getsockopt")
  local v, err = s:getoption(name)
  if kind == "e" then
    if not v then return 0 end
    local k = known[v]
    return k and k[2] or 5
  end
  if v == nil then raise(err, "getsockopt", self) end
  if kind == "b" then return v and 1 or 0 end
  return v
end

-- getsockname() -> address (a path for AF_UNIX)
function Socket:getsockname()
  local s = check(self, "getsockname")
  local ip, port, fam = s:getsockname()
  if self.family == C.AF_UNIX then return ip or "" end
  if not ip then
    if port == "not bound" then   -- UDP before any use, as the kernel says
      return address(self.family == C.AF_INET6 and "::" or "0.0.0.0", 0,
        self.family == C.AF_INET6 and "inet6" or "inet")
    end
    raise(port, "getsockname", self)
  end
  return address(ip, port, fam)
end

-- getpeername() -> address
function Socket:getpeername()
  local s = check(self, "getpeername")
  local ip, port, fam = s:getpeername()
  if not ip then
    raise(port == "closed" and "not connected" or port, "getpeername", self)
  end
  if self.family == C.AF_UNIX then return ip end
  return address(ip, port, fam)
end

local shut = {[0] = "receive", "send", "both"}

-- shutdown(how): SHUT_RD, SHUT_WR or SHUT_RDWR
function Socket:shutdown(how)
  local s = check(self, "shutdown")
  local mode = shut[how]
  if not mode then
    argerror(1, "shutdown", "SHUT_RD, SHUT_WR or SHUT_RDWR expected")
  end
  if not is_stream(self) or not connected(self, s) then
    raise("not connected")
  end
  local ok, err = s:shutdown(mode)
  if not ok then raise(err, "shutdown", self) end
end

-- close(): twice is fine; tasks waiting on the socket get OSError EBADF
function Socket:close()
  if self._closed then return end
  self._closed = true
  self._socket:close()
end

-- fileno() -> descriptor | -1 once closed
function Socket:fileno()
  if self._closed then return -1 end
  return self._socket:getfd()
end

---------------------------------------------------------------------------
-- makefile(): a file object on a stream socket. readline() keeps the
-- "\n" and returns "" at EOF; `for line in f do` iterates the same lines.

local File = {}
local FMT = {__index = File, __name = "socket.SocketIO"}

function Socket:makefile(mode)
  check(self, "makefile")
  if not is_stream(self) then raise("operation not supported") end
  if mode ~= nil and (type(mode) ~= "string" or not mode:match("^[rwb]+$"))
  then
    argerror(1, "makefile", "mode 'r', 'w', 'rw' or 'rb' expected")
  end
  return setmetatable({sock = self}, FMT)
end

function File:readline()
  local sock = self.sock
  local s = check(sock, "readline")
  if not connected(sock, s) then raise("not connected") end
  local data, err, partial = s:receiveuntil_raw("\n")
  if data then return data .. "\n" end
  if err == "closed" and not sock._closed then
    return at_end(s, partial, sock, "recv")
  end
  raise(err, "recv", sock)
end

-- read([n]) -> n bytes (fewer at EOF) | everything until EOF
function File:read(n)
  local sock = self.sock
  local s = check(sock, "read")
  if not connected(sock, s) then raise("not connected") end
  local data, err, partial
  if n == nil or n < 0 then
    data, err, partial = s:receive("*a")
  else
    data, err, partial = s:receive(check_size(n, "read"))
  end
  if data then return data end
  if err == "closed" and not sock._closed then
    return at_end(s, partial, sock, "recv")
  end
  raise(err, "recv", sock)
end

function File:readlines()
  local t = {}
  for line in self do t[#t + 1] = line end
  return t
end

-- lines() -> iterator over lines without their "\n" (Lua's file:lines())
function File:lines()
  return function()
    local line = self:readline()
    if line ~= "" then return (line:gsub("\r?\n$", "")) end
  end
end

function File:write(data)
  self.sock:sendall(data)
  return #data
end

function File.flush() end

function File.close() end

function FMT.__call(f)
  local line = f:readline()
  if line ~= "" then return line end
end

FMT.__close = File.close

---------------------------------------------------------------------------
-- module functions

local function dns_fail(err)
  if err == "address family not supported" then
    raise_new("gaierror", "Address family for hostname not supported", -9)
  end
  raise(known[err] and err or "host not found")
end

local function is_ipv4(s)
  return s:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
end

-- gethostbyname(name) -> IPv4 address string
function M.gethostbyname(name)
  if type(name) ~= "string" then
    argerror(1, "gethostbyname", "string expected, got " .. type(name))
  end
  if is_ipv4(name) then return name end
  local list, err = dns.getaddrinfo(name, "inet")
  if not list or not list[1] then dns_fail(err) end
  return list[1].addr
end

-- gethostbyaddr(ip) -> hostname, aliases, addresses
function M.gethostbyaddr(ip)
  if type(ip) ~= "string" then
    argerror(1, "gethostbyaddr", "string expected, got " .. type(ip))
  end
  local addr = ip
  if not ip:find(":", 1, true) and not is_ipv4(ip) then
    addr = M.gethostbyname(ip)
  end
  local name = dns.tohostname(addr)
  if not name then raise("unknown host") end
  return name, setmetatable({}, List), setmetatable({addr}, List)
end

function M.gethostname() return dns.gethostname() end

local services
-- port number of a service name ("http"), from /etc/services
local function service_port(name, proto)
  if not services then
    services = {}
    local f = io.open("/etc/services")
    if f then
      for line in f:lines() do
        local svc, port, p, rest = line:match("^(%S+)%s+(%d+)/(%a+)(.*)")
        if svc then
          local function add(n)
            services[n .. "/" .. p] = services[n .. "/" .. p]
              or tonumber(port)
          end
          add(svc)
          for alias in (rest:gsub("#.*", "")):gmatch("%S+") do add(alias) end
        end
      end
      f:close()
    end
  end
  return services[name .. "/" .. (proto or "tcp")]
    or services[name .. "/tcp"] or services[name .. "/udp"]
end

-- getservbyname(name [, "tcp" | "udp"]) -> port (/etc/services)
function M.getservbyname(name, proto)
  if type(name) ~= "string" then
    argerror(1, "getservbyname", "string expected, got " .. type(name))
  end
  local port = service_port(name, proto)
  if not port or (proto and not services[name .. "/" .. proto]) then
    raise_new("OSError", "service/proto not found")
  end
  return port
end

-- byte order helpers: network order is big-endian, Linux hosts little
local function swap16(x) return ((x & 0xff) << 8) | ((x >> 8) & 0xff) end
local function swap32(x)
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >> 8) & 0xff00)
    | ((x >> 24) & 0xff)
end
local little = string.pack("=I2", 1) == "\1\0"
function M.htons(x) return little and swap16(x) or x end
M.ntohs = M.htons
function M.htonl(x) return little and swap32(x) or x end
M.ntohl = M.htonl

-- inet_aton("1.2.3.4") -> 4 bytes; inet_ntoa(bytes) -> "1.2.3.4"
function M.inet_aton(ip)
  local a, b, c, d = tostring(ip):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if not a or a > 255 or b > 255 or c > 255 or d > 255 then
    raise_new("OSError", "illegal IP address string passed to inet_aton")
  end
  return string.char(a, b, c, d)
end

function M.inet_ntoa(packed)
  if type(packed) ~= "string" or #packed ~= 4 then
    raise_new("OSError", "packed IP wrong length for inet_ntoa")
  end
  return ("%d.%d.%d.%d"):format(packed:byte(1, 4))
end

local function enum(prefix, names, v)
  local n = names[v]
  if not n then return v end
  return setmetatable({repr = ("<%s.%s: %d>"):format(prefix, n, v)}, Enum)
end

-- a getaddrinfo entry: numbers inside, Python's enum reprs when printed
local AddrInfo = {__eq = Tuple.__eq}
function AddrInfo.__tostring(e)
  return tostring(setmetatable({enum("AddressFamily", family_names, e[1]),
    enum("SocketKind", type_names, e[2]), e[3], e[4], e[5]}, Tuple))
end

-- getaddrinfo(host, port [, family [, type [, proto [, flags]]]]) ->
-- a list of {family, type, proto, canonname, address} tuples
function M.getaddrinfo(host, port, family, stype, proto, flags)
  family, stype = family or 0, stype or 0
  proto, flags = proto or 0, flags or 0
  if host ~= nil and type(host) ~= "string" then
    argerror(1, "getaddrinfo", "string or nil expected, got " .. type(host))
  end
  local pnum
  if port == nil then pnum = 0
  elseif math.tointeger(port) then pnum = math.tointeger(port)
  elseif type(port) == "string" then
    pnum = math.tointeger(tonumber(port)) or service_port(port,
      stype == C.SOCK_DGRAM and "udp" or "tcp")
    if not pnum then raise("servname not supported") end
  else
    argerror(2, "getaddrinfo", "port number, string or nil expected")
  end
  if pnum < 0 or pnum > 65535 then
    argerror(2, "getaddrinfo", "port must be 0-65535")
  end
  local fam
  if family == C.AF_INET then fam = "inet"
  elseif family == C.AF_INET6 then fam = "inet6"
  elseif family ~= C.AF_UNSPEC then raise("address family not supported")
  end
  local addrs
  if host == nil or host == "" then
    local passive = flags & C.AI_PASSIVE ~= 0
    addrs = {}
    if fam ~= "inet" then
      addrs[#addrs + 1] = {family = "inet6", addr = passive and "::" or "::1"}
    end
    if fam ~= "inet6" then
      addrs[#addrs + 1] = {family = "inet",
        addr = passive and "0.0.0.0" or "127.0.0.1"}
    end
  else
    local err
    addrs, err = dns.getaddrinfo(host, fam)
    if not addrs or not addrs[1] then dns_fail(err) end
  end
  local kinds = {{C.SOCK_STREAM, C.IPPROTO_TCP}, {C.SOCK_DGRAM, C.IPPROTO_UDP},
    {C.SOCK_RAW, 0}}
  local out = setmetatable({}, List)
  for _, a in ipairs(addrs) do
    local f = a.family == "inet6" and C.AF_INET6 or C.AF_INET
    for _, k in ipairs(kinds) do
      if (stype == 0 or stype == k[1]) and (proto == 0 or proto == k[2]) then
        local e = setmetatable({f, k[1], k[2], "",
          address(a.addr, pnum, a.family)}, AddrInfo)
        out[#out + 1] = e
      end
    end
  end
  return out
end

-- create_connection(address [, timeout [, source_address]]) -> socket
function M.create_connection(addr, timeout, source)
  if type(addr) ~= "table" then
    argerror(1, "create_connection", "address {host, port} expected, got "
      .. type(addr))
  end
  local s, err = luasocket.create_connection(addr,
    timeout or default_timeout, source)
  if not s then raise(err, "connect") end
  local fam = s:getfamily() == "inet6" and C.AF_INET6 or C.AF_INET
  local self = wrap(s, fam, C.SOCK_STREAM)
  self:settimeout(timeout or default_timeout)
  return self
end

-- create_server(address [, {family =, backlog =, reuse_port =,
-- dualstack_ipv6 =}]) -> socket (Python's keyword arguments in a table)
function M.create_server(addr, opts)
  if type(addr) ~= "table" then
    argerror(1, "create_server", "address {host, port} expected, got "
      .. type(addr))
  end
  opts = opts or {}
  local family = opts.family or C.AF_INET
  local o = {backlog = opts.backlog, reuse_port = opts.reuse_port,
    family = family == C.AF_INET6 and "inet6" or "inet"}
  if opts.dualstack_ipv6 then
    if family ~= C.AF_INET6 then
      error("bad argument #2 to 'create_server' (dualstack_ipv6 "
        .. "requires family = AF_INET6)", 2)
    end
    o.family = nil            -- LuaSocket's unspec master: both families
  end
  local s, err = luasocket.create_server(addr, o)
  if not s then raise(err, "bind") end
  core.pyaccept(s, false)
  return wrap(s, family, C.SOCK_STREAM)
end

---------------------------------------------------------------------------
-- the names added to the socket module (LuaSocket's own stay as they are)

for k, v in pairs(M) do
  if rawget(luasocket, k) == nil then rawset(luasocket, k, v) end
end

return setmetatable(M, {__index = luasocket})
