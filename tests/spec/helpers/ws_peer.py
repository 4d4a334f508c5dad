#!/usr/bin/python3
# ws_peer.py -- a Python `websockets` (python3-websockets) peer for
# tests/spec/websocket_interop_spec.lua.
#
#   ws_peer.py server [--no-compress] [--tls CERT KEY]
#       prints its port, then serves by path:
#       /echo   echoes every message (kind kept)
#       /frag   echoes every message as 3 fragments
#       /close  "close CODE REASON" makes the server close with them
#       /ping   pings, then sends "pong CODE" (1 when the pong came)
#       /drop   drops the TCP connection (no close frame) after a message
#   ws_peer.py client URL [--no-compress] [--cafile CA]
#       runs the sequence check_client() below against a netsh echo
#       server and prints one "ok NAME" or "FAIL NAME: why" line per step.
import asyncio
import os
import ssl
import sys

import websockets


def compression(args):
    return None if "--no-compress" in args else "deflate"


async def handler(ws, path=None):
    path = path or ws.path
    try:
        if path == "/ping":
            waiter = await ws.ping(b"abc")
            try:
                await asyncio.wait_for(waiter, 5)
                await ws.send("pong 1")
            except asyncio.TimeoutError:
                await ws.send("pong 0")
        async for m in ws:
            if path == "/frag":
                n = len(m)
                await ws.send([m[: n // 3], m[n // 3: 2 * n // 3],
                               m[2 * n // 3:]])
            elif path == "/close" and isinstance(m, str) \
                    and m.startswith("close "):
                _, code, reason = m.split(" ", 2)
                await ws.close(int(code), reason)
            elif path == "/drop":
                ws.transport.abort()
                return
            else:
                await ws.send(m)
    except websockets.ConnectionClosed:
        pass


async def server(args):
    ctx = None
    if "--tls" in args:
        i = args.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args[i + 1], args[i + 2])
    async with websockets.serve(handler, "127.0.0.1", 0, ssl=ctx,
                                compression=compression(args),
                                max_size=2 ** 24) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


def report(name, ok, why=""):
    print(("ok " + name) if ok else ("FAIL %s: %s" % (name, why)),
          flush=True)


async def check_client(url, args):
    ctx = None
    if "--cafile" in args:
        ctx = ssl.create_default_context(
            cafile=args[args.index("--cafile") + 1])
    kw = dict(ssl=ctx, compression=compression(args), max_size=2 ** 24)
    async with websockets.connect(url, **kw) as ws:
        report("extensions", True, "")
        print("extensions " + str(ws.response_headers.get(
            "Sec-WebSocket-Extensions")), flush=True)
        await ws.send("hello")
        m = await ws.recv()
        report("text", m == "hello", repr(m))
        b = bytes(range(256))
        await ws.send(b)
        m = await ws.recv()
        report("binary", m == b, repr(m)[:40])
        big = os.urandom(1 << 20)
        await ws.send(big)
        m = await ws.recv()
        report("1MiB", m == big, str(len(m)))
        await ws.send(["frag", "men", "ted"])
        m = await ws.recv()
        report("fragmented", m == "fragmented", repr(m))
        pong = await ws.ping(b"hi")
        await asyncio.wait_for(pong, 5)
        report("ping", True)
        await ws.send("ping-me")       # netsh pings us: we answer
        m = await ws.recv()
        report("server-ping", m == "pinged", repr(m))
        await ws.close(4000, "done")
        report("client-close", ws.close_code == 4000, str(ws.close_code))
    async with websockets.connect(url, **kw) as ws:
        await ws.send("close-me")
        try:
            m = await asyncio.wait_for(ws.recv(), 5)
            report("server-close", False, "got " + repr(m))
        except websockets.ConnectionClosed as e:
            report("server-close", e.rcvd.code == 4001 and
                   e.rcvd.reason == "server bye", str(e))


def main():
    args = sys.argv[1:]
    if args[0] == "server":
        asyncio.run(server(args[1:]))
    else:
        asyncio.run(check_client(args[1], args[2:]))


main()
