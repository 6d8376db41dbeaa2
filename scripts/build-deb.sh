#!/usr/bin/env bash
# Build rmemcached's Debian package from this tree, in one command:
#
#   scripts/build-deb.sh [--binary PATH] [--out DIR]
#
# It builds the server (cargo build --release --locked) unless --binary
# names one already built, stages the package's tree from pkg/debian/
# (the unit, the wrapper, the conf, the swap command, the maintainer
# scripts), works out the library dependencies with dpkg-shlibdeps, and
# packs it with dpkg-deb. It prints the path of the .deb
# (target/deb/rmemcached_VERSION_ARCH.deb unless --out says otherwise).
#
# Why dpkg-deb and not cargo-deb: the package is a dozen files and three
# maintainer scripts that have to be written by hand anyway (the wrapper,
# the swap, the hardened unit); dpkg-deb and dpkg-shlibdeps come with
# dpkg-dev, while cargo-deb would add minutes of compiling to every fresh
# machine (CI builds the package on each run) and a tool to keep up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out=target/deb
while [ $# -gt 0 ]; do
    case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done

for tool in dpkg-deb dpkg-shlibdeps; do
    command -v "$tool" >/dev/null 2>&1 || {
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dpkg-dev >&2
        break
    }
done

if [ -z "$binary" ]; then
    cargo build --release --locked --bin rmemcached >&2
    binary=target/release/rmemcached
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
src=pkg/debian
mkdir -p "$out"
stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root

install -D -m 0755 "$binary" "$root/usr/bin/rmemcached"
# The release profile keeps line tables for profiling; the package does
# not need them.
strip --strip-debug "$root/usr/bin/rmemcached"
install -D -m 0755 "$src/systemd-rmemcached-wrapper" \
    "$root/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper"
install -D -m 0755 "$src/rmemcached-swap" "$root/usr/sbin/rmemcached-swap"
install -D -m 0644 "$src/rmemcached.service" "$root/lib/systemd/system/rmemcached.service"
install -D -m 0644 "$src/tmpfiles.conf" "$root/usr/lib/tmpfiles.d/rmemcached.conf"
install -D -m 0644 "$src/sysusers.conf" "$root/usr/lib/sysusers.d/rmemcached.conf"
install -D -m 0644 "$src/rmemcached.conf" "$root/etc/rmemcached.conf"
install -D -m 0644 "$src/copyright" "$root/usr/share/doc/rmemcached/copyright"
install -D -m 0644 "$src/README.Debian" "$root/usr/share/doc/rmemcached/README.Debian"

# The libraries the binary links, as package dependencies (dpkg-shlibdeps
# wants a debian/control to read; it is given a minimal one).
mkdir -p "$stage/debian"
printf 'Source: rmemcached\n\nPackage: rmemcached\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O root/usr/bin/rmemcached 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

mkdir -p "$root/DEBIAN"
install -m 0755 "$src/postinst" "$src/prerm" "$src/postrm" "$root/DEBIAN/"
echo /etc/rmemcached.conf >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: rmemcached
Version: $version
Architecture: $arch
Maintainer: rmemcached developers <rmemcached@localhost>
Installed-Size: $size
Depends: ${shlibs}, perl-base, adduser
Suggests: memcached
Section: web
Priority: optional
Description: memcached-compatible cache server in Rust
 rmemcached speaks memcached 1.6's ASCII, meta and binary protocols over
 TCP, UDP and unix sockets, takes memcached's flags, and guards its UDP
 port against reflection. This package runs it under systemd with the
 hardening of Debian's memcached.service, reads /etc/rmemcached.conf as
 Debian reads /etc/memcached.conf, and can take memcached's place
 (rmemcached-swap).
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

deb="$out/rmemcached_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
