#!/usr/bin/env bash
# Test rmemcached's Debian package without systemd running as PID 1:
#
#   scripts/test-deb.sh [--binary PATH]
#
# It builds the package with scripts/build-deb.sh (from PATH when given,
# else a release build), then checks
#   1. its contents (dpkg-deb -c) and control fields;
#   2. that the unit's hardening is Debian memcached.service's, directive
#      for directive;
#   3. that it installs into a scratch root (dpkg --root, maintainer
#      scripts run chrootless with DPKG_ROOT): the rmemcached user and
#      /run/rmemcached are made there, the conf is a conffile;
#   4. that the wrapper reads conf files into the same flags as Debian's
#      systemd-memcached-wrapper (both run with an argv printer in place of
#      the server), and the packaged conf into the flags it should;
#   5. that the server starts from the packaged conf through the wrapper,
#      as the -u user, writes its pid to the -P file, serves, and stops
#      on SIGTERM;
#   6. that rmemcached-swap in/out puts rmemcached in memcached's place and
#      back with dpkg-divert (swapped in, Debian's own wrapper and conf
#      start rmemcached, checked as in 5), and that removing the package
#      swaps back.
# Everything happens under a temporary directory and on loopback; the host's
# dpkg database, users and services are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

build_args=()
[ $# -gt 0 ] && build_args=("$@")
deb=$(scripts/build-deb.sh "${build_args[@]}")
work=$(mktemp -d)
# The server, once it is the -u user, must reach its pid file's directory.
chmod 755 "$work"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# 1. Contents.
expected="./etc/rmemcached.conf
./lib/systemd/system/rmemcached.service
./usr/bin/rmemcached
./usr/lib/sysusers.d/rmemcached.conf
./usr/lib/tmpfiles.d/rmemcached.conf
./usr/sbin/rmemcached-swap
./usr/share/doc/rmemcached/README.Debian
./usr/share/doc/rmemcached/copyright
./usr/share/rmemcached/scripts/systemd-rmemcached-wrapper"
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sort)
check "contents: exactly the package's nine files" [ "$files" = "$expected" ]
check "contents: everything owned by root" \
    [ -z "$(dpkg-deb -c "$deb" | awk '$2 != "root/root"')" ]
check "contents: binary, wrapper and swap are executable" \
    [ "$(dpkg-deb -c "$deb" | awk '$1 ~ /^-rwx/ {print $6}' | sort | tr '\n' ' ')" = \
      "./usr/bin/rmemcached ./usr/sbin/rmemcached-swap ./usr/share/rmemcached/scripts/systemd-rmemcached-wrapper " ]
check "control: /etc/rmemcached.conf is a conffile" \
    [ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/rmemcached.conf ]
depends=$(dpkg-deb -f "$deb" Depends)
check "control: Depends names libc6, perl-base, adduser ($depends)" \
    bash -c '[[ "$1" == *libc6* && "$1" == *perl-base* && "$1" == *adduser* ]]' _ "$depends"

# 2. The unit's hardening: every [Service] directive of Debian's unit,
# except what names the program and its pid file, with the same value.
service_directives() {
    sed -n '/^\[Service\]/,/^\[/p' "$1" | grep -E '^[A-Za-z]+=' |
        grep -vE '^(ExecStart|PIDFile)=' | sort
}
dpkg-deb -x "$deb" "$work/x"
debian_unit=/lib/systemd/system/memcached.service
if [ -f "$debian_unit" ]; then
    check "unit: same hardening as $debian_unit" \
        diff <(service_directives "$debian_unit") \
             <(service_directives "$work/x/lib/systemd/system/rmemcached.service")
else
    fail "unit: $debian_unit missing (install memcached; scripts/test.sh does)"
fi
if command -v systemd-analyze >/dev/null 2>&1 && [ -f "$debian_unit" ]; then
    # systemd's own score of the unit's sandboxing, read offline.
    exposure() { systemd-analyze security --offline=true "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p'; }
    ours_exposure=$(exposure "$work/x/lib/systemd/system/rmemcached.service")
    check "unit: systemd-analyze security rates it as Debian's ($ours_exposure)" \
        [ "${ours_exposure:-none}" = "$(exposure "$debian_unit")" ]
fi
check "unit: ExecStart runs the wrapper on /etc/rmemcached.conf" \
    grep -qx 'ExecStart=/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper /etc/rmemcached.conf' \
    "$work/x/lib/systemd/system/rmemcached.service"
check "unit: PIDFile is the conf's -P" \
    grep -qx 'PIDFile=/run/rmemcached/rmemcached.pid' "$work/x/lib/systemd/system/rmemcached.service"

# 3. Install into a scratch root.
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg_root() {
    dpkg --root="$root" --force-script-chrootless --force-not-root --force-depends "$@"
}
if dpkg_root -i "$deb" >"$work/dpkg.log" 2>&1; then
    ok "dpkg --root -i"
else
    fail "dpkg --root -i"; cat "$work/dpkg.log"
fi
check "scratch root: installed (ii)" \
    [ "$(dpkg-query --root="$root" -W -f='${db:Status-Abbrev}' rmemcached)" = "ii " ]
check "scratch root: the postinst made the rmemcached user" \
    grep -q '^rmemcached:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$root/etc/passwd"
uid=$(awk -F: '$1 == "rmemcached" {print $3}' "$root/etc/passwd")
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    check "scratch root: /run/rmemcached belongs to rmemcached" \
        [ "$(stat -c %u "$root/run/rmemcached" 2>/dev/null)" = "$uid" ]
else
    echo "note systemd-tmpfiles missing: /run/rmemcached is made at boot"
fi
check "scratch root: dpkg lists the conffile" \
    bash -c 'dpkg-query --root="$1" -W -f="\${Conffiles}" rmemcached | grep -q "/etc/rmemcached.conf"' _ "$root"

# 4. Conf files into flags, against Debian's wrapper. Both wrappers run a
# stand-in server that prints its arguments one per line.
argv_tree=$work/argv
mkdir -p "$argv_tree/usr/bin" "$argv_tree/usr/share/rmemcached/scripts"
printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\n" "$a"; done\n' >"$argv_tree/usr/bin/rmemcached"
chmod +x "$argv_tree/usr/bin/rmemcached"
cp "$root/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper" "$argv_tree/usr/share/rmemcached/scripts/"
ours() { "$argv_tree/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper" "$1"; }
check "flags: the packaged conf" \
    [ "$(ours "$root/etc/rmemcached.conf" | tr '\n' ' ')" = \
      "-m 64 -p 11211 -u rmemcached -l 127.0.0.1 -P /run/rmemcached/rmemcached.pid " ]
debian_wrapper=/usr/share/memcached/scripts/systemd-memcached-wrapper
if [ -f "$debian_wrapper" ]; then
    # Debian's wrapper, pointed at the printer and allowed to run as any
    # user (it refuses anyone but root).
    sed -e "s|\"/usr/bin/memcached\"|\"$argv_tree/usr/bin/rmemcached\"|" \
        -e 's/^if(\$> != 0 and \$< != 0)/if(0)/' "$debian_wrapper" >"$work/debian-wrapper"
    theirs() { perl "$work/debian-wrapper" "$1"; }
    cases=$work/confs
    mkdir -p "$cases"
    cp "$root/etc/rmemcached.conf" "$cases/rmemcached.conf"
    [ -f /usr/share/memcached/memcached.conf.default ] &&
        cp /usr/share/memcached/memcached.conf.default "$cases/debian-default.conf"
    printf '%s\n' '-m 64 # memory' '  -p 11311   ' '' '# -vv' '-d' '-h' \
        'logfile /var/log/x.log' 'bareword' '-l 127.0.0.1,::1' >"$cases/comments.conf"
    printf '%s\n' '-o "udp_allow=10.0.0.0/8;192.168.0.0/16"' '-a 0600#comment # and # more' \
        '-t\t4' 'prefix\#kept # gone' '-c 10#a##b' >"$cases/quoting.conf"
    printf '%s\n' '# nothing but comments' '-d' >"$cases/empty.conf"
    printf '%s\n' '-m 128' >"$cases/no-user.conf"
    : >"$cases/zero-bytes.conf"
    check "flags: a quoted -o keeps its \";\" in one argument" \
        bash -c '[ "$("$1" "$2" | sed -n 2p)" = "udp_allow=10.0.0.0/8;192.168.0.0/16" ]' _ \
        "$argv_tree/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper" "$cases/quoting.conf"
    for conf in "$cases"/*.conf "$work/does-not-exist.conf"; do
        check "flags: $(basename "$conf") reads as Debian's wrapper reads it" \
            diff <(theirs "$conf" 2>&1) <(ours "$conf" 2>&1)
    done
else
    fail "flags: $debian_wrapper missing (install memcached; scripts/test.sh does)"
fi

# 5. The server from the packaged conf, through the wrapper, as the -u
# user. The conf is the packaged one with the port, the user (one the host
# has) and the pid file's directory changed.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_user=nobody
piddir=$root/run/rmemcached
mkdir -p "$piddir"
sed -e "s|^-p 11211|-p $port|" -e "s|^-u rmemcached|-u $run_user|" \
    -e "s|^-P /run/rmemcached|-P $piddir|" "$root/etc/rmemcached.conf" >"$work/run.conf"
if [ "$(id -u)" -eq 0 ]; then
    chown "$run_user" "$piddir"
    want_uid=$(id -u "$run_user")
else
    want_uid=$(id -u)
    echo "note not root: the server cannot change user; -u is checked only as root"
fi
# serve LABEL PORT PIDFILE COMMAND...: start the server through COMMAND
# and check it: it listens, its pid file holds its pid (the wrapper execs
# it), it is the packaged binary running as want_uid, it serves, and
# SIGTERM stops it.
serve() {
    local label=$1 port=$2 pidfile=$3; shift 3
    "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    local up=0
    for _ in $(seq 100); do
        if [ -s "$pidfile" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            up=1; break
        fi
        sleep 0.1
    done
    check "$label: the server listens on 127.0.0.1:$port and wrote its pid file" [ "$up" = 1 ]
    [ "$up" = 1 ] || cat "$work/server.log"
    check "$label: the pid file holds the server's pid" [ "$(cat "$pidfile" 2>/dev/null)" = "$server_pid" ]
    check "$label: the process is the packaged binary" \
        [ "$(readlink "/proc/$server_pid/exe")" = "$root/usr/bin/rmemcached" ]
    check "$label: it runs as uid $want_uid" \
        [ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$server_pid/status")" = "$want_uid$want_uid$want_uid$want_uid" ]
    local reply
    reply=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"set k 0 0 2\r\nhi\r\nget k\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode().replace("\r\n", "|"))
PY
)
    check "$label: it serves (set and get: $reply)" [ "$reply" = "STORED|VALUE k 0 2|hi|END|" ]
    kill -TERM "$server_pid"
    local status=0
    wait "$server_pid" || status=$?
    server_pid=""
    check "$label: SIGTERM ends it with status 0" [ "$status" = 0 ]
    # In the foreground (no -d, as under systemd) memcached leaves its pid
    # file at exit, and so does rmemcached; systemd empties /run at boot.
    check "$label: the pid file stays, as memcached's does without -d" [ -e "$pidfile" ]
}
serve start "$port" "$piddir/rmemcached.pid" \
    "$root/usr/share/rmemcached/scripts/systemd-rmemcached-wrapper" "$work/run.conf"

# 6. Swapping rmemcached in for memcached, and back, in the scratch root.
# memcached's binary stands for an installed memcached package there.
if [ -x /usr/bin/memcached ]; then
    cp /usr/bin/memcached "$root/usr/bin/memcached"
    swap() { "$root/usr/sbin/rmemcached-swap" "$1" --root "$root" >/dev/null; }
    diversion() { dpkg-divert --root="$root" --list /usr/bin/memcached; }
    check "swap in" swap in
    check "swap in: /usr/bin/memcached is rmemcached" \
        [ "$(readlink -f "$root/usr/bin/memcached")" = "$root/usr/bin/rmemcached" ]
    check "swap in: memcached kept as /usr/bin/memcached.debian" \
        cmp -s /usr/bin/memcached "$root/usr/bin/memcached.debian"
    check "swap in: dpkg knows the diversion" \
        bash -c '[[ "$(dpkg-divert --root="$1" --list /usr/bin/memcached)" == *"to /usr/bin/memcached.debian by rmemcached"* ]]' _ "$root"
    check "swap in twice: no change" swap in
    # Debian's own wrapper and conf (port, user and pid file changed) now
    # start rmemcached, as memcached.service would after the swap.
    if [ -f "$debian_wrapper" ] && [ -f /usr/share/memcached/memcached.conf.default ]; then
        sed -e "s|\"/usr/bin/memcached\"|\"$root/usr/bin/memcached\"|" \
            -e 's/^if(\$> != 0 and \$< != 0)/if(0)/' "$debian_wrapper" >"$work/debian-wrapper-swapped"
        port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        sed -e "s|^-p 11211|-p $port|" -e "s|^-u memcache|-u $run_user|" \
            -e "s|^-P /var/run/memcached|-P $piddir|" /usr/share/memcached/memcached.conf.default >"$work/debian.conf"
        rm -f "$piddir/memcached.pid"
        serve "swapped in, Debian's wrapper and conf" "$port" "$piddir/memcached.pid" \
            perl "$work/debian-wrapper-swapped" "$work/debian.conf"
    fi
    check "swap out" swap out
    check "swap out: /usr/bin/memcached is memcached" \
        bash -c '[ ! -L "$1/usr/bin/memcached" ] && cmp -s /usr/bin/memcached "$1/usr/bin/memcached"' _ "$root"
    check "swap out: no diversion" [ -z "$(diversion)" ]
    swap in
    dpkg_root -r rmemcached >"$work/dpkg.log" 2>&1 || { fail "dpkg --root -r"; cat "$work/dpkg.log"; }
    check "remove while swapped in: memcached is back, undiverted" \
        bash -c '[ ! -L "$1/usr/bin/memcached" ] && cmp -s /usr/bin/memcached "$1/usr/bin/memcached" && [ -z "$(dpkg-divert --root="$1" --list /usr/bin/memcached)" ]' _ "$root"
    check "remove: the binary is gone, the conffile stays" \
        bash -c '[ ! -e "$1/usr/bin/rmemcached" ] && [ -f "$1/etc/rmemcached.conf" ]' _ "$root"
    dpkg_root -P rmemcached >"$work/dpkg.log" 2>&1 || { fail "dpkg --root -P"; cat "$work/dpkg.log"; }
    check "purge: the conffile is gone" [ ! -e "$root/etc/rmemcached.conf" ]
else
    fail "swap: /usr/bin/memcached missing (install memcached; scripts/test.sh does)"
fi

if [ "$fails" -gt 0 ]; then
    echo "test-deb: $fails check(s) failed"
    exit 1
fi
echo "test-deb: all checks passed ($deb)"
