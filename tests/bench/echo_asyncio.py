#!/usr/bin/env python3
"""echo_asyncio.py - Python asyncio TCP echo server (streams API).

Benchmark baseline for netsh.  Usage: echo_asyncio.py PORT
Listens on 127.0.0.1:PORT and echoes whatever each connection sends.
"""
import asyncio
import socket
import sys


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port,
                                        backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: echo_asyncio.py PORT\n")
        sys.exit(2)
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
