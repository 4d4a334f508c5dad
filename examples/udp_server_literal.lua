-- udp_server_literal.lua -- the seed's Python UDP server, typed as Python
-- has it: recvfrom() -> data, addr and sendto(data, addr)
-- (python/udp_server.py; udp_server.lua is the LuaSocket style).
--   netsh examples/udp_server_literal.lua [port]     (default 12345)
local PORT = tonumber(arg[1]) or 12345

local server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server:bind({'localhost', PORT})
local data, addr = server:recvfrom(1024)
server:sendto('Recu: ' .. data, addr)
server:close()
