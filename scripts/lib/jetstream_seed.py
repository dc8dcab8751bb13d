#!/usr/bin/env python3
"""Seeds a cluster's JetStream store for the query benchmark (scripts/bench, scenario
store-jetstream-query).

Usage: jetstream_seed.py NATS_PORT DESKTOPS NOW_MS

Into the DESKBRIDGE_MINUTES stream a relay created (run it once against the server first): for
DESKTOPS desktops `bench-N`, 30 days of one-minute aggregates ending at NOW_MS, one message per
desktop per minute on `deskbridge.store.v1.minutes.bench-N`, as docs/architecture.md describes
them (`{"minute","n","low","high","total","memory_n","memory_total"}`; no origin, as a schema 1
record, which readers take as it is). Minutes are interleaved across desktops, as a relay writes
them. A record carries its minute, so publishing them now back-dates them: readers go by the
minute in the payload, JetStream's own time only bounds where a read starts.

It speaks NATS's text protocol over a plain socket (no client library): a JetStream publish is a
core `PUB` to the stream's subject with a reply subject, on which the server answers with the
acknowledgement (`{"stream":…,"seq":…}` or `{"error":…}`). At most WINDOW are unacknowledged at
once; every acknowledgement is read and checked, so the count printed is what JetStream stored.
"""
import json
import random
import socket
import sys

MINUTE = 60_000
WINDOW = 2_000


class Nats:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.out = []
        line = self.line()
        if not line.startswith(b"INFO "):
            sys.exit(f"not a NATS server: {line!r}")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\n')
        self.sock.sendall(b"SUB _seed.acks.* 1\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                sys.exit("the NATS server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                sys.exit("the NATS server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def publish(self, subject, reply, payload):
        self.out.append(b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, len(payload), payload))

    def send(self):
        self.sock.sendall(b"".join(self.out))
        self.out = []

    def ack(self):
        """The next acknowledgement's JSON (answering the server's pings meanwhile)."""
        while True:
            line = self.line()
            if line.startswith(b"MSG "):
                size = int(line.split()[-1])
                payload = self.exact(size + 2)[:size]
                return json.loads(payload)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                sys.exit(f"NATS refused: {line.decode()}")
            # +OK, PONG, INFO: nothing to do.


port, desktops, now = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
nats = Nats(port)
rnd = random.Random(1)
end = now // MINUTE * MINUTE
start = end - 30 * 1440 * MINUTE
subjects = [b"deskbridge.store.v1.minutes.bench-%d" % d for d in range(desktops)]
stored = unacked = seq = 0


def take_acks(down_to):
    global stored, unacked
    while unacked > down_to:
        ack = nats.ack()
        if "error" in ack:
            sys.exit(f"JetStream refused a record: {ack['error']}")
        if ack.get("stream") != "DESKBRIDGE_MINUTES":
            sys.exit(f"stored in the wrong stream: {ack}")
        stored += 1
        unacked -= 1


for minute in range(start, end, MINUTE):
    for subject in subjects:
        low = rnd.uniform(0, 50)
        record = {
            "minute": minute,
            "n": 60,
            "low": low,
            "high": low + 30,
            "total": (low + 10) * 60,
            "memory_n": 60,
            "memory_total": 8e9 * 60,
        }
        seq += 1
        nats.publish(subject, b"_seed.acks.%d" % seq, json.dumps(record).encode())
        unacked += 1
    if unacked >= WINDOW:
        nats.send()
        take_acks(WINDOW // 2)
nats.send()
take_acks(0)
print(f"stored {stored} minute records for {desktops} desktops")
