-- udp_server.lua -- the classic Python UDP server, line for line: waits
-- for one datagram on localhost:12345, answers "Recu: " .. data, exits.
-- run: netsh examples/udp_server.lua   (then: netsh examples/udp_client.lua)
--
-- The Python original:
--   import socket
--
--   server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
--   server.bind(('localhost', 12345))
--   data, addr = server.recvfrom(1024)
--   server.sendto(b'Recu: ' + data, addr)
--   server.close()
--
-- Python raises on errors; here calls return nil, err, so assert() them.

local server = udp.udp4()                      -- AF_INET, SOCK_DGRAM
assert(server:bind("localhost", 12345))
local data, ip, port = assert(server:recvfrom(1024))
assert(server:sendto("Recu: " .. data, ip, port))
server:close()
