#!/usr/bin/env bash
# Where each server's CPU goes, per operation, under the benchmark's load:
# user space, and the kernel's send path, receive path and epoll, sampled
# with `perf record -g` (kernel stacks included).
#
# Usage: scripts/profile-vs-memcached.sh
#
# Each server in turn runs as in bench-vs-memcached.sh,
#     taskset -c 0 SERVER -l 127.0.0.1 -p PORT -U PORT -m 64 -t 1
# is loaded from core 1 by memaslap (90% gets, 32-byte keys) for a warm-up
# second and then SECS seconds, and is sampled during those seconds by
#     perf record -e cpu-clock -F 2000 -g -p PID
# Every sample is put in one bucket by its stack:
#   send      under sendmmsg/sendmsg/sendto/write/writev (the replies);
#             "peer's receive" is the part of it spent in softirq: on
#             loopback the sender's system call also runs the receiving
#             socket's side of the delivery, waking the load generator
#   receive   under recvmmsg/recvmsg/recvfrom/read (the requests)
#   epoll     under epoll_wait
#   other     any other kernel stack (signals, timers, page faults, ...)
#   user      the server's own code
# and the bucket's share of the samples times the server's CPU per
# operation (utime + stime from /proc/PID/stat over the same seconds,
# divided by memaslap's operations) gives microseconds per operation.
# Sampling costs the server a little CPU, so the totals run somewhat
# higher than bench-vs-memcached.sh's, for both servers alike.
#
# Writes target/bench/profile.md (the tables) and keeps each run's
# perf.data and memaslap output in target/bench/profile/.
#
# Needs perf (Debian: linux-perf, installed when missing), root or
# kernel.perf_event_paranoid <= 1 for kernel stacks, and what
# bench-vs-memcached.sh needs (memcached, memaslap, 2 cores).
#
# Environment:
#   PROFILE_TRANSPORTS  default "udp tcp"
#   PROFILE_SIZE        value bytes, default 32
#   PROFILE_CONC        memaslap -c, default 32
#   PROFILE_SECS        sampled seconds per run, default 5
#   RMC_BIN, MC_BIN     the binaries (default: a release build, /usr/bin/memcached)
set -euo pipefail

cd "$(dirname "$0")/.."
case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
TRANSPORTS=${PROFILE_TRANSPORTS:-udp tcp}
SIZE=${PROFILE_SIZE:-32}
CONC=${PROFILE_CONC:-32}
SECS=${PROFILE_SECS:-5}
MC_BIN=${MC_BIN:-/usr/bin/memcached}
OUT=target/bench
MEM_MB=64
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

require_memaslap_setup perf:linux-perf
if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
    die "perf cannot sample kernel stacks: run as root or set kernel.perf_event_paranoid=1"
fi
release_build
CLK_TCK=$(getconf CLK_TCK)
DIR=$OUT/profile
rm -rf "$DIR"
mkdir -p "$DIR"
cp --remove-destination "$RMC_BIN" "$DIR/rmemcached"
memaslap_config "$DIR/memaslap.cnf" 32 "$SIZE"

# buckets PERF_DATA: the sample count of each bucket, as "NAME COUNT" lines.
buckets() {
    perf script -i "$1" -F ip,sym 2>/dev/null | awk '
        function flush() {
            if (n == 0) return
            b = "other"
            if (user) b = "user"
            else if (stack ~ / [_a-z0-9]*sys_(sendmmsg|sendmsg|sendto|write|writev) /)
                b = (stack ~ / (handle_softirqs|net_rx_action|__do_softirq) /) ? "send_softirq" : "send"
            else if (stack ~ / [_a-z0-9]*sys_(recvmmsg|recvmsg|recvfrom|read|readv) /) b = "recv"
            else if (stack ~ / (do_epoll_wait|[_a-z0-9]*sys_epoll_p?wait) /) b = "epoll"
            count[b]++; total++
            n = 0; stack = " "
        }
        BEGIN { stack = " " }
        NF == 0 { flush(); next }
        {
            if (n == 0) user = ($1 !~ /^ffffffff/)
            n++; stack = stack $2 " "
        }
        END {
            flush()
            for (b in count) print b, count[b]
            print "total", total
        }'
}

# profile NAME BIN TRANSPORT: one sampled run; appends "TRANSPORT NAME
# CPU_US_PER_OP OPS bucket=count..." to $DIR/runs.
profile() {
    local name=$1 bin=$2 transport=$3 port pid udp=() u0 s0 u1 s1 ops cpu
    read -r port < <(free_ports 1)
    [ "$transport" = udp ] && udp=(--udp)
    start_server "$bin" "$port" "$DIR/$name-$transport.server.log" || return 1
    pid=$server_pid
    timeout 20 taskset -c 1 "$MEMASLAP" -s "127.0.0.1:$port" -F "$DIR/memaslap.cnf" -t 1s -T 1 \
        -c "$CONC" -o 0.9 "${udp[@]}" </dev/null >/dev/null 2>&1 || true
    read -r u0 s0 < <(cpu_ticks "$pid")
    perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$DIR/$name-$transport.data" \
        -- sleep "$SECS" >/dev/null 2>&1 &
    local perf_pid=$!
    timeout $((SECS + 15)) taskset -c 1 "$MEMASLAP" -s "127.0.0.1:$port" -F "$DIR/memaslap.cnf" \
        -t "${SECS}s" -T 1 -c "$CONC" -o 0.9 "${udp[@]}" </dev/null \
        >"$DIR/$name-$transport.memaslap" 2>&1 || log "  memaslap failed ($name $transport)"
    wait "$perf_pid" || true
    read -r u1 s1 < <(cpu_ticks "$pid")
    stop_servers
    ops=$(awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "Ops:") v = $(i + 1) } END { print v + 0 }' \
        "$DIR/$name-$transport.memaslap")
    [ "$ops" -gt 0 ] || { log "  no operations counted ($name $transport)"; return 1; }
    cpu=$(awk -v d=$((u1 - u0 + s1 - s0)) -v hz="$CLK_TCK" -v n="$ops" 'BEGIN { printf "%.3f", d / hz * 1e6 / n }')
    echo "$transport $name $cpu $ops $(buckets "$DIR/$name-$transport.data" | tr ' \n' '= ')" >>"$DIR/runs"
    log "  $name $transport: $ops ops, $cpu µs CPU/op"
}

for transport in $TRANSPORTS; do
    log "$transport: rmemcached, then memcached"
    profile rmemcached "$DIR/rmemcached" "$transport"
    profile memcached "$MC_BIN" "$transport"
done

# The tables: one per transport, a row per bucket, µs per operation.
{
    echo "# Where the CPU goes, per operation"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc --all) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)."
    echo "memaslap -c $CONC, $SIZE-byte values, 90% gets; each server -t 1 on core 0; ${SECS} s sampled at 2 kHz."
    echo
    awk '
        {
            t = $1; s = $2; cpu[t, s] = $3; ops[t, s] = $4; order[t] = 1
            for (i = 5; i <= NF; i++) { split($i, kv, "="); n[t, s, kv[1]] = kv[2] }
        }
        function us(t, s, b) { return n[t, s, "total"] ? cpu[t, s] * n[t, s, b] / n[t, s, "total"] : 0 }
        function row(t, label, b,    r, m) {
            r = us(t, "rmemcached", b); m = us(t, "memcached", b)
            printf "| %s | %.2f | %.2f | %s |\n", label, r, m, (m > 0 ? sprintf("%.2f", r / m) : "-")
        }
        END {
            for (t in order) {
                printf "## %s\n\n", toupper(t)
                printf "| µs of server CPU per op | rmemcached | memcached | ratio |\n|---|---:|---:|---:|\n"
                row(t, "kernel: send path, own work", "send")
                row(t, "kernel: send path, peer'"'"'s receive (softirq)", "send_softirq")
                row(t, "kernel: receive path", "recv")
                row(t, "kernel: epoll_wait", "epoll")
                row(t, "kernel: other", "other")
                row(t, "user space", "user")
                printf "| **total** | **%.2f** | **%.2f** | **%.2f** |\n", cpu[t, "rmemcached"], cpu[t, "memcached"], \
                    (cpu[t, "memcached"] > 0 ? cpu[t, "rmemcached"] / cpu[t, "memcached"] : 0)
                k = us(t, "rmemcached", "send") + us(t, "rmemcached", "send_softirq") + us(t, "rmemcached", "recv")
                printf "\nops in the sampled run: rmemcached %d, memcached %d. ", ops[t, "rmemcached"], ops[t, "memcached"]
                if (cpu[t, "memcached"] > 0)
                    printf "rmemcached'"'"'s send and receive paths alone are %.2f× memcached'"'"'s whole CPU per op.\n\n", k / cpu[t, "memcached"]
            }
        }' "$DIR/runs"
} >"$OUT/profile.md"
cat "$OUT/profile.md"
