#!/usr/bin/env python3
"""udp_echo_asyncio.py - Python asyncio UDP echo server (DatagramProtocol).

Benchmark baseline for netsh.  Usage: udp_echo_asyncio.py PORT
Binds 127.0.0.1:PORT and sends every datagram back to its sender.
"""
import asyncio
import sys


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)

    def error_received(self, exc):
        pass


async def main(port):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", port))
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: udp_echo_asyncio.py PORT\n")
        sys.exit(2)
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
