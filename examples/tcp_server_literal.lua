-- tcp_server_literal.lua -- the seed's Python TCP server, typed as Python
-- has it: socket.socket, tuple addresses, accept() -> conn, addr, and
-- failures raised as Python's (see python/tcp_server.py, the original,
-- and tcp_server.lua, the LuaSocket-style version).
--   netsh examples/tcp_server_literal.lua [port]     (default 12345)
local PORT = tonumber(arg[1]) or 12345

local server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server:bind({'localhost', PORT})
server:listen(1)
local conn, addr = server:accept()
local data = conn:recv(1024)
conn:sendall('Recu: ' .. data)
conn:close()
server:close()
