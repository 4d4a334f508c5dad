-- udp_client.lua -- the classic Python UDP client, line for line: sends
-- "Bonjour serveur" to localhost:12345 and prints the answer.
-- run: netsh examples/udp_client.lua   (after examples/udp_server.lua)
--
-- The Python original:
--   import socket
--
--   client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
--   client.sendto(b'Bonjour serveur', ('localhost', 12345))
--   response, addr = client.recvfrom(1024)
--   print(response.decode())
--   client.close()
--
-- Like the original it waits for the answer as long as it takes; add
-- client:settimeout(5) for a nil, "timeout" instead.

local client = udp.udp4()                      -- AF_INET, SOCK_DGRAM
assert(client:sendto("Bonjour serveur", "localhost", 12345))
local response = assert(client:recvfrom(1024))
print(response)
client:close()
