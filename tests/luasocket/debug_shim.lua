-- debug_shim.lua -- what a LuaSocket built with LUASOCKET_DEBUG adds, for
-- test/testclnt.lua, which refuses to run without it: socket._DEBUG is
-- true and TCP send/receive return the seconds they took as a 4th value.
-- Loaded by run.sh with -l, under netsh and under lua5.4 alike.
local socket = require "socket"
socket._DEBUG = true

local function timed(f)
  return function(...)
    local t0 = socket.gettime()
    local a, b, c = f(...)
    return a, b, c, socket.gettime() - t0
  end
end

-- LuaSocket keeps one method table per class (master, server, client);
-- wrap each one the objects lead to, once. netsh has one, which its
-- metatables name __methods (their __index is a function, for .class).
local server = assert(socket.bind("127.0.0.1", 0))
local ip, port = server:getsockname()
local client = assert(socket.connect(ip, port))
local seen = {}
for _, obj in ipairs{socket.tcp(), server, client} do
  local mt = getmetatable(obj)
  local methods = type(mt.__index) == "table" and mt.__index or mt.__methods
  if type(methods) == "table" and not seen[methods] then
    seen[methods] = true
    for _, name in ipairs{"send", "receive"} do
      if methods[name] then methods[name] = timed(methods[name]) end
    end
  end
end
client:close()
server:close()
return true
