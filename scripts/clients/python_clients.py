#!/usr/bin/python3
"""Real-client workloads in Python for scripts/client-matrix.py.

    python_clients.py ROW HOST:PORT[,HOST:PORT...]

ROW is one of pymemcache, pymemcache-hash, pylibmc-ascii, pylibmc-binary,
pylibmc-ketama. A one-server row runs the common workload (values, a
multi-get, CAS conflicts, incr totals, add/replace/append/delete/touch);
a three-server row stores ring:0..RING_KEYS-1 through the client's hashing
and reads them back in one multi-get, and the matrix then checks that every
key sits on exactly one server and that every server holds some. Exit
status 0 means every check held; a failed check raises, naming itself.
Debian's python3 (/usr/bin/python3) has the modules: apt-get install
python3-pymemcache python3-pylibmc.
"""
import sys

RING_KEYS = 300


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def common(c, prefix, cas_style):
    """The one-server workload. `c` wraps the client in a few calls:
    set/get/get_multi/gets/cas/incr/decr/add/replace/append/delete/touch,
    all returning what the client says (cas_style tells how a CAS
    conflict shows)."""
    keys = [f"{prefix}:k{i}" for i in range(100)]
    values = {k: (f"v{i}-" + "x" * (i * 37)).encode() for i, k in enumerate(keys)}
    for k, v in values.items():
        check(c.set(k, v), f"set {k}")
    got = c.get_multi(keys + [f"{prefix}:missing{i}" for i in range(3)])
    check(set(got) == set(keys), f"multi-get returned {len(got)} of {len(keys)} keys")
    check(all(got[k] == values[k] for k in keys), "multi-get values")

    binary = bytes(range(256)) * 3 + b"\r\nEND\r\n\0"
    check(c.set(f"{prefix}:bin", binary), "set binary")
    check(c.get(f"{prefix}:bin") == binary, "binary value round trip")
    big = b"".join(b"%07d" % i for i in range(70000))  # 490 KB
    check(c.set(f"{prefix}:big", big), "set 490 KB")
    check(c.get(f"{prefix}:big") == big, "490 KB value round trip")

    # CAS: a stale token is refused, a fresh one is taken, a missing key
    # is refused.
    ck = f"{prefix}:cas"
    check(c.set(ck, b"one"), "set cas key")
    _, token = c.gets(ck)
    check(c.set(ck, b"two"), "overwrite cas key")
    check(c.cas(ck, b"three", token) == cas_style["exists"], "stale CAS refused")
    check(c.get(ck) == b"two", "stale CAS left the value alone")
    _, token = c.gets(ck)
    check(c.cas(ck, b"four", token) == cas_style["stored"], "fresh CAS stored")
    check(c.get(ck) == b"four", "CAS value")

    # incr/decr totals.
    n = f"{prefix}:n"
    check(c.set(n, b"10"), "set counter")
    for _ in range(50):
        c.incr(n, 3)
    check(c.incr(n, 0) == 160, "incr total")
    check(c.decr(n, 200) == 0, "decr stops at 0")
    check(c.incr(f"{prefix}:nocounter", 1) in (None, False), "incr of a missing key")

    check(not c.add(keys[0], b"other"), "add of an existing key refused")
    check(c.add(f"{prefix}:new", b"new"), "add of a new key")
    check(not c.replace(f"{prefix}:none", b"x"), "replace of a missing key refused")
    check(c.replace(keys[1], b"replaced"), "replace")
    check(c.get(keys[1]) == b"replaced", "replaced value")
    check(c.append(f"{prefix}:new", b"+tail"), "append")
    check(c.get(f"{prefix}:new") == b"new+tail", "appended value")
    check(c.touch(keys[2]), "touch")
    check(c.delete(keys[3]), "delete")
    check(c.get(keys[3]) is None, "deleted key gone")
    check(not c.delete(keys[3]), "delete of a missing key")


class Pymemcache:
    """pymemcache.Client with replies waited for (its default is noreply)."""

    def __init__(self, server):
        from pymemcache.client.base import Client

        host, port = server.rsplit(":", 1)
        self.c = Client((host, int(port)), connect_timeout=5, timeout=5, default_noreply=False)

    def set(self, k, v):
        return self.c.set(k, v)

    def get(self, k):
        return self.c.get(k)

    def get_multi(self, keys):
        return self.c.get_many(keys)

    def gets(self, k):
        return self.c.gets(k)

    def cas(self, k, v, token):
        return self.c.cas(k, v, token)

    def incr(self, k, n):
        return self.c.incr(k, n)

    def decr(self, k, n):
        return self.c.decr(k, n)

    def add(self, k, v):
        return self.c.add(k, v)

    def replace(self, k, v):
        return self.c.replace(k, v)

    def append(self, k, v):
        return self.c.append(k, v)

    def delete(self, k):
        return self.c.delete(k)

    def touch(self, k):
        return self.c.touch(k, 100)


class Pylibmc(Pymemcache):
    """pylibmc (libmemcached), ASCII or binary."""

    def __init__(self, servers, binary, ketama=False):
        import pylibmc

        behaviors = {"cas": True, "connect_timeout": 5000, "receive_timeout": 5000000, "send_timeout": 5000000}
        if ketama:
            behaviors["ketama"] = True
        # What the binary protocol raises where ASCII answers False: a
        # refused add/replace/delete. Any other error still fails the row.
        self.refused = (pylibmc.NotFound, pylibmc.DataExists)
        self.c = pylibmc.Client(servers, binary=binary, behaviors=behaviors)

    def _refusable(self, f, *args):
        try:
            return f(*args)
        except self.refused:
            return False

    def add(self, k, v):
        return self._refusable(self.c.add, k, v)

    def replace(self, k, v):
        return self._refusable(self.c.replace, k, v)

    def delete(self, k):
        return self._refusable(self.c.delete, k)

    def get_multi(self, keys):
        return self.c.get_multi(keys)

    def cas(self, k, v, token):
        return self.c.cas(k, v, token)

    def incr(self, k, n):
        try:
            return self.c.incr(k, n)
        except self.refused:  # NotFound for a missing key
            return None

    def decr(self, k, n):
        return self.c.decr(k, n)

    def append(self, k, v):
        return self.c.append(k, v)

    def touch(self, k):
        return self.c.touch(k, 100)


def ring(c):
    keys = [f"ring:{i}" for i in range(RING_KEYS)]
    for i, k in enumerate(keys):
        check(c.set(k, f"value-{i}".encode()), f"set {k}")
    got = c.get_multi(keys)
    check(len(got) == len(keys), f"ring multi-get returned {len(got)} of {len(keys)} keys")
    check(all(got[k] == f"value-{i}".encode() for i, k in enumerate(keys)), "ring values")
    for i in range(10):
        check(c.set(f"ring:n{i}", b"0"), "set ring counter")
        for _ in range(i):
            c.incr(f"ring:n{i}", 2)
    check(all(int(c.get(f"ring:n{i}")) == 2 * i for i in range(10)), "ring incr totals")


def main():
    row, servers = sys.argv[1], sys.argv[2].split(",")
    if row == "pymemcache":
        common(Pymemcache(servers[0]), "pymc", {"exists": False, "stored": True})
    elif row == "pymemcache-hash":
        from pymemcache.client.hash import HashClient

        hc = HashClient(
            [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in servers)],
            connect_timeout=5,
            timeout=5,
            default_noreply=False,
        )
        wrapper = Pymemcache.__new__(Pymemcache)
        wrapper.c = hc
        ring(wrapper)
    elif row == "pylibmc-ascii":
        common(Pylibmc(servers, binary=False), "plascii", {"exists": False, "stored": True})
    elif row == "pylibmc-binary":
        common(Pylibmc(servers, binary=True), "plbin", {"exists": False, "stored": True})
    elif row == "pylibmc-ketama":
        ring(Pylibmc(servers, binary=False, ketama=True))
    else:
        sys.exit(f"unknown row {row}")
    print(f"{row}: all checks passed")


if __name__ == "__main__":
    main()
