#!/usr/bin/python3
"""The real-client matrix: the clients people use, against rmemcached and
the real memcached alike.

    scripts/client-matrix.py [--rmemcached PATH] [--memcached PATH] [ROW...]

(the rmemcached binary defaults to the newer of target/debug and
target/release).

For each server it starts three instances on loopback (TCP and UDP on ports
picked here, -m 64 -t 2, as nobody when run as root), then runs every row:
a small real workload through one client whose results the row checks
(values, multi-get completeness, CAS conflicts, incr totals; for a client
that hashes over the three servers, that every key is on exactly one server
and every server holds some). Between rows the servers are flushed.

It prints one line per row and server, and exits 0 only when every row
passed on both servers. A row that fails on both says that the client
cannot talk to either server (rather than passing); one that fails on one
server only names that server. A client that is not installed fails its
row too: scripts/test.sh installs them all with apt-get.

Rows: pymemcache, pymemcache-hash, pylibmc-ascii, pylibmc-binary,
pylibmc-ketama (scripts/clients/python_clients.py); php-memcached-ascii,
php-memcached-binary (php_memcached.php); dalli (dalli.rb);
cache-memcached-fast (memcached_fast.pl); nginx (memcached_pass, nginx run
as a non-root user with its own conf); memcached-tool (Debian's, from the
memcached package); libmemcached-tools (memccp, memccat, memcexist,
memctouch, memcrm, memcstat, memcflush); memccp-udp (memccp --udp over the
three servers, read back over TCP).

Every process is bounded by a timeout and stopped at the end. Needs Debian's
/usr/bin/python3 (the one with python3-pymemcache and python3-pylibmc).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
ROOT = os.path.dirname(HERE)
ROW_TIMEOUT = 60
RING_KEYS = 300  # as in clients/python_clients.py
MEMCACHED_TOOL = "/usr/share/memcached/scripts/memcached-tool"


class RowFailed(Exception):
    pass


class Missing(RowFailed):
    """The client is not installed."""


def need(path_or_cmd, package):
    found = os.access(path_or_cmd, os.X_OK) if "/" in path_or_cmd else shutil.which(path_or_cmd)
    if not found:
        raise Missing(f"{path_or_cmd} not installed (apt-get install {package})")


def run(cmd, *, timeout=ROW_TIMEOUT, input=None, check=True):
    """Run a client; its failure (with its output) fails the row."""
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RowFailed(f"{cmd[0]} timed out after {timeout}s")
    if check and p.returncode != 0:
        out = (p.stdout + p.stderr).decode(errors="replace").strip().splitlines()
        raise RowFailed(f"{os.path.basename(cmd[0])} exited {p.returncode}: " + " | ".join(out[-4:]))
    return p


# --- servers -----------------------------------------------------------------


def free_port(taken):
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(100):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError("no free port")


def request(port, data, until=b"\r\n", timeout=5):
    """Send raw ASCII bytes; read until the reply ends with `until`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while not buf.endswith(until):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


class Server:
    def __init__(self, binary, port):
        self.port = port
        cmd = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", str(port), "-m", "64", "-t", "2"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                if request(port, b"version\r\n", timeout=1).startswith(b"VERSION "):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"{binary} did not start on port {port}: {err}")
            time.sleep(0.05)

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- rows ----------------------------------------------------------------------


def python_row(name):
    def row(servers):
        run(["/usr/bin/python3", os.path.join(CLIENTS, "python_clients.py"), name, ",".join(s.addr() for s in servers)])
        if name in ("pymemcache-hash", "pylibmc-ketama"):
            return ring_spread(servers)
        return ""

    return row


def ring_spread(servers):
    """Every ring key on exactly one server with its value; every server
    holding some."""
    counts = []
    placed = {}
    for s in servers:
        n = 0
        for lo in range(0, RING_KEYS, 100):
            keys = [f"ring:{i}" for i in range(lo, min(lo + 100, RING_KEYS))]
            reply = request(s.port, b"get " + " ".join(keys).encode() + b"\r\n", until=b"END\r\n")
            for line in reply.split(b"\r\n"):
                if line.startswith(b"VALUE "):
                    key = line.split()[1].decode()
                    placed[key] = placed.get(key, 0) + 1
                    n += 1
        counts.append(n)
    if len(placed) != RING_KEYS or any(c != 1 for c in placed.values()):
        raise RowFailed(f"ring keys found {len(placed)} of {RING_KEYS}, some on several servers: {counts}")
    if min(counts) == 0:
        raise RowFailed(f"a server holds no ring key: {counts}")
    return "keys per server " + "/".join(map(str, counts))


def php_row(mode):
    def row(servers):
        need("php", "php-cli")
        p = run(["php", "-r", "exit(class_exists('Memcached') ? 0 : 1);"], check=False)
        if p.returncode != 0:
            raise Missing("PHP's Memcached class missing (apt-get install php-memcached)")
        run(["php", os.path.join(CLIENTS, "php_memcached.php"), mode, servers[0].addr()])
        return ""

    return row


def dalli_row(servers):
    need("ruby", "ruby ruby-dalli")
    if run(["ruby", "-e", "require 'dalli'"], check=False).returncode != 0:
        raise Missing("Ruby's dalli missing (apt-get install ruby-dalli)")
    run(["ruby", os.path.join(CLIENTS, "dalli.rb"), servers[0].addr()])
    return ""


def perl_fast_row(servers):
    if run(["perl", "-MCache::Memcached::Fast", "-e", "1"], check=False).returncode != 0:
        raise Missing("Cache::Memcached::Fast missing (apt-get install libcache-memcached-fast-perl)")
    run(["perl", os.path.join(CLIENTS, "memcached_fast.pl"), servers[0].addr()])
    return ""


NGINX_CONF = """
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            set $memcached_key "nginx:$uri";
            memcached_pass 127.0.0.1:{mc_port};
            default_type application/octet-stream;
        }}
    }}
}}
"""


def nginx_row(servers):
    """nginx's memcached_pass serves what was stored, and 404 for a miss."""
    need("/usr/sbin/nginx", "nginx")
    port = servers[0].port
    values = {
        "/hello": b"hello from the cache\n",
        "/bin": bytes(range(256)) * 4 + b"\r\nEND\r\n",
        "/big": b"y" * 300_000,
    }
    for path, v in values.items():
        reply = request(port, b"set nginx:%s 0 0 %d\r\n%s\r\n" % (path.encode(), len(v), v))
        if reply != b"STORED\r\n":
            raise RowFailed(f"set for nginx: {reply!r}")
    prefix = tempfile.mkdtemp(prefix="rmc-nginx-")
    http_port = free_port(set())
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(prefix=prefix, http_port=http_port, mc_port=port))
    cmd = ["/usr/sbin/nginx", "-p", prefix, "-e", os.path.join(prefix, "error.log"), "-c", os.path.join(prefix, "nginx.conf")]
    if os.geteuid() == 0:
        # Not as root: nginx runs as nobody, in a prefix nobody owns.
        os.chmod(prefix, 0o755)
        os.chown(prefix, 65534, 65534)
        for name in os.listdir(prefix):
            os.chown(os.path.join(prefix, name), 65534, 65534)
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RowFailed("nginx did not start: " + proc.stderr.read().decode(errors="replace")[-300:] if proc.poll() is not None else "nginx did not start")
                time.sleep(0.05)
        with open(f"/proc/{proc.pid}/status") as f:
            uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
        if uid == "0":
            raise RowFailed("nginx runs as root")
        for path, v in values.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{path}", timeout=5) as r:
                body = r.read()
            if r.status != 200 or body != v:
                raise RowFailed(f"GET {path}: status {r.status}, {len(body)} bytes (want {len(v)})")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/missing", timeout=5)
            raise RowFailed("GET /missing did not answer 404")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise RowFailed(f"GET /missing: {e.code}, want 404")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(prefix, ignore_errors=True)
    return "3 values and a 404 through memcached_pass"


def memcached_tool_row(servers):
    need(MEMCACHED_TOOL, "memcached")
    s = servers[0]
    want = {f"tool:{i}": b"v%d-" % i + b"z" * i for i in range(20)}
    for k, v in want.items():
        if request(s.port, b"set %s 5 0 %d\r\n%s\r\n" % (k.encode(), len(v), v)) != b"STORED\r\n":
            raise RowFailed(f"set {k}")
    tool = ["perl", MEMCACHED_TOOL, s.addr()]
    dump = run(tool + ["dump"]).stdout
    for k, v in want.items():
        entry = b"add %s 5 0 %d\r\n%s\r\n" % (k.encode(), len(v), v)
        if entry not in dump:
            raise RowFailed(f"dump lacks {k}")
    keys = run(tool + ["keys"]).stdout.decode()
    # metadump's keys are URL-encoded (tool%3A1).
    listed = {urllib.parse.unquote(w[4:]) for w in keys.split() if w.startswith("key=")}
    if not set(want) <= listed:
        raise RowFailed(f"keys lists {len(set(want) & listed)} of {len(want)}")
    stats = run(tool + ["stats"]).stdout.decode().split()
    if stats[stats.index("pid") + 1] != str(s.proc.pid):
        raise RowFailed("stats: wrong pid")
    settings = run(tool + ["settings"]).stdout.decode().split()
    if settings[settings.index("maxbytes") + 1] != str(64 << 20):
        raise RowFailed("settings: maxbytes is not -m 64")
    display = run(tool + ["display"]).stdout.decode().splitlines()
    if len(display) < 2 or "Item_Size" not in display[0]:
        raise RowFailed("display lists no slab class")
    return "dump, keys, stats, settings, display"


def libmemcached_tools_row(servers):
    for tool in ("memccp", "memccat", "memcexist", "memctouch", "memcrm", "memcstat", "memcflush"):
        need(tool, "libmemcached-tools")
    s = servers[0]
    opt = f"--servers={s.addr()}"
    work = tempfile.mkdtemp(prefix="rmc-memc-")
    try:
        files = {"small.txt": b"hello\n", "blob.bin": os.urandom(100_000), "large.bin": os.urandom(600_000)}
        for name, data in files.items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        run(["memccp", opt] + [os.path.join(work, n) for n in files])
        for name, data in files.items():
            # memccat ends each value with a newline of its own.
            got = run(["memccat", opt, name]).stdout
            if got != data + b"\n":
                raise RowFailed(f"memccat {name}: {len(got)} bytes, want {len(data) + 1}")
        run(["memcexist", opt, "small.txt"])
        run(["memctouch", opt, "--expire=100", "small.txt"])
        run(["memcrm", opt, "small.txt"])
        if run(["memcexist", opt, "small.txt"], check=False).returncode == 0:
            raise RowFailed("memcexist finds a removed key")
        stat = run(["memcstat", opt]).stdout.decode()
        if f"Server: 127.0.0.1 ({s.port})" not in stat or f"pid: {s.proc.pid}" not in stat:
            raise RowFailed("memcstat: no server header or wrong pid")
        run(["memcflush", opt])
        if run(["memcexist", opt, "blob.bin"], check=False).returncode == 0:
            raise RowFailed("memcflush left a key")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "cp, cat, exist, touch, rm, stat, flush"


def memccp_udp_row(servers):
    need("memccp", "libmemcached-tools")
    opt_all = "--servers=" + ",".join(s.addr() for s in servers)
    work = tempfile.mkdtemp(prefix="rmc-memc-")
    try:
        files = {f"udp{i}.txt": b"sent over UDP %d\n" % i * (i + 1) for i in range(12)}
        for name, data in files.items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        # Over UDP the sets are noreply: read them back over TCP.
        run(["memccp", "--udp", opt_all] + [os.path.join(work, n) for n in files])
        deadline = time.monotonic() + 5
        missing = dict(files)
        while missing and time.monotonic() < deadline:
            for name, data in list(missing.items()):
                got = run(["memccat", opt_all, name], check=False).stdout
                if got == data + b"\n":
                    del missing[name]
            time.sleep(0.1)
        if missing:
            raise RowFailed(f"{len(missing)} of {len(files)} files sent over UDP not readable: {sorted(missing)[:3]}")
        holding = sum(
            1 for s in servers
            if b"VALUE" in request(s.port, b"get " + b" ".join(n.encode() for n in files) + b"\r\n", until=b"END\r\n")
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return f"{len(files)} files over UDP, on {holding} of {len(servers)} servers"


ROWS = [
    ("pymemcache", python_row("pymemcache")),
    ("pymemcache-hash", python_row("pymemcache-hash")),
    ("pylibmc-ascii", python_row("pylibmc-ascii")),
    ("pylibmc-binary", python_row("pylibmc-binary")),
    ("pylibmc-ketama", python_row("pylibmc-ketama")),
    ("php-memcached-ascii", php_row("ascii")),
    ("php-memcached-binary", php_row("binary")),
    ("dalli", dalli_row),
    ("cache-memcached-fast", perl_fast_row),
    ("nginx", nginx_row),
    ("memcached-tool", memcached_tool_row),
    ("libmemcached-tools", libmemcached_tools_row),
    ("memccp-udp", memccp_udp_row),
]


def default_binary():
    """The newer of target/debug/rmemcached and target/release/rmemcached."""
    built = [os.path.join(ROOT, "target", p, "rmemcached") for p in ("debug", "release")]
    built = [b for b in built if os.access(b, os.X_OK)]
    if not built:
        sys.exit("no rmemcached binary: cargo build first, or --rmemcached PATH")
    return max(built, key=os.path.getmtime)


def python_modules_row_check(name):
    mod = "pymemcache" if name.startswith("pymemcache") else "pylibmc"
    if subprocess.run(["/usr/bin/python3", "-c", f"import {mod}"], capture_output=True).returncode != 0:
        raise Missing(f"/usr/bin/python3 lacks {mod} (apt-get install python3-{mod})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rmemcached", default=None)
    ap.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached")
    ap.add_argument("rows", nargs="*")
    args = ap.parse_args()
    rmc = args.rmemcached or default_binary()
    rows = [(n, f) for n, f in ROWS if not args.rows or n in args.rows]
    if args.rows and len(rows) != len(args.rows):
        sys.exit(f"unknown row in {args.rows}; rows: {[n for n, _ in ROWS]}")

    # SIGTERM ends the run through the finally below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = {}
    started = time.monotonic()
    for kind, binary in (("rmemcached", rmc), ("memcached", args.memcached)):
        taken = set()
        servers = []
        try:
            for _ in range(3):
                servers.append(Server(binary, free_port(taken)))
            for name, row in rows:
                for s in servers:
                    request(s.port, b"flush_all\r\n")
                t0 = time.monotonic()
                try:
                    if name.startswith("py"):
                        python_modules_row_check(name)
                    note = row(servers)
                    results[(name, kind)] = ("pass", note)
                except Missing as e:
                    results[(name, kind)] = ("missing", str(e))
                except RowFailed as e:
                    results[(name, kind)] = ("FAIL", str(e))
                status, note = results[(name, kind)]
                print(f"{status:7} {name:21} {kind:10} {time.monotonic() - t0:5.1f}s  {note}", flush=True)
        finally:
            for s in servers:
                s.stop()

    bad = 0
    for name, _ in rows:
        r, m = results[(name, "rmemcached")][0], results[(name, "memcached")][0]
        if r == m == "pass":
            continue
        bad += 1
        if "missing" in (r, m):
            why = "the client is not installed (scripts/test.sh installs it)"
        elif r == m:
            why = "fails on both servers: the client cannot talk to either"
        elif r != "pass":
            why = "fails on rmemcached only"
        else:
            why = "fails on memcached only"
        print(f"client-matrix: {name}: {why}")
    total = time.monotonic() - started
    if bad:
        print(f"client-matrix: {bad} of {len(rows)} rows did not pass on both servers ({total:.0f}s)")
        sys.exit(1)
    print(f"client-matrix: all {len(rows)} rows passed on rmemcached and memcached ({total:.0f}s)")


if __name__ == "__main__":
    main()
