#!/usr/bin/env python3
"""dns_responder.py -- a tiny authoritative DNS server on 127.0.0.1 (UDP)
for the specs: fixed records under test.netsh, no internet needed.
Prints "port pid" on stdout, then serves until its parent exits or 120 s
(or $DNS_RESPONDER_SECONDS) pass (run it with io.popen("exec python3 ...")).
Names: test.netsh (A AAAA MX TXT NS), v4.test.netsh (A), v6.test.netsh
(AAAA), alias.test.netsh (CNAME -> test.netsh), _echo._tcp.test.netsh
(SRV), slow.test.netsh (never answered); anything else is NXDOMAIN.
Misbehaving names (for dns_faults_spec.lua): late.test.netsh (answered
after 1.5 s), garbage.test.netsh (the right header and question, then
junk records), noise.test.netsh (random bytes, not a message),
wrongid.test.netsh (an answer with another ID), trunc.test.netsh (the TC
bit and nothing else: a resolver retries over TCP, where nobody listens),
short.test.netsh (claims 3 answers, holds none)."""
import os, random, select, socket, struct, time

TTL = {"A": 300, "AAAA": 301, "MX": 302, "TXT": 303, "NS": 304, "SRV": 305,
       "CNAME": 306}
TYPES = {1: "A", 2: "NS", 5: "CNAME", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV"}
CODES = {v: k for k, v in TYPES.items()}


def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


ZONE = {
    "test.netsh": {
        "A": [socket.inet_pton(socket.AF_INET, "127.0.0.1")],
        "AAAA": [socket.inet_pton(socket.AF_INET6, "::1")],
        "MX": [struct.pack("!H", 10) + name("mail.test.netsh"),
               struct.pack("!H", 20) + name("mx2.test.netsh")],
        "TXT": [b"\x05hello\x05world", b"\x0fv=spf1 -all abc"],
        "NS": [name("ns1.test.netsh")],
    },
    "v4.test.netsh": {"A": [socket.inet_pton(socket.AF_INET, "127.0.0.1")]},
    "late.test.netsh": {"A": [socket.inet_pton(socket.AF_INET,
                                               "127.0.0.1")]},
    "v6.test.netsh": {"AAAA": [socket.inet_pton(socket.AF_INET6, "::1")]},
    "alias.test.netsh": {"CNAME": [name("test.netsh")]},
    "_echo._tcp.test.netsh": {
        "SRV": [struct.pack("!HHH", 1, 2, 7) + name("echo.test.netsh")]},
}


def parse_question(msg):
    i, labels = 12, []
    while msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode())
        i += 1 + msg[i]
    qtype, qclass = struct.unpack("!HH", msg[i + 1:i + 5])
    return ".".join(labels).lower(), qtype, msg[12:i + 5]


def rr(owner, tname, rdata):
    return name(owner) + struct.pack("!HHIH", CODES[tname], 1, TTL[tname],
                                     len(rdata)) + rdata


def answer(msg):
    qid, = struct.unpack("!H", msg[:2])
    qname, qtype, question = parse_question(msg)
    if qname == "slow.test.netsh":
        return None
    if qname in FAULTS:
        return FAULTS[qname](qid, question)
    tname = TYPES.get(qtype)
    node = ZONE.get(qname)
    answers = []
    rcode = 0
    if node is None:
        rcode = 3                                   # NXDOMAIN
    else:
        if "CNAME" in node and tname != "CNAME":
            target = node["CNAME"][0]
            answers.append(rr(qname, "CNAME", target))
            qname = "test.netsh"
            node = ZONE[qname]
        for rdata in node.get(tname, []):
            answers.append(rr(qname, tname, rdata))
    flags = 0x8400 | 0x0100 | 0x0080 | rcode        # QR AA RD RA
    head = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0)
    return head + question + b"".join(answers)


def header(qid, flags, an):
    return struct.pack("!HHHHHH", qid, flags, 1, an, 0, 0)


FAULTS = {
    "garbage.test.netsh": lambda qid, q: header(qid, 0x8580, 2) + q +
    b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x7f" +
    bytes(random.getrandbits(8) for _ in range(40)),
    "noise.test.netsh": lambda qid, q: bytes(random.getrandbits(8)
                                             for _ in range(7)),
    "wrongid.test.netsh": lambda qid, q: header(qid ^ 0x5555, 0x8580, 0) + q,
    "trunc.test.netsh": lambda qid, q: header(qid, 0x8780, 0) + q,
    "short.test.netsh": lambda qid, q: header(qid, 0x8580, 3) + q,
}
LATE = 1.5


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], os.getpid(), flush=True)
    end = time.time() + float(os.environ.get("DNS_RESPONDER_SECONDS", 120))
    parent = os.getppid()
    later = []                                      # (when, msg, peer)
    while time.time() < end and os.getppid() == parent:
        r, _, _ = select.select([s], [], [], 0.05 if later else 1)
        now = time.time()
        for item in [x for x in later if x[0] <= now]:
            later.remove(item)
            s.sendto(item[1], item[2])
        if s in r:
            msg, peer = s.recvfrom(4096)
            try:
                out = answer(msg)
                if parse_question(msg)[0] == "late.test.netsh":
                    later.append((now + LATE, out, peer))
                    continue
            except Exception:                       # malformed query
                continue
            if out:
                s.sendto(out, peer)


main()
