-- tcp_server.lua -- the classic one-shot TCP server, translated line for
-- line from Python: accept one client on localhost:12345, read up to 1024
-- bytes, answer "Recu: " .. data. Run: netsh examples/tcp_server.lua
-- (then examples/tcp_client.lua in another terminal).
--[[ The original (Python):
import socket

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(('localhost', 12345))
server.listen(1)
conn, addr = server.accept()
data = conn.recv(1024)
conn.sendall(b'Recu: ' + data)
conn.close()
server.close()
]]

local server = socket.tcp4()                    -- AF_INET, SOCK_STREAM
assert(server:bind("localhost", 12345))
assert(server:listen(1))
local conn = assert(server:accept())            -- addr: conn:getpeername()
local data = assert(conn:recv(1024))
assert(conn:sendall("Recu: " .. data))
conn:close()
server:close()
