#!/usr/bin/python3
"""A real SASL client against a memcached-compatible server started with -S.

Usage: scripts/sasl-pylibmc.py HOST:PORT USER PASSWORD

pylibmc (Debian: python3-pylibmc) speaks the binary protocol through
libmemcached, which authenticates with Cyrus SASL's client side: it lists
the server's mechanisms and picks the strongest it has (CRAM-MD5 when
offered, a two-step exchange), or PLAIN. The script checks that:
- with the right password, set, get, incr, append and delete work;
- with a wrong password, the first command fails with an authentication
  error and nothing is stored.
It prints one line per check and exits 0 when all pass, 1 otherwise.
tests/protocol/sasl.rs runs it against rmemcached and the real memcached.
"""
import sys

import pylibmc


def main():
    addr, user, password = sys.argv[1:4]
    failed = 0

    def check(name, ok):
        nonlocal failed
        print(("ok " if ok else "FAIL ") + name)
        if not ok:
            failed += 1

    good = pylibmc.Client([addr], binary=True, username=user, password=password)
    check("set", good.set("sasl-key", "value") is True)
    check("get", good.get("sasl-key") == "value")
    good.set("sasl-n", "41")
    check("incr", good.incr("sasl-n") == 42)
    check("append", good.append("sasl-key", "-more") is True)
    check("get after append", good.get("sasl-key") == "value-more")
    check("delete", good.delete("sasl-key") is True)
    check("get after delete", good.get("sasl-key") is None)

    bad = pylibmc.Client([addr], binary=True, username=user, password=password + "x")
    try:
        bad.set("sasl-bad", "x")
        check("wrong password refused", False)
    except pylibmc.Error as e:
        check("wrong password refused", "AUTHENTICATION FAILURE" in str(e))
    check("nothing stored by the refused client", good.get("sasl-bad") is None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
