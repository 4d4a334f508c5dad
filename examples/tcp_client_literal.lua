-- tcp_client_literal.lua -- the seed's Python TCP client, typed as Python
-- has it (python/tcp_client.py; tcp_client.lua is the LuaSocket style).
--   netsh examples/tcp_client_literal.lua [port]     (default 12345)
local PORT = tonumber(arg[1]) or 12345

local client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client:connect({'localhost', PORT})
client:sendall('Bonjour serveur')
local response = client:recv(1024)
print(response)
client:close()
