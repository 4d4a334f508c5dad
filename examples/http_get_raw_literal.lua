-- http_get_raw_literal.lua -- the seed's raw HTTP GET in Python's words
-- (python/http_get_raw.py; http_get_raw.lua is the LuaSocket style, which
-- reads the whole answer instead of its first 4 KiB).
--   netsh examples/http_get_raw_literal.lua [host] [port]
local host = arg[1] or 'example.com'
local port = tonumber(arg[2]) or 80
local request = "GET / HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"

local client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client:connect({host, port})
client:sendall(request)
local response = client:recv(4096)
print(response)
client:close()
