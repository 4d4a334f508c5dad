# ws_echo_websockets.py - Python `websockets` (python3-websockets) echo
# server for ws_echo.sh: python3 ws_echo_websockets.py PORT
# No compression (the load generator offers none anyway), no size limit.
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for m in ws:
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, compression=None,
                                max_size=None, ping_interval=None):
        await asyncio.Future()

asyncio.run(main(int(sys.argv[1])))
