#!/usr/bin/env bash
# Install what the tests need (the real memcached for the differential
# tests, libmemcached-tools for memaslap/memcapable; for -S, saslpasswd2
# from sasl2-bin, the PLAIN and CRAM-MD5 mechanisms of libsasl2-modules
# and the pylibmc client, so that tests/protocol/sasl.rs never skips in
# CI; pymemcache for the TLS tests), then run the tests of the whole workspace: the server, and the load
# generator rmc-load, whose end-to-end test starts the server binary that
# this same command builds. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v memcaslap >/dev/null 2>&1 || need+=(libmemcached-tools)
# pymemcache, a real client the TLS tests drive (Debian's python3).
/usr/bin/python3 -c 'import pymemcache' >/dev/null 2>&1 || need+=(python3-pymemcache)
command -v saslpasswd2 >/dev/null 2>&1 || [ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
dpkg -s libsasl2-modules >/dev/null 2>&1 || need+=(libsasl2-modules)
/usr/bin/python3 -c 'import pylibmc' >/dev/null 2>&1 || need+=(python3-pylibmc)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

cargo test --workspace "$@"
