#!/usr/bin/env python3
"""retry_peer.py -- a small HTTP server for tests/cli/retry_scripts.sh:
flaky answers and a server-sent event stream (stdlib only).

    python3 retry_peer.py PORTFILE [LIFETIME_SECONDS]

Binds 127.0.0.1:0 and writes "PORT PID" to PORTFILE (atomically) once it
listens; exits by itself after LIFETIME_SECONDS (default 120). Every
connection is closed after one response. Counters are per path.

Routes:
  /flaky/K/N     the first N requests drop the connection (no answer),
                 then 200 "ok"
  /busy/K/N      the first N requests get 503 with Retry-After: 0
  /sse/K         1st request: retry: 100, event 1, half of event 2, drop;
                 2nd (Last-Event-ID: 1 expected): event 2 (type "tick",
                 two data lines), CR line ends; then 204
  /count/K       how many requests /.../K got so far
"""
import os
import socket
import sys
import threading
import time

counts = {}
lock = threading.Lock()


def bump(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


def reply(c, status, body=b"", extra=""):
    head = ("HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n%s"
            "\r\n" % (status, len(body), extra))
    c.sendall(head.encode() + body)


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Connection: close\r\n\r\n")


def serve(c):
    c.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            return
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    parts = path.strip("/").split("/")
    if parts[0] == "count":
        reply(c, "200 OK", str(counts.get(parts[1], 0)).encode())
        return
    n = bump(parts[1]) if len(parts) > 1 else 0
    if parts[0] == "flaky":
        if n <= int(parts[2]):
            return                      # closed without an answer
        reply(c, "200 OK", b"ok")
    elif parts[0] == "busy":
        if n <= int(parts[2]):
            reply(c, "503 Service Unavailable", b"busy", "Retry-After: 0\r\n")
        else:
            reply(c, "200 OK", b"ok")
    elif parts[0] == "sse":
        if n == 1:
            for piece in [SSE_HEAD, b"retry: 100\n\n", b"id: 1\n",
                          b"data: one\n\n", b"id: 2\ndata: tw"]:
                c.sendall(piece)
                time.sleep(0.02)
        elif n == 2:
            last = headers.get("last-event-id", "none").encode()
            c.sendall(SSE_HEAD + b"id: 2\revent: tick\rdata: two\r"
                      b"data: after " + last + b"\r\r")
        else:
            reply(c, "204 No Content")
    else:
        reply(c, "404 Not Found")


def main():
    portfile = sys.argv[1]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 120
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (s.getsockname()[1], os.getpid()))
    os.rename(tmp, portfile)
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    while True:
        c, _ = s.accept()

        def run(c=c):
            try:
                serve(c)
            except OSError:
                pass
            finally:
                c.close()
        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
