-- fds.lua -- counting this process's open file descriptors, for the
-- specs that check sockets are closed (no fd leak).
local M = {}

local function sample(pid)
  local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
  local n = p:read("n")
  p:close()
  return n
end

-- count() -> number of open descriptors of this process. popen's pipe
-- sometimes still has both ends open here when ls looks (one too many):
-- the least of three looks.
function M.count()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.min(sample(pid), sample(pid), sample(pid))
end

-- settled() -> the count once it holds still: sockets of earlier specs
-- may still be closing, and must not inflate a "before" count
function M.settled()
  local before = M.count()
  for _ = 1, 40 do
    collectgarbage()
    collectgarbage()
    sleep(0.05)
    local n = M.count()
    if n == before then break end
    before = n
  end
  return before
end

return M
