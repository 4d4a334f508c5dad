#!/usr/bin/env python3
"""blackhole.py ADDRESS -- a listening TCP socket on ADDRESS (::1 or
127.0.0.1) whose accept queue is kept full, so that further connects to it
hang in SYN_SENT: a loopback stand-in for an unreachable address, for the
Happy Eyeballs specs. Prints its port, lives until its parent exits (or
120 s). Run it with io.popen("exec python3 ...")."""
import os, socket, sys, time

addr = sys.argv[1]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam)
s.bind((addr, 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(4):
    c = socket.socket(fam)
    c.setblocking(False)
    try:
        c.connect((addr, port))
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.2)
print(port, os.getpid(), flush=True)
parent, end = os.getppid(), time.time() + 120
while time.time() < end and os.getppid() == parent:
    time.sleep(0.5)
