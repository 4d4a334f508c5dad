import socket

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(('localhost', 12345))
data, addr = server.recvfrom(1024)
server.sendto(b'Recu: ' + data, addr)
server.close()
