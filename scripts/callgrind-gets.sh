#!/usr/bin/env bash
# The server's CPU instructions per get, over UDP and over TCP, counted by
# valgrind's callgrind: a count of instructions executed, not a time, so it
# does not depend on the machine's load and barely moves from run to run.
#
# Usage: scripts/callgrind-gets.sh
#
# For each transport the release build runs twice under
#     valgrind --tool=callgrind --separate-threads=yes \
#         rmemcached -l 127.0.0.1 -p PORT -U PORT -t 1 -m 64
# (-U 0 for tcp). A python client stores one key with a 32-byte value
# over TCP, then sends GETS serial gets of it (0 in the first run), each
# waiting for its reply, which must be the stored value byte for byte:
#   udp  one datagram per get, with memcached's 8-byte frame header
#        (request id, sequence 0, total 1, reserved 0) before "get KEY\r\n"
#   tcp  "get KEY\r\n" on the connection that stored the key, read up to
#        "END\r\n"
# The client then closes, the server is stopped with SIGTERM and must exit
# 0, and callgrind writes its counts. Instructions per get are
#     (Ir(GETS) - Ir(0)) / GETS
# so the start, the store and the stop, the same in both runs, cancel out.
#
# Ir is every instruction the server process executed in user space, over
# all its threads (main thread and worker); the client is another process
# and is not counted, nor is the kernel's side of the system calls. The
# "worker" column counts the worker thread alone (the main thread accepts
# connections and ticks the clock once a second, so its share grows with
# the run's wall time, not with the gets).
#
# Prints the table and writes it to target/callgrind/gets.txt; each run's
# callgrind files (one per thread) are kept in target/callgrind/ for
# callgrind_annotate.
#
# Needs valgrind and python3.
#
# Environment:
#   CG_GETS        gets in the second run of each transport, default 20000
#   CG_TRANSPORTS  default "udp tcp"
#   CG_UDP_PORT    port of the udp runs (TCP and UDP), default a free one
#   CG_TCP_PORT    port of the tcp runs, default a free one
#   RMC_BIN        the binary (default: cargo build --release --bin rmemcached)
set -euo pipefail

cd "$(dirname "$0")/.."
case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
GETS=${CG_GETS:-20000}
TRANSPORTS=${CG_TRANSPORTS:-udp tcp}
OUT=target/callgrind
MEM_MB=64
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

case "$GETS" in
    ''|*[!0-9]*|0) die "CG_GETS must be a positive number, not '$GETS'" ;;
esac
for transport in $TRANSPORTS; do
    case "$transport" in udp|tcp) ;; *) die "unknown transport '$transport' in CG_TRANSPORTS" ;; esac
done
command -v valgrind >/dev/null 2>&1 || die "valgrind not found (Debian: apt-get install valgrind)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
if [ -z "${RMC_BIN:-}" ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
    log "cargo build --release --bin rmemcached"
    cargo build --release --quiet --bin rmemcached
    RMC_BIN=target/release/rmemcached
fi
[ -x "$RMC_BIN" ] || die "no rmemcached at $RMC_BIN"

read -r free_udp free_tcp < <(free_ports 2)
UDP_PORT=${CG_UDP_PORT:-$free_udp}
TCP_PORT=${CG_TCP_PORT:-$free_tcp}

# Callgrind writes its files when the server exits, after a server started
# as root has become nobody: they go to a scratch folder nobody may write,
# and are moved to $OUT afterwards.
SCRATCH=$(mktemp -d)
[ "$(id -u)" -eq 0 ] && chown nobody "$SCRATCH"
cleanup() {
    stop_servers
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

cat >"$SCRATCH/client.py" <<'EOF'
import socket, struct, sys, time

transport, port, gets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = b"callgrind-key"
value = b"0123456789abcdef0123456789abcdef"
reply = b"VALUE " + key + b" 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"

# The server starts slowly under valgrind: connect until it listens (60 s).
deadline = time.monotonic() + 60
while True:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("server did not listen within 60 s")
        time.sleep(0.1)

def read_until(end):
    buf = b""
    while not buf.endswith(end):
        chunk = conn.recv(65536)
        if not chunk:
            sys.exit("server closed the connection; had %r" % buf)
        buf += chunk
    return buf

conn.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
got = read_until(b"\r\n")
if got != b"STORED\r\n":
    sys.exit("set: %r" % got)

if transport == "tcp":
    request = b"get " + key + b"\r\n"
    for i in range(gets):
        conn.sendall(request)
        got = read_until(b"END\r\n")
        if got != reply:
            sys.exit("get %d: %r" % (i, got))
else:
    conn.close()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(30)
    udp.connect(("127.0.0.1", port))
    for i in range(gets):
        rid = i & 0xFFFF
        udp.send(struct.pack(">HHHH", rid, 0, 1, 0) + b"get " + key + b"\r\n")
        got = udp.recv(65536)
        if got != struct.pack(">HHHH", rid, 0, 1, 0) + reply:
            sys.exit("get %d: %r" % (i, got))
    udp.close()
conn.close()
EOF

# ir FILE...: the instructions counted in callgrind files, summed: each
# file's "totals:" line, or its "summary:" line when it has none.
ir() {
    awk '/^totals:/ { t[FILENAME] = $2 } /^summary:/ { s[FILENAME] = $2 } { f[FILENAME] }
        END { for (x in f) n += (x in t) ? t[x] : s[x]; printf "%d\n", n }' "$@"
}

# measure TRANSPORT GETS: one run under callgrind; sets IR_ALL (every
# thread) and IR_WORKER (threads but the main one, which is thread 1).
measure() {
    local transport=$1 gets=$2 port udp name pid rc state stopped files
    if [ "$transport" = udp ]; then port=$UDP_PORT; udp=$UDP_PORT; else port=$TCP_PORT; udp=0; fi
    name=$transport-$gets
    valgrind --tool=callgrind --separate-threads=yes --vgdb=no \
        --callgrind-out-file="$SCRATCH/$name.out" \
        "$RMC_BIN" -l 127.0.0.1 -p "$port" -U "$udp" -t 1 -m "$MEM_MB" "${user_args[@]}" \
        </dev/null >"$OUT/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    if ! timeout --foreground $((120 + gets / 50)) python3 "$SCRATCH/client.py" "$transport" "$port" "$gets"; then
        log "server log:"; cat "$OUT/$name.log" >&2
        die "$name: the client failed"
    fi
    kill -TERM "$pid"
    # Up to 60 s for it to stop: until it is a zombie, or gone (reaped by
    # this shell, which keeps its status for `wait`).
    stopped=
    for _ in $(seq 600); do
        state=$(cat "/proc/$pid/stat" 2>/dev/null) || { stopped=1; break; }
        state=${state##*) }
        [ "${state%% *}" = Z ] && { stopped=1; break; }
        sleep 0.1
    done
    if [ -z "$stopped" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        die "$name: the server did not stop within 60 s of SIGTERM"
    fi
    rc=0
    wait "$pid" || rc=$?
    pids=()
    if [ "$rc" -ne 0 ]; then
        log "server log:"; cat "$OUT/$name.log" >&2
        die "$name: the server exited $rc after SIGTERM"
    fi
    files=("$SCRATCH/$name".out-*)
    [ -e "${files[0]}" ] || die "$name: callgrind wrote no file"
    mv "${files[@]}" "$OUT/"
    rm -f "$SCRATCH/$name.out"
    IR_ALL=$(ir "$OUT/$name".out-*)
    files=("$OUT/$name".out-*)
    IR_WORKER=0
    [ "${#files[@]}" -gt 1 ] && IR_WORKER=$(ir "${files[@]:1}")
    [ "$IR_ALL" -gt 0 ] || die "$name: no instructions counted"
    log "  $name: Ir $IR_ALL (worker $IR_WORKER), ${#files[@]} threads"
}

table=$(printf '%-9s %14s %14s %10s %12s' transport 'Ir(0)' "Ir($GETS)" 'Ir/get' 'worker/get')
for transport in $TRANSPORTS; do
    log "$transport: 0 gets, then $GETS"
    measure "$transport" 0
    all0=$IR_ALL worker0=$IR_WORKER
    measure "$transport" "$GETS"
    table+=$'\n'$(printf '%-9s %14d %14d %10s %12s' "$transport" "$all0" "$IR_ALL" \
        "$(awk -v a="$all0" -v b="$IR_ALL" -v n="$GETS" 'BEGIN { printf "%.1f", (b - a) / n }')" \
        "$(awk -v a="$worker0" -v b="$IR_WORKER" -v n="$GETS" 'BEGIN { printf "%.1f", (b - a) / n }')")
done
printf '%s\n' "$table" | tee "$OUT/gets.txt"
