-- socket/unix.lua -- "socket.unix": LuaSocket's Unix domain stream sockets
-- on netsh cosockets. The objects are netsh's TCP objects on a path:
-- connect(path), bind(path), listen, accept, send, receive (every
-- pattern), settimeout, select and close work as for TCP, and calls park
-- the task, not the process.
--
--   local unix = require "socket.unix"
--   local c = assert(unix())                 -- or unix.stream()
--   assert(c:connect("/run/app.sock"))       -- "@name": abstract name
--
-- socket.connect("unix:/run/app.sock") and socket.bind("unix:/path") are
-- the same without this module (OpenResty's spelling).
local core = require "socket.core"

local M = {}

-- stream() -> master | nil, err
function M.stream()
  return core.unix()
end

return setmetatable(M, {__call = function() return core.unix() end})
