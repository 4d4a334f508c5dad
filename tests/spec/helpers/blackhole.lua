-- blackhole.lua -- start helpers/blackhole.py: a listener whose queue is
-- kept full, so connects to it hang (a loopback stand-in for an address
-- that never answers). blackhole([addr]) -> port, stop()
local src = os.getenv("NETSH_SRC") or "."

return function(addr)
  local p = assert(io.popen("exec python3 " .. src
    .. "/tests/spec/helpers/blackhole.py " .. (addr or "127.0.0.1")))
  local port, pid = p:read("n", "n")
  return port, function()
    os.execute("kill " .. pid)
    p:close()
  end
end
