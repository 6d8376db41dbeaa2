#!/usr/bin/env python3
"""Helper for scripts/memory-efficiency.sh: fill one server, then report.

usage: fill.py PORT VALUE_SIZE COUNT [SAMPLE]

Sends COUNT `set k%011d 0 0 VALUE_SIZE noreply` commands to 127.0.0.1:PORT
in batches of 1000; after each batch a `version` round trip keeps the
server from falling behind and bounds what is buffered. Then it reads
`stats` and multi-gets the last SAMPLE keys written (default 1000).

Prints one line: curr_items evictions bytes limit_maxbytes hits sample
errors fill_seconds
"""
import socket
import sys
import time

BATCH = 1000


def connect(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Conn:
    def __init__(self, port):
        self.s, self.buf = connect(port), b""

    def send(self, data):
        self.s.sendall(data)

    def read_until(self, end):
        """Everything up to and including the next `end`."""
        while (i := self.buf.find(end)) < 0:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        reply, self.buf = self.buf[: i + len(end)], self.buf[i + len(end):]
        return reply


def main():
    port, size, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sample = min(int(sys.argv[4]) if len(sys.argv) > 4 else 1000, count)
    c = Conn(port)
    tail = b" 0 0 %d noreply\r\n%s\r\n" % (size, b"v" * size)

    errors = 0
    start = time.monotonic()
    for lo in range(0, count, BATCH):
        hi = min(lo + BATCH, count)
        c.send(b"".join(b"set k%011d%s" % (i, tail) for i in range(lo, hi))
               + b"version\r\n")
        while not c.read_until(b"\r\n").startswith(b"VERSION "):
            errors += 1  # noreply sets only ever answer with an error
    secs = time.monotonic() - start

    c.send(b"stats\r\n")
    stats = dict(l.split(" ", 2)[1:] for l in
                 c.read_until(b"END\r\n").decode().split("\r\n")
                 if l.startswith("STAT "))

    hits = 0
    for lo in range(count - sample, count, 100):
        keys = b" ".join(b"k%011d" % i for i in range(lo, min(lo + 100, count)))
        c.send(b"get " + keys + b"\r\n")
        hits += c.read_until(b"END\r\n").count(b"VALUE ")  # values are all v's

    print(stats["curr_items"], stats["evictions"], stats["bytes"],
          stats["limit_maxbytes"], hits, sample, errors, "%.1f" % secs)


if __name__ == "__main__":
    main()
