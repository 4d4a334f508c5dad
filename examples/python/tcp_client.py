import socket

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', 12345))
client.sendall(b'Bonjour serveur')
response = client.recv(1024)
print(response.decode())
client.close()
