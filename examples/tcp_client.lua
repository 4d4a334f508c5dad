-- tcp_client.lua -- the classic TCP client, translated line for line from
-- Python: connect to localhost:12345, send "Bonjour serveur", print the
-- answer. Run it while examples/tcp_server.lua waits.
--[[ The original (Python):
import socket

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', 12345))
client.sendall(b'Bonjour serveur')
response = client.recv(1024)
print(response.decode())
client.close()
]]

local client = socket.tcp4()                    -- AF_INET, SOCK_STREAM
assert(client:connect("localhost", 12345))
assert(client:sendall("Bonjour serveur"))
local response = assert(client:recv(1024))
print(response)
client:close()
