-- helpers/dns.lua -- start tests/spec/helpers/dns_responder.py and point
-- the resolver at it: responder.start() -> port; responder.stop().
local M = {}
local src = os.getenv("NETSH_SRC") or "."
local proc, pid, port_of

function M.start()
  proc = assert(io.popen("exec python3 " .. src ..
    "/tests/spec/helpers/dns_responder.py", "r"))
  local line = assert(proc:read("l"), "dns responder did not start")
  local port
  port, pid = line:match("^(%d+) (%d+)$")
  assert(require("socket.dns").setservers{"127.0.0.1:" .. port})
  port_of = tonumber(port)
  return port_of
end

-- port() -> the running responder's port
function M.port()
  return port_of
end

function M.stop()
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  if proc then proc:close() end
  proc, pid = nil, nil
end

return M
