#!/usr/bin/env python3
"""http_oddities.py -- a small HTTP/1.1 server for the odd cases of
tests/spec/http_spec.lua (stdlib only).

    python3 http_oddities.py PORTFILE [LIFETIME_SECONDS]

Binds 127.0.0.1:0 and writes "PORT PID" to PORTFILE (atomically) once it
listens. Exits by itself after LIFETIME_SECONDS (default 600) so a crashed
test run leaves nothing behind. Keep-alive is on (HTTP/1.1); each
connection gets a serial number, echoed by /conn and /echo.

Routes (GET unless noted; HEAD works on all of them):
  /echo             any method: JSON of method, path, query, headers, body
  /json /badjson    a JSON document / invalid JSON
  /redirect/N       302 chain of N hops ending at "done"; /loop loops
  /tofile           302 to file:///etc/passwd
  /slow?delay=S     answers after S seconds
  /slowbody?n=N&delay=S   chunked, one line every S seconds
  /chunked?n=N&size=K     chunked, N chunks of K bytes
  /lines?n=N        chunked, N lines split across chunk boundaries
  /gzip             gzip-encoded text; /bomb?mb=N gzip of N MB of zeros
  /big?size=N       N bytes (byte i is i % 251), Content-Length
  /status/N         status N (204/304 without a body)
  /nonascii         headers with UTF-8 and Latin-1 bytes
  /repeat           repeated Set-Cookie and X-Multi headers
  /setcookie?k=v    Set-Cookie: k=v
  /conn             the connection's serial number
  /malformed        a garbage status line
  /closemid         promises 100000 bytes, sends 1000, closes
  /resetmid         promises 100000 bytes, sends 1000, resets (RST)
  /resetchunk       chunked, one chunk, then a reset
  /bomb1g/ENC       1 GiB of zeros as ENC: gzip, deflate, br or
                    chunkgzip (gzip in chunked framing); made once, cached
  /gzipbig?mb=N     gzip of N MB of hex text (a normal ratio, about 2.5)
  /cl/CASE          Content-Length oddities: dup (5 and 10), same (5 and
                    5), list ("5, 10"), junk ("5x"), neg ("-1"),
                    huge (a 20-digit number), te (with chunked)
  /ctl/CASE         a header value with a control byte: cr (lone CR),
                    bell (0x07), esc (0x1b), del (0x7f), tab (HTAB: fine)
  absolute-form request lines (proxy use): 200 JSON {"proxied": url}
"""
import ctypes
import gzip
import http.server
import itertools
import json
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import zlib

CONN_IDS = itertools.count(1)
BLOCK = bytes(i % 251 for i in range(251 * 256))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oddities/1"

    def setup(self):
        super().setup()
        self.conn_id = next(CONN_IDS)

    def log_message(self, *args):
        pass

    # -- helpers --------------------------------------------------------
    def raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def respond(self, status, body=b"", headers=(), reason=None,
                ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        reason = reason or self.responses.get(status, ("",))[0]
        lines = [b"HTTP/1.1 %d %s" % (status, reason.encode())]
        hdrs = list(headers)
        if ctype and status not in (204, 304):
            hdrs.append(("Content-Type", ctype))
        if status not in (204, 304):
            hdrs.append(("Content-Length", str(len(body))))
        hdrs.append(("X-Conn", str(self.conn_id)))
        for k, v in hdrs:
            if isinstance(v, str):
                v = v.encode()
            lines.append(k.encode() + b": " + v)
        out = b"\r\n".join(lines) + b"\r\n\r\n"
        if self.command != "HEAD" and status not in (204, 304):
            out += body
        self.raw(out)

    def chunked_start(self, ctype="text/plain"):
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() +
                 b"\r\nTransfer-Encoding: chunked\r\n\r\n")

    def chunk(self, data):
        self.raw(b"%x\r\n%s\r\n" % (len(data), data))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # -- dispatch -------------------------------------------------------
    def handle_any(self):
        if self.path.startswith("http://") or self.path.startswith("https://"):
            self.body()
            return self.respond(200, json.dumps({"proxied": self.path}),
                                ctype="application/json")
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        parts = u.path.strip("/").split("/")
        name = "route_" + (parts[0] or "index")
        fn = getattr(self, name, None)
        if fn is None:
            self.body()
            return self.respond(404, "not found\n")
        return fn(u, q, parts)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = \
        do_OPTIONS = handle_any

    # -- routes ---------------------------------------------------------
    def route_index(self, u, q, parts):
        self.respond(200, "oddities\n")

    def route_echo(self, u, q, parts):
        data = self.body()
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        doc = {"method": self.command, "path": u.path, "query": u.query,
               "args": q, "headers": headers,
               "body": data.decode("utf-8", "replace"), "conn": self.conn_id}
        self.respond(200, json.dumps(doc), ctype="application/json")

    def route_json(self, u, q, parts):
        self.respond(200, json.dumps({"name": "netsh", "list": [1, 2, 3],
                                      "nested": {"ok": True}}),
                     ctype="application/json")

    def route_badjson(self, u, q, parts):
        self.respond(200, '{"name": "netsh", oops}', ctype="application/json")

    def route_redirect(self, u, q, parts):
        n = int(parts[1]) if len(parts) > 1 else 1
        if n <= 0:
            return self.respond(200, "done\n")
        self.respond(302, "", [("Location", "/redirect/%d" % (n - 1))])

    def route_loop(self, u, q, parts):
        self.respond(302, "", [("Location", "/loop")])

    def route_tofile(self, u, q, parts):
        self.respond(302, "", [("Location", "file:///etc/passwd")])

    def route_slow(self, u, q, parts):
        time.sleep(float(q.get("delay", "2")))
        self.respond(200, "slow\n")

    def route_slowbody(self, u, q, parts):
        n, delay = int(q.get("n", "5")), float(q.get("delay", "0.2"))
        self.chunked_start()
        for i in range(n):
            self.chunk(b"tick %d\n" % i)
            time.sleep(delay)
        self.raw(b"0\r\n\r\n")

    def route_chunked(self, u, q, parts):
        n, size = int(q.get("n", "10")), int(q.get("size", "1000"))
        self.chunked_start()
        if self.command != "HEAD":
            for i in range(n):
                self.chunk(bytes([97 + i % 26]) * size)
            self.raw(b"0\r\n\r\n")

    def route_lines(self, u, q, parts):
        n = int(q.get("n", "100"))
        text = b"".join(b"line %d\r\n" % i for i in range(n))
        self.chunked_start()
        for i in range(0, len(text), 7):    # split lines across chunks
            self.chunk(text[i:i + 7])
        self.raw(b"0\r\n\r\n")

    def route_gzip(self, u, q, parts):
        text = ("gzip works\n" * 1000).encode()
        self.respond(200, gzip.compress(text),
                     [("Content-Encoding", "gzip")])

    def route_bomb(self, u, q, parts):
        mb = int(q.get("mb", "64"))
        comp = gzip.compress(bytes(mb * 1024 * 1024), 9)
        self.respond(200, comp, [("Content-Encoding", "gzip")],
                     ctype="application/octet-stream")

    def route_big(self, u, q, parts):
        size = int(q.get("size", str(10 * 1024 * 1024)))
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                 b"\r\nContent-Length: %d\r\n\r\n" % size)
        if self.command == "HEAD":
            return
        left = size
        while left > 0:
            piece = BLOCK[:min(left, len(BLOCK))]
            self.wfile.write(piece)
            left -= len(piece)
        self.wfile.flush()

    def route_status(self, u, q, parts):
        code = int(parts[1]) if len(parts) > 1 else 200
        body = "" if code in (204, 304) else "status %d\n" % code
        self.respond(code, body)

    def route_nonascii(self, u, q, parts):
        self.respond(200, "ok\n", [("X-Utf8", "caf\u00e9 \u2603".encode()),
                                   ("X-Latin1", b"caf\xe9")])

    def route_repeat(self, u, q, parts):
        self.respond(200, "ok\n", [("Set-Cookie", "a=1; Path=/"),
                                   ("Set-Cookie", "b=2; Path=/"),
                                   ("X-Multi", "one"), ("X-Multi", "two")])

    def route_setcookie(self, u, q, parts):
        cookies = [("Set-Cookie", "%s=%s; Path=/" % kv) for kv in q.items()]
        self.respond(200, "ok\n", cookies)

    def route_conn(self, u, q, parts):
        self.respond(200, "%d\n" % self.conn_id)

    def route_closeafter(self, u, q, parts):
        # answers with keep-alive, then closes the idle connection
        self.respond(200, "%d\n" % self.conn_id)
        time.sleep(float(q.get("delay", "0.1")))
        self.close_connection = True

    def route_malformed(self, u, q, parts):
        self.raw(b"HTTP/1.1 abc Broken\r\nContent-Length: 2\r\n\r\nok")
        self.close_connection = True

    def route_closemid(self, u, q, parts):
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" +
                 b"x" * 1000)
        self.close_connection = True


    def reset(self):
        # SO_LINGER 0: close() sends a RST instead of a FIN
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def route_resetmid(self, u, q, parts):
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" +
                 b"x" * 1000)
        time.sleep(0.05)
        self.reset()

    def route_resetchunk(self, u, q, parts):
        self.chunked_start()
        self.chunk(b"y" * 1000)
        time.sleep(0.05)
        self.reset()

    def route_bomb1g(self, u, q, parts):
        enc = parts[1] if len(parts) > 1 else "gzip"
        data = bomb(enc)
        if enc == "chunkgzip":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(data), 65536):
                self.chunk(data[i:i + 65536])
            self.raw(b"0\r\n\r\n")
            return
        self.respond(200, data, [("Content-Encoding", enc)],
                     ctype="application/octet-stream")

    def route_gzipbig(self, u, q, parts):
        mb = int(q.get("mb", "4"))
        rnd = random.Random(mb)
        text = rnd.randbytes(mb * 1024 * 1024 // 2).hex().encode()
        self.respond(200, gzip.compress(text, 6),
                     [("Content-Encoding", "gzip")])

    def route_cl(self, u, q, parts):
        case = parts[1] if len(parts) > 1 else "dup"
        head = {
            "dup": b"Content-Length: 5\r\nContent-Length: 10\r\n",
            "same": b"Content-Length: 5\r\nContent-Length: 5\r\n",
            "list": b"Content-Length: 5, 10\r\n",
            "samelist": b"Content-Length: 5, 5\r\n",
            "junk": b"Content-Length: 5x\r\n",
            "neg": b"Content-Length: -1\r\n",
            "huge": b"Content-Length: 18446744073709551621\r\n",
            "te": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        }[case]
        body = b"5\r\nhello\r\n0\r\n\r\n" if case == "te" else b"hello"
        self.raw(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body)
        self.close_connection = True

    def route_ctl(self, u, q, parts):
        case = parts[1] if len(parts) > 1 else "cr"
        byte = {"cr": b"\r", "bell": b"\x07", "esc": b"\x1b",
                "del": b"\x7f", "tab": b"\t", "vt": b"\x0b"}[case]
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                 b"X-Odd: a" + byte + b"b\r\n\r\nok\n")
        self.close_connection = True


BOMBS = {}
BOMB_LOCK = threading.Lock()
GIB = 1024 * 1024 * 1024


def brotli_zeros(total):
    """br of total zero bytes, through libbrotlienc (curl's own)."""
    lib = ctypes.CDLL("libbrotlienc.so.1")
    lib.BrotliEncoderCreateInstance.restype = ctypes.c_void_p
    lib.BrotliEncoderCreateInstance.argtypes = [ctypes.c_void_p] * 3
    lib.BrotliEncoderCompressStream.argtypes = [
        ctypes.c_void_p, ctypes.c_int,
        ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p]
    lib.BrotliEncoderIsFinished.argtypes = [ctypes.c_void_p]
    lib.BrotliEncoderDestroyInstance.argtypes = [ctypes.c_void_p]
    lib.BrotliEncoderSetParameter.argtypes = [ctypes.c_void_p,
                                              ctypes.c_int, ctypes.c_uint32]
    st = lib.BrotliEncoderCreateInstance(None, None, None)
    lib.BrotliEncoderSetParameter(st, 1, 1)         # quality 1: fast
    block = ctypes.create_string_buffer(1024 * 1024)
    outbuf = ctypes.create_string_buffer(1 << 20)
    out = []
    left = total
    while True:
        n = min(left, len(block))
        op = 2 if n == left else 0          # FINISH on the last block
        avail_in = ctypes.c_size_t(n)
        next_in = ctypes.c_void_p(ctypes.addressof(block))
        while True:
            avail_out = ctypes.c_size_t(len(outbuf))
            next_out = ctypes.c_void_p(ctypes.addressof(outbuf))
            lib.BrotliEncoderCompressStream(
                st, op, ctypes.byref(avail_in), ctypes.byref(next_in),
                ctypes.byref(avail_out), ctypes.byref(next_out), None)
            out.append(outbuf.raw[:len(outbuf) - avail_out.value])
            if avail_in.value == 0 and (op != 2 or
                                        lib.BrotliEncoderIsFinished(st)):
                break
        left -= n
        if left == 0:
            break
    lib.BrotliEncoderDestroyInstance(st)
    return b"".join(out)


def deflate_zeros(total):
    """Raw deflate of total zero bytes (a whole number of MiB), and their
    CRC-32 and Adler-32. After a full flush the compressor starts afresh,
    so every middle MiB compresses to the same bytes: made once, repeated."""
    zero = bytes(1024 * 1024)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(zero) + c.flush(zlib.Z_FINISH)
    n = total // len(zero)
    crc, adler = 0, 1
    for _ in range(n):
        crc = zlib.crc32(zero, crc)
        adler = zlib.adler32(zero, adler)
    return seg * (n - 1) + last, crc, adler


def bomb(enc):
    with BOMB_LOCK:
        if enc not in BOMBS:
            if enc == "br":
                BOMBS[enc] = brotli_zeros(GIB)
            else:
                raw, crc, adler = deflate_zeros(GIB)
                if enc == "deflate":        # zlib format, as HTTP means it
                    data = b"\x78\xda" + raw + struct.pack(">I", adler)
                else:
                    data = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" +
                            raw + struct.pack("<II", crc, GIB & 0xffffffff))
                BOMBS[enc] = data
        return BOMBS[enc]


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass    # clients that hang up early are part of the tests


def main():
    portfile = sys.argv[1]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 600
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (srv.server_address[1], os.getpid()))
    os.rename(tmp, portfile)
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
