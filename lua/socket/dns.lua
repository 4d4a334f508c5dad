-- socket/dns.lua -- "socket.dns" (also socket.dns): LuaSocket's resolver
-- functions plus query() and setservers(). Every lookup runs on c-ares
-- (src/dns.c), yields the calling task, and gives up after dns.TIMEOUT
-- seconds (30) or at the enclosing task.timeout, whichever comes first.
local core = require "socket.dns.core"

local M = {
  TIMEOUT = core.TIMEOUT,
  toip = core.toip,                 -- (name) -> ip, resolved | nil, err
  tohostname = core.tohostname,     -- (addr) -> name, resolved | nil, err
  getaddrinfo = core.getaddrinfo,   -- (name [, family]) -> {{family, addr}}
  gethostname = core.gethostname,   -- () -> name
  query = core.query,               -- (name, type [, timeout]) -> records
  setservers = core.setservers,     -- {"ip[:port]", ...} -> true
}

-- getnameinfo(host, port) -> {names...}, service | nil, err
-- As LuaSocket: host (a name or an address) is resolved, and every
-- address is looked up in reverse; port gives the service name.
function M.getnameinfo(host, port)
  if host == nil and port == nil then
    return nil, "host or service not provided, or not known"
  end
  local names, service = {}, nil
  if port ~= nil then
    local _, s = core.nameinfo(nil, tonumber(port))
    service = s
  end
  if host == nil then return names, service end
  local addrs, err = core.getaddrinfo(host)
  if not addrs then return nil, err end
  for _, a in ipairs(addrs) do
    local name = core.nameinfo(a.addr)
    names[#names + 1] = name or a.addr
  end
  return names, service
end

return M
