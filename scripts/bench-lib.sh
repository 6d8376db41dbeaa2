# shellcheck shell=bash
# Helpers shared by the benchmark scripts (sourced, not run). The sourcing
# script sets OUT (its output folder) and CLK_TCK before calling
# children_ticks, and adds the pids of the servers it starts to `pids`.

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt-get install the Debian packages named, with sudo when not root.
install_packages() {
    [ $# -gt 0 ] || return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing $*, and no sudo to install them"
        sudo=(sudo)
    fi
    log "installing $*"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Kill and reap every server in `pids` (also at exit).
pids=()
stop_servers() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# N ports on 127.0.0.1, each free for both TCP and UDP, all different.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); u.close(); continue
    held += [t, u]
    ports.append(port)
# Closed before the ports are printed: a caller reading them may start a
# server on them at once, while this process has not yet exited.
for s in held:
    s.close()
print(*ports, flush=True)
EOF
}

# Fields 14 and 15 of a stat file (utime, stime, in clock ticks) as
# "UTIME STIME"; the command name, field 2, is skipped as it may hold spaces.
stat_ticks() {
    local s
    s=$(<"$1")
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo "${12} ${13}"
}

# utime and stime of process PID, as "UTIME STIME".
cpu_ticks() { stat_ticks "/proc/$1/stat"; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Clock ticks the whole machine spent running processes: user, nice and
# system (not irq and softirq: these the kernel may not charge to any process).
machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }

# Clock ticks used by the children this shell has waited for (the load
# generator among them), into $REPLY: bash's `times` must run in this
# shell, not in a $(...) subshell.
children_ticks() {
    times >"$OUT/.times"
    REPLY=$(awk -v hz="$CLK_TCK" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
        printf "%d", t * hz
    }' "$OUT/.times")
}

# The UDP sockets bound to 127.0.0.1:PORT in /proc/net/udp, as "COUNT
# DROPS": DROPS (the last column) are datagrams dropped because a socket's
# receive buffer was full.
udp_sockets() {
    awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a { n++; d += $NF } END { print n + 0, d + 0 }' /proc/net/udp
}

# Datagrams dropped by the UDP sockets bound to 127.0.0.1:PORT.
udp_drops() {
    local drops
    read -r _ drops < <(udp_sockets "$1")
    echo "$drops"
}
