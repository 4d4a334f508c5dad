import socket

client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.sendto(b'Bonjour serveur', ('localhost', 12345))
response, addr = client.recvfrom(1024)
print(response.decode())
client.close()
