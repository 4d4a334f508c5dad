-- http_get_raw.lua -- GETs http://example.com/ (on the internet) unless
-- given a host: the classic raw HTTP GET, by hand over TCP: connect, send
-- the request line and headers, read until the server closes, print.
--
--   netsh examples/http_get_raw.lua [host] [port] [path]
--   netsh examples/http_get_raw.lua 127.0.0.1 8080 /
--[[ The original (Python):
import socket

host = 'example.com'
port = 80
request = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((host, port))
client.sendall(request)
response = client.recv(4096)
print(response.decode())
client.close()
]]
local socket = require "socket"

local host = arg[1] or "example.com"
local port = tonumber(arg[2] or "80")
local path = arg[3] or "/"
if not port then
  io.stderr:write("usage: http_get_raw.lua [host] [port] [path]\n")
  os.exit(2)
end

local client, err = socket.connect(host, port)
if not client then
  io.stderr:write(("cannot connect to %s:%d: %s\n"):format(host, port, err))
  os.exit(1)
end
client:settimeout(10)

-- HTTP/1.1 needs Host; "Connection: close" makes the server end the
-- response by closing, so receive("*a") gets all of it.
local hostport = port == 80 and host or (host .. ":" .. port)
local request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n")
  :format(path, hostport)
local sent, serr = client:send(request)
if not sent then
  io.stderr:write("send failed: ", serr, "\n")
  os.exit(1)
end

local response, rerr, partial = client:receive("*a")
client:close()
if not response then
  io.stderr:write("receive failed: ", rerr, "\n")
  io.write(partial or "")
  os.exit(1)
end
io.write(response)
