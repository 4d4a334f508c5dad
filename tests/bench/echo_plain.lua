-- echo_plain.lua PORT: the plain receiveany + send echo loop, for
-- echo_instructions.sh. Fixed here (scripts/tcp_echo.lua may take other
-- paths) so that binaries of different ages run the same Lua.
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", assert(tonumber(arg[1])),
  {backlog = 1024}))
pcall(server.serve, server, function(c)
  c:setoption("tcp-nodelay", true)
  while true do
    local data = c:receiveany(65536)
    if not data or not c:send(data) then break end
  end
end)
