#!/usr/bin/python3
"""Scale-out, shown and tested: rmemcached instances behind nutcracker
(twemproxy) with ketama, and behind a ketama client (pylibmc), no proxy.

    scripts/scale-out.py [--rmemcached PATH] [--instances N] [--ops N]

(the rmemcached binary defaults to the newer of target/debug and
target/release).

1. It starts N instances (default 4) on loopback ports it picks, and
   nutcracker in front of them (ketama over md5, hosts ejected after
   one failure), run by the user running this script.
2. Through the proxy, four pymemcache clients run a mixed load (sets, gets,
   incr, deletes, add) over keys that each client owns, so that the last
   acknowledged write of every key is known. Every key is then read back
   through the proxy and straight from the instances: no acknowledged
   write may be lost, each key must sit on exactly one instance, and every
   instance must hold some.
3. One instance is stopped, and it prints what a client sees for the
   keys of the stopped instance and for the others, twice: the proxy
   ejects the dead host, so its keys map to live instances (misses, where
   a new write sticks), and keys of the live instances still hit.
4. The same with pylibmc's ketama over the instances, without the proxy:
   load, check, stop one, show (by default the client gets an error for
   every key of the dead server); then with libmemcached's remove_failed,
   which ejects the dead server and rehashes as nutcracker does.
It exits 0 when no acknowledged write was lost and keys were on every
instance, in both setups. Needs Debian's /usr/bin/python3 with
python3-pymemcache and python3-pylibmc, and nutcracker (scripts/test.sh
installs them). Every process is bounded and stopped at the end.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
client_matrix = __import__("client-matrix")  # Server, free_port, request

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start_nutcracker(instances, port, work):
    conf = os.path.join(work, "nutcracker.yml")
    with open(conf, "w") as f:
        f.write(
            "rmc:\n"
            f"  listen: 127.0.0.1:{port}\n"
            "  hash: md5\n"
            "  distribution: ketama\n"
            "  timeout: 1000\n"
            "  auto_eject_hosts: true\n"
            "  server_failure_limit: 1\n"
            "  server_retry_timeout: 60000\n"
            "  servers:\n"
            + "".join(f"   - 127.0.0.1:{s.port}:1 rmc{i}\n" for i, s in enumerate(instances))
        )
    stats_port = client_matrix.free_port({port} | {s.port for s in instances})
    nutcracker = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    proc = subprocess.Popen(
        [nutcracker, "-c", conf, "-o", os.path.join(work, "nutcracker.log"),
         "-p", os.path.join(work, "nutcracker.pid"), "-s", str(stats_port), "-a", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if client_matrix.request(port, b"get nothing\r\n", until=b"END\r\n", timeout=1) == b"END\r\n":
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("nutcracker did not start: " + open(os.path.join(work, "nutcracker.log")).read()[-500:])
        time.sleep(0.05)


def mixed_load(make_client, workers, ops, prefix):
    """Each worker owns its keys and keeps their last acknowledged state:
    a value, or None for a key that is known to be absent."""
    models = [dict() for _ in range(workers)]
    errors = []

    def work(w):
        c = make_client()
        rng = random.Random(w)
        model = models[w]
        keys = [f"{prefix}:w{w}:k{i}" for i in range(ops // 4)]
        try:
            for n in range(ops):
                k = rng.choice(keys)
                r = rng.random()
                if r < 0.45:
                    v = f"{k}={n}".encode()
                    if c.set(k, v) is True:
                        model[k] = v
                elif r < 0.75:
                    got = c.get(k)
                    if k in model and got != model[k]:
                        errors.append(f"{k}: read {got!r}, acknowledged {model[k]!r}")
                elif r < 0.85:
                    if k in model and model[k] is not None and model[k].isdigit():
                        if c.incr(k, 7) is not None:
                            model[k] = b"%d" % (int(model[k]) + 7)
                    elif c.set(k, b"100") is True:
                        model[k] = b"100"
                elif r < 0.95:
                    c.delete(k)
                    model[k] = None
                else:
                    if c.add(k, b"added") is True:
                        model[k] = b"added"
        except Exception as e:  # a dead connection fails the run below
            errors.append(f"worker {w}: {e!r}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    merged = {}
    for m in models:
        merged.update(m)
    return merged, errors


def where(instances, keys):
    """How many of `keys` each instance holds, and whether any key sits on
    more than one."""
    per = []
    seen = {}
    keys = list(keys)
    for s in instances:
        n = 0
        for lo in range(0, len(keys), 100):
            chunk = keys[lo:lo + 100]
            reply = client_matrix.request(s.port, b"get " + " ".join(chunk).encode() + b"\r\n", until=b"END\r\n")
            for line in reply.split(b"\r\n"):
                if line.startswith(b"VALUE "):
                    k = line.split()[1].decode()
                    seen[k] = seen.get(k, 0) + 1
                    n += 1
        per.append(n)
    return per, sum(1 for c in seen.values() if c > 1)


def verify(name, make_client, instances, model, load_errors):
    check(not load_errors, f"{name}: the load saw no wrong read or error ({len(load_errors)}: {load_errors[:2]})")
    c = make_client()
    lost = [k for k, v in model.items() if c.get(k) != v]
    present = [k for k, v in model.items() if v is not None]
    check(not lost, f"{name}: {len(model)} keys, {len(present)} present: lost acknowledged writes: {len(lost)} {lost[:3]}")
    per, doubled = where(instances, present)
    check(sum(per) == len(present) and doubled == 0,
          f"{name}: each present key is on exactly one instance ({sum(per)} found, {doubled} on several)")
    check(min(per) > 0, f"{name}: keys on every instance: " + " / ".join(map(str, per)))


def after_stop(name, make_client, model, on_dead, rounds):
    """Read every present key `rounds` times and tally what the client sees,
    keys of the stopped instance apart from the others."""
    present = {k: v for k, v in model.items() if v is not None}
    c = make_client()
    for r in range(rounds):
        tally = {"dead": {"hit": 0, "miss": 0, "error": 0}, "live": {"hit": 0, "miss": 0, "error": 0}}
        for k, v in present.items():
            side = "dead" if k in on_dead else "live"
            try:
                got = c.get(k)
                tally[side]["hit" if got == v else "miss"] += 1
            except Exception:  # the client reconnects or fails over itself
                tally[side]["error"] += 1
        print(f"     {name}, pass {r + 1} after the stop: keys of the stopped instance "
              f"{tally['dead']}, of the live ones {tally['live']}", flush=True)
    return tally


def rewrite_all(name, make_client, model):
    """Once the client or the proxy has handled the failure, writes go to
    the live instances and stick."""
    c = make_client()
    acked = {}
    for k in model:
        v = f"{k}=after".encode()
        try:
            if c.set(k, v) is True:
                acked[k] = v
        except Exception:  # before the failure is noticed
            pass
    lost = 0
    for k, v in acked.items():
        try:
            lost += c.get(k) != v
        except Exception:
            lost += 1
    check(len(acked) >= len(model) - 2 and not lost,
          f"{name}: after the failure, {len(acked)} of {len(model)} rewrites acknowledged, {lost} lost")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rmemcached", default=None)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--ops", type=int, default=4000, help="operations per load worker")
    args = ap.parse_args()
    rmc = args.rmemcached or client_matrix.default_binary()
    import pylibmc
    from pymemcache.client.base import Client

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = tempfile.mkdtemp(prefix="rmc-scale-")
    procs = []
    try:
        # --- behind nutcracker --------------------------------------------
        taken = set()
        instances = [client_matrix.Server(rmc, client_matrix.free_port(taken)) for _ in range(args.instances)]
        procs += instances
        proxy_port = client_matrix.free_port(taken)
        proxy = start_nutcracker(instances, proxy_port, work)
        print(f"nutcracker on 127.0.0.1:{proxy_port} (ketama) over {args.instances} rmemcached instances", flush=True)

        def via_proxy():
            return Client(("127.0.0.1", proxy_port), connect_timeout=2, timeout=2, default_noreply=False)

        model, errors = mixed_load(via_proxy, 4, args.ops, "proxy")
        verify("proxy", via_proxy, instances, model, errors)
        victim = instances[-1]
        present = [k for k, v in model.items() if v is not None]
        on_dead = set(k for k in present if b"VALUE" in client_matrix.request(
            victim.port, b"get " + k.encode() + b"\r\n", until=b"END\r\n"))
        victim.stop()
        print(f"     stopped instance {args.instances - 1} (port {victim.port}), "
              f"which held {len(on_dead)} of {len(present)} keys", flush=True)
        tally = after_stop("proxy", via_proxy, model, on_dead, 2)
        check(tally["live"]["hit"] == len(present) - len(on_dead),
              "proxy: every key of the live instances still hits")
        check(tally["dead"]["hit"] == 0, "proxy: keys of the stopped instance are gone (misses, once ejected)")
        rewrite_all("proxy", via_proxy, model)
        proxy.terminate()
        proxy.wait(5)
        for s in instances:
            s.stop()

        # --- behind a ketama client (pylibmc), no proxy -------------------
        taken = set()
        instances = [client_matrix.Server(rmc, client_matrix.free_port(taken)) for _ in range(args.instances)]
        procs += instances
        servers = [s.addr() for s in instances]
        timeouts = {"connect_timeout": 1000, "receive_timeout": 1000000, "send_timeout": 1000000}
        print(f"pylibmc with ketama over {args.instances} rmemcached instances", flush=True)

        class Ketama:
            """pylibmc with the call conventions of mixed_load."""

            def __init__(self, **behaviors):
                self.c = pylibmc.Client(servers, behaviors={"ketama": True, **timeouts, **behaviors})

            def set(self, k, v):
                return self.c.set(k, v)

            def get(self, k):
                return self.c.get(k)

            def add(self, k, v):
                return self.c.add(k, v)

            def delete(self, k):
                return self.c.delete(k)

            def incr(self, k, n):
                try:
                    return self.c.incr(k, n)
                except pylibmc.NotFound:
                    return None

        model, errors = mixed_load(Ketama, 4, args.ops, "ketama")
        verify("ketama", Ketama, instances, model, errors)
        victim = instances[0]
        present = [k for k, v in model.items() if v is not None]
        on_dead = set(k for k in present if b"VALUE" in client_matrix.request(
            victim.port, b"get " + k.encode() + b"\r\n", until=b"END\r\n"))
        victim.stop()
        print(f"     stopped instance 0 (port {victim.port}), which held {len(on_dead)} of {len(present)} keys", flush=True)
        tally = after_stop("ketama, default behaviours", Ketama, model, on_dead, 1)
        check(tally["live"]["hit"] == len(present) - len(on_dead),
              "ketama: every key of the live instances still hits")
        check(tally["dead"]["hit"] == 0, "ketama: keys of the stopped instance are gone")

        # libmemcached's failover: a server that fails once is taken out of
        # the ring, which is rehashed over the others (ketama moves only
        # its keys). One client, so that it remembers the failure.
        ejecting_client = Ketama(remove_failed=1, failure_limit=1, retry_timeout=60)
        after_stop("ketama, remove_failed", lambda: ejecting_client, model, on_dead, 2)
        rewrite_all("ketama, remove_failed", lambda: ejecting_client, model)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
        if "proxy" in locals() and proxy.poll() is None:
            proxy.kill()
            proxy.wait()

    if failures:
        print(f"scale-out: {len(failures)} check(s) failed")
        sys.exit(1)
    print("scale-out: zero lost writes, keys on every instance, behind nutcracker and behind a ketama client")


if __name__ == "__main__":
    main()
