-- udp.lua -- the public "udp" module: UDP sockets whose calls suspend only
-- the calling task. The C side is "udp.core" (src/socket_udp.c).
--
-- Constructors:
--   udp.udp() / udp.new()  unconnected socket; its family comes from the
--                          first address it is given (bind, connect, send)
--   udp.udp4(), udp.udp6() IPv4 / IPv6-only socket (LuaSocket's names)
--   udp.bind(host, port [, family])     bound socket | nil, err
--   udp.connect(host, port [, family])  connected socket | nil, err
--
-- Methods (LuaSocket names and return conventions; Python aliases):
--   setsockname(host, port) / bind      -> 1 | nil, err  ("*": any)
--   setpeername(host, port) / connect   -> 1 | nil, err;
--     setpeername("*") makes a connected socket unconnected again
--   send(data)                          -> bytes | nil, err   (connected)
--   sendto(data, host, port)            -> bytes | nil, err   (unconnected)
--   receive([size]) / recv              -> data | nil, err
--   receivefrom([size]) / recvfrom      -> data, ip, port | nil, err
--   datagrams([size])  iterator: for data, ip, port in s:datagrams() do
--   getsockname(), getpeername()        -> ip, port, family | nil, err
--   settimeout(seconds|nil [, "b"|"t"]), settimeouts(connect, send, read),
--   gettimeout() -> block, total, setoption(name [, value]),
--   getoption(name), close(), getfd(), getfamily(); tostring(s) is
--   "udp{unconnected}: 0x...", "udp{connected}: ..." or "udp{closed}: ...";
--   `local s <close> = udp.udp()` closes it on scope exit, so does the GC.
--
-- Conventions:
--   * Host names are accepted everywhere an address is (sendto too, unlike
--     LuaSocket) and are resolved without blocking the other tasks.
--   * A receive suspends the task until a datagram comes; with a timeout
--     (settimeout) it gives nil, "timeout"; settimeout(0) polls.
--   * Without a size a receive returns the whole datagram. A datagram
--     longer than the size asked for is never cut silently: the first size
--     bytes come back followed by "truncated" and the datagram's length,
--       receive(size)     -> data, "truncated", length
--       receivefrom(size) -> data, ip, port, "truncated", length
--     (and the same extra values in the datagrams() loop). The rest of the
--     datagram is dropped, as recvfrom(2) does.
--   * Zero-byte datagrams are datagrams: receive returns "".
--   * A connected socket reports ICMP "port unreachable" from its peer as
--     nil, "connection refused" on its next receive (or send).
--   * Many tasks may receive on one socket: they are served in the order
--     they started waiting, one datagram each. Sending from many tasks at
--     once is fine too. close() wakes every waiting task with nil, "closed".
--   * datagrams() ends when the socket is closed or a receive times out;
--     any other error is raised.
--   * Errors: "timeout", "closed", "connection refused", "host not found",
--     "address already in use", "message too long" (more than 65,507
--     bytes over IPv4), "already connected" (sendto on a connected socket),
--     "destination address required" (send on an unconnected one), "not
--     connected" (getpeername), "not bound" (getsockname before any use).
--   * Options (setoption/getoption): broadcast, dontroute, reuseaddr,
--     reuseport, recv-buffer-size, send-buffer-size, ip-multicast-if (an
--     IPv4 address), ip-multicast-ttl, ip-multicast-loop,
--     ip-add-membership / ip-drop-membership ({multiaddr =, interface =}),
--     ipv6-unicast-hops, ipv6-multicast-hops, ipv6-multicast-loop,
--     ipv6-multicast-if (interface index or name), ipv6-add-membership /
--     ipv6-drop-membership ({multiaddr =, interface = index or name}),
--     ipv6-v6only; get-only "error". Options set on a udp() socket before
--     it has an address are applied when its socket is made.
local core = require "udp.core"

local M = {
  _DATAGRAMSIZE = 8192,          -- LuaSocket's constant, for compatibility
  MAXDATAGRAM = core.MAXDATAGRAM,  -- 65,507: the largest IPv4 payload
}

local new = core.new

function M.new(family) return new(family) end
function M.udp() return new() end
function M.udp4() return new("inet") end
function M.udp6() return new("inet6") end

local function family_arg(family, fname)
  if family ~= nil and family ~= "inet" and family ~= "inet6" then
    error(("bad argument #3 to '%s' ('inet', 'inet6' or nil expected)")
      :format(fname), 3)
  end
  return family
end

-- A new socket with its address set by method (setsockname or
-- setpeername); closed again if that fails. -> socket | nil, err
local function new_with(fname, method, host, port, family)
  local s, err = new(family_arg(family, fname))
  if not s then return nil, err end
  local ok
  ok, err = s[method](s, host, port)
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

-- bind(host, port [, family]) -> socket bound to host:port | nil, err
-- (Python's socket(AF_INET, SOCK_DGRAM) + bind((host, port)))
function M.bind(host, port, family)
  return new_with("bind", "setsockname", host, port, family)
end

-- connect(host, port [, family]) -> connected socket | nil, err
function M.connect(host, port, family)
  return new_with("connect", "setpeername", host, port, family)
end

return M
