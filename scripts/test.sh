#!/usr/bin/env bash
# Install what the tests need, then run them:
# - cargo test over the whole workspace: the server, and the load generator
#   rmc-load, whose end-to-end test starts the server binary that this same
#   command builds. They need the real memcached (differential tests),
#   libmemcached-tools (memaslap, memcapable), for -S saslpasswd2 from
#   sasl2-bin, the PLAIN and CRAM-MD5 mechanisms of libsasl2-modules and
#   the pylibmc client (so that tests/protocol/sasl.rs never skips in CI),
#   and pymemcache for the TLS tests.
# - with no arguments, then also the scripts that test what cargo cannot:
#   scripts/test-deb.sh (the Debian package; dpkg-dev, systemd's sysusers
#   and tmpfiles), scripts/client-matrix.py (the real clients against
#   rmemcached and memcached: PHP's Memcached, Ruby's Dalli,
#   Cache::Memcached::Fast, nginx, memcached-tool, the libmemcached tools,
#   pymemcache, pylibmc) and scripts/scale-out.py (rmemcached behind
#   nutcracker and behind a ketama client). They use the debug binary that
#   cargo test built.
# Arguments go to `cargo test` (and skip the scripts).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v memcaslap >/dev/null 2>&1 || need+=(libmemcached-tools)
# Debian's python3 has the Python clients.
/usr/bin/python3 -c 'import pymemcache' >/dev/null 2>&1 || need+=(python3-pymemcache)
command -v saslpasswd2 >/dev/null 2>&1 || [ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
dpkg -s libsasl2-modules >/dev/null 2>&1 || need+=(libsasl2-modules)
/usr/bin/python3 -c 'import pylibmc' >/dev/null 2>&1 || need+=(python3-pylibmc)
if [ $# -eq 0 ]; then
    command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
    command -v systemd-sysusers >/dev/null 2>&1 || need+=(systemd)
    { command -v php >/dev/null 2>&1 && php -r 'exit(class_exists("Memcached") ? 0 : 1);'; } ||
        need+=(php-cli php-memcached)
    { command -v ruby >/dev/null 2>&1 && ruby -e 'require "dalli"' 2>/dev/null; } || need+=(ruby ruby-dalli)
    perl -MCache::Memcached::Fast -e 1 2>/dev/null || need+=(libcache-memcached-fast-perl)
    [ -x /usr/sbin/nginx ] || need+=(nginx)
    command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || need+=(nutcracker)
fi
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Installing nginx or nutcracker must not start their system services
    # (the tests run their own, as a user, on loopback ports): a
    # policy-rc.d that refuses every start, for the length of the install,
    # unless the machine has one already.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        trap '$sudo rm -f "$policy"' EXIT
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
    if [ -n "$policy" ]; then
        $sudo rm -f "$policy"
        trap - EXIT
    fi
fi

cargo test --workspace "$@"
if [ $# -eq 0 ]; then
    scripts/test-deb.sh --binary target/debug/rmemcached
    /usr/bin/python3 scripts/client-matrix.py --rmemcached target/debug/rmemcached
    /usr/bin/python3 scripts/scale-out.py --rmemcached target/debug/rmemcached
fi
