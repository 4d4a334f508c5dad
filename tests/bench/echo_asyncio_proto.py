#!/usr/bin/env python3
"""echo_asyncio_proto.py - Python asyncio TCP echo server with Protocol
callbacks (no streams, no task per connection): data_received writes
straight back, as asyncio's fastest pure-Python server does.

Benchmark peer for netsh.  Usage: echo_asyncio_proto.py [--uvloop] PORT
Listens on 127.0.0.1:PORT.  --uvloop runs the same protocol on uvloop
(Debian: python3-uvloop); it exits 3 when uvloop is not installed.
"""
import asyncio
import socket
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    use_uvloop = "--uvloop" in args
    args = [a for a in args if a != "--uvloop"]
    if len(args) != 1:
        sys.stderr.write("usage: echo_asyncio_proto.py [--uvloop] PORT\n")
        sys.exit(2)
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            sys.stderr.write("uvloop not installed (python3-uvloop)\n")
            sys.exit(3)
        uvloop.install()
    try:
        asyncio.run(main(int(args[0])))
    except KeyboardInterrupt:
        pass
