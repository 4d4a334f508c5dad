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
