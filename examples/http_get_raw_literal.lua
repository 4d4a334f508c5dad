-- http_get_raw_literal.lua -- GETs http://example.com/ (on the internet)
-- unless given a host: the seed's raw HTTP GET in Python's words
-- (python/http_get_raw.py; http_get_raw.lua is the LuaSocket style, which
-- reads the whole answer instead of its first 4 KiB).
--   netsh examples/http_get_raw_literal.lua [host] [port]
--   netsh examples/http_get_raw_literal.lua 127.0.0.1 8080
local host = arg[1] or 'example.com'
local port = tonumber(arg[2]) or 80
local request = "GET / HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"

local client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client:connect({host, port})
client:sendall(request)
local response = client:recv(4096)
print(response)
client:close()
