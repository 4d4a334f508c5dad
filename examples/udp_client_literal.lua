-- udp_client_literal.lua -- the seed's Python UDP client, typed as Python
-- has it (python/udp_client.py; udp_client.lua is the LuaSocket style).
-- Like the original it waits for the answer as long as it takes;
-- client:settimeout(5) would raise TimeoutError instead.
--   netsh examples/udp_client_literal.lua [port]     (default 12345)
local PORT = tonumber(arg[1]) or 12345

local client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client:sendto('Bonjour serveur', {'localhost', PORT})
local response, addr = client:recvfrom(1024)
print(response)
client:close()
