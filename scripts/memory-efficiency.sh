#!/usr/bin/env bash
# Memory-efficiency benchmark: rmemcached against the real memcached.
#
# usage: scripts/memory-efficiency.sh [VALUE_SIZE...]     (default: 32 200 2000)
#
# For each value size, starts rmemcached and memcached side by side on
# 127.0.0.1 (free TCP ports, -U 0 -m $MEM_MB -t 1 -u nobody; -u is ignored
# when not root), and fills each with 3x as many items as could fit:
# 3 * MEM_MB MiB / (value + 12 + 56) items, keys "k%011d" (12 bytes), sent as
# pipelined `set ... noreply` over TCP by scripts/fill.py. It then reads
# `stats` (curr_items, evictions, bytes, limit_maxbytes), VmRSS from
# /proc/PID/status, and how many of the last 1000 keys written are still
# there (a sanity check: the newest items must survive eviction).
#
# The table gives items kept and RSS for both servers, and the ratios
# rmemcached/memcached against the design targets: items kept >= 1.5x (32 B),
# >= 1.15x (200 B), >= 1.05x (2000 B); RSS <= memcached's + 10%. Absolute
# numbers vary from machine to machine and run to run; the ratios are the
# meaningful output. A benchmark to run by hand, not part of `cargo test`.
#
# env: RMC_BIN  rmemcached binary (default: `cargo build --release`, then
#               target/release/rmemcached)
#      MC_BIN   memcached binary (default: /usr/bin/memcached)
#      MEM_MB   -m for both servers (default: 64)
set -euo pipefail
cd "$(dirname "$0")/.."

MC_BIN=${MC_BIN:-/usr/bin/memcached}
MEM_MB=${MEM_MB:-64}
if [ -z "${RMC_BIN:-}" ]; then
    cargo build --release --quiet
    RMC_BIN=target/release/rmemcached
fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(32 200 2000)

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

free_ports() {
    python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))'
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

target() {
    case $1 in 32) echo 1.5 ;; 200) echo 1.15 ;; 2000) echo 1.05 ;; *) echo - ;; esac
}

rows=()
for size in "${sizes[@]}"; do
    count=$(( (3 * MEM_MB * 1048576 + size + 67) / (size + 12 + 56) ))
    ports=$(free_ports)  # $(...) waits until python has closed them
    rm_port=${ports% *} mc_port=${ports#* }
    args=(-U 0 -l 127.0.0.1 -m "$MEM_MB" -t 1 -u nobody)
    "$RMC_BIN" -p "$rm_port" "${args[@]}" & rm_pid=$!
    "$MC_BIN" -p "$mc_port" "${args[@]}" & mc_pid=$!
    pids=("$rm_pid" "$mc_pid")

    for name in rm mc; do
        port_var=${name}_port pid_var=${name}_pid
        read -r items evict bytes limit hits sample errors secs \
            < <(python3 scripts/fill.py "${!port_var}" "$size" "$count")
        rss=$(rss_kb "${!pid_var}")
        printf '%s %5d B: set %d in %ss (%d errors): curr_items %d evictions %d bytes %d limit_maxbytes %d VmRSS %d kB, last %d keys: %d hits\n' \
            "$name" "$size" "$count" "$secs" "$errors" "$items" "$evict" \
            "$bytes" "$limit" "$rss" "$sample" "$hits" >&2
        declare "${name}_res=$items $evict $rss $hits/$sample"
    done

    kill "$rm_pid" "$mc_pid"
    wait "$rm_pid" "$mc_pid" 2>/dev/null || true
    pids=()
    rows+=("$size $(target "$size") $rm_res $mc_res")
done

printf '%s\n' "${rows[@]}" | awk '
function verdict(ok) { return ok ? "PASS" : "MISS" }
BEGIN {
    printf "%6s | %9s %9s %6s %7s %4s | %8s %8s | %7s %7s %6s %7s %4s | %9s %9s\n",
        "value", "items rm", "items mc", "rm/mc", "target", "ok", "evict rm",
        "evict mc", "RSS rm", "RSS mc", "rm/mc", "target", "ok", "hits rm", "hits mc"
}
{
    # size target rm_items rm_evict rm_rss rm_hits mc_items mc_evict mc_rss mc_hits
    ir = $3 / $7; rr = $5 / $9
    iv = ($2 == "-") ? "-" : verdict(ir >= $2)
    printf "%5dB | %9d %9d %6.2f %7s %4s | %8d %8d | %6.1fM %6.1fM %6.2f %7s %4s | %9s %9s\n",
        $1, $3, $7, ir, ($2 == "-" ? "-" : ">=" $2), iv, $4, $8,
        $5 / 1024, $9 / 1024, rr, "<=1.10", verdict(rr <= 1.1), $6, $10
}'
