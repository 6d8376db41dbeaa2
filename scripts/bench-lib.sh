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

# Servers started as root drop to nobody, as memcached requires a -u then.
user_args=()
[ "$(id -u)" -eq 0 ] && user_args=(-u nobody)

# require_memcached [COMMAND:PACKAGE ...]: install memcached (at $MC_BIN)
# and, for each COMMAND not on the PATH, its Debian PACKAGE.
require_memcached() {
    local need=() pair
    [ -x "$MC_BIN" ] || need+=(memcached)
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
    done
    install_packages "${need[@]}"
    [ -x "$MC_BIN" ] || die "no memcached at $MC_BIN"
}

# require_memaslap_setup [COMMAND:PACKAGE ...]: what the memaslap
# comparisons need (memcached, memaslap, taskset, two cores, and the
# COMMANDs given); sets MEMASLAP.
require_memaslap_setup() {
    command -v memcaslap >/dev/null 2>&1 || command -v memaslap >/dev/null 2>&1 \
        || set -- "$@" memcaslap:libmemcached-tools
    require_memcached taskset:util-linux "$@"
    MEMASLAP=$(command -v memcaslap || command -v memaslap)
    [ "$(nproc --all)" -ge 2 ] || die "needs 2 cores (servers on core 0, memaslap on core 1)"
    taskset -c 0,1 true 2>/dev/null || die "cannot pin to cores 0 and 1 (taskset -c 0,1)"
}

# release_build: unless RMC_BIN is set, build the release binaries of the
# workspace (rmemcached and rmc-load, both in target/release/) and point
# RMC_BIN at rmemcached.
release_build() {
    if [ -z "${RMC_BIN:-}" ]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
        log "cargo build --release --workspace"
        cargo build --release --workspace --quiet
        RMC_BIN=target/release/rmemcached
    fi
    [ -x "$RMC_BIN" ] || die "no rmemcached at $RMC_BIN"
}

# memaslap_config FILE KEY_SIZE VALUE_SIZE: fixed key and value sizes, 10%
# sets (cmd 0), 90% gets (cmd 1).
memaslap_config() {
    printf 'key\n%d %d 1\nvalue\n%d %d 1\ncmd\n0 0.1\n1 0.9\n' "$2" "$2" "$3" "$3" >"$1"
}

# start_server BIN PORT LOGFILE [FLAG ...]: starts it as the memaslap
# comparisons run servers (-t 1, -m $MEM_MB, pinned to core 0; the FLAGs
# added, such as -Z and its -o ssl_* options) and waits until its TCP port
# answers; its pid is then in $server_pid. Fails when it exits at start
# (another process may have taken the port in the meantime).
start_server() {
    local bin=$1 port=$2 logf=$3
    shift 3
    taskset -c 0 "$bin" -l 127.0.0.1 -p "$port" -U "$port" -m "$MEM_MB" -t 1 \
        "${user_args[@]}" "$@" </dev/null >"$logf" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 200); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            log "    $(basename "$bin") exited at start: $(tr '\n' ' ' <"$logf")"
            return 1
        fi
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    die "$bin did not listen on port $port within 10 s"
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
