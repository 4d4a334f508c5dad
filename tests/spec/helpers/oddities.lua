-- oddities.lua -- tests/support/http_oddities.py (the odd HTTP peers) for
-- a spec: start(dir [, lifetime]) runs it with its port file in dir and
-- returns its base URL and pid once it listens (it ends by itself after
-- lifetime seconds, 300 by default); stop(pid) ends it sooner.
local M = {}

local SRC = os.getenv("NETSH_SRC") or "."

function M.start(dir, lifetime)
  local portfile = dir .. "/odd.port"
  os.execute(("python3 %s/tests/support/http_oddities.py %s %d "
    .. ">/dev/null 2>&1 &"):format(SRC, portfile, lifetime or 300))
  for _ = 1, 200 do
    local f = io.open(portfile)
    if f then                      -- written whole (a rename)
      local port, pid = f:read("a"):match("(%d+) (%d+)")
      f:close()
      return "http://127.0.0.1:" .. port, pid
    end
    sleep(0.05)
  end
  error("http_oddities.py did not start", 2)
end

function M.stop(pid)
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
end

return M
