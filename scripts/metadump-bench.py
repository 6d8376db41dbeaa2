#!/usr/bin/env python3
"""Time `lru_crawler metadump all` on rmemcached and memcached 1.6.18.

Usage: scripts/metadump-bench.py [KEYS] [RMEMCACHED] [MEMCACHED]

Each server is started alone (`-m 1024 -t 4`), filled with KEYS keys
(default 1,000,000) of 10-byte values, then dumped twice: by a client
that reads as fast as it can, and by one that reads 64 KiB every 10 ms
(about 6 MB/s). For each dump it prints the time to `END`, the lines, the
server's RSS growth during the dump (VmRSS sampled every 20 ms, from just
before the dump) and the slowest `get` another client saw meanwhile.
"""
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RMC = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target/release/rmemcached")
MC = sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/memcached"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary):
    port_file = tempfile.mktemp(prefix="metadump-bench.")
    args = [binary, "-l", "127.0.0.1", "-p", "-1", "-U", "0", "-m", "1024", "-t", "4"]
    if os.getuid() == 0:
        args += ["-u", "nobody"]
    env = dict(os.environ, MEMCACHED_PORT_FILENAME=port_file)
    proc = subprocess.Popen(args, env=env)
    for _ in range(500):
        try:
            with open(port_file) as f:
                line = next(l for l in f if l.startswith("TCP"))
                os.unlink(port_file)
                return proc, int(line.split()[-1])
        except (OSError, StopIteration):
            time.sleep(0.02)
    proc.kill()
    sys.exit(f"{binary} did not start")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, end):
    buf = b""
    while not buf.endswith(end):
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(buf[-200:])
        buf += chunk
    return buf


def fill(port):
    s = connect(port)
    batch = []
    for i in range(KEYS):
        batch.append(b"set key:%08d 0 0 10 noreply\r\n0123456789\r\n" % i)
        if len(batch) == 5000:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch) + b"version\r\n")
    read_until(s, b"\r\n")
    s.sendall(b"stats\r\n")
    stats = read_until(s, b"END\r\n").decode()
    items = next(int(l.split()[2]) for l in stats.splitlines() if l.startswith("STAT curr_items "))
    assert items == KEYS, f"{items} items stored of {KEYS}"
    s.close()


def bystander(port, stop, worst):
    """A client that gets one key every 10 ms (a process of its own, so
    that the dump's reader does not delay it)."""
    s = connect(port)
    while not stop.is_set():
        t = time.perf_counter()
        s.sendall(b"get key:00000007\r\n")
        read_until(s, b"END\r\n")
        worst.value = max(worst.value, time.perf_counter() - t)
        time.sleep(0.01)
    s.close()


def dump(port, pid, slow):
    stop = threading.Event()
    peak = [rss_kb(pid)]
    before = peak[0]
    worst_get = multiprocessing.Value("d", 0.0)
    stop_get = multiprocessing.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.02)

    threads = [threading.Thread(target=sample)]
    getter = multiprocessing.Process(target=bystander, args=(port, stop_get, worst_get))
    getter.start()
    time.sleep(0.2)
    for t in threads:
        t.start()
    s = connect(port)
    t0 = time.perf_counter()
    s.sendall(b"lru_crawler metadump all\r\n")
    lines, tail = 0, b""
    while True:
        chunk = s.recv(64 * 1024 if slow else 1 << 20)
        if not chunk:
            raise EOFError("closed mid-dump")
        lines += chunk.count(b"\n")
        tail = (tail + chunk)[-5:]
        if tail == b"END\r\n":
            break
        if slow:
            time.sleep(0.01)
    took = time.perf_counter() - t0
    stop.set()
    stop_get.set()
    for t in threads:
        t.join()
    getter.join()
    s.close()
    return took, lines - 1, peak[0] - before, worst_get.value


def main():
    print(f"{KEYS} keys, -m 1024 -t 4")
    print("| server | reader | seconds | lines | RSS growth MB | slowest get ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, binary in (("rmemcached", RMC), ("memcached", MC)):
        proc, port = start(binary)
        try:
            fill(port)
            time.sleep(0.5)
            for slow in (False, True):
                took, lines, grew, worst = dump(port, proc.pid, slow)
                reader = "slow (64 KiB / 10 ms)" if slow else "fast"
                print(f"| {name} | {reader} | {took:.2f} | {lines} | "
                      f"{grew / 1024:.1f} | {worst * 1000:.1f} |", flush=True)
        finally:
            proc.kill()
            proc.wait()


main()
