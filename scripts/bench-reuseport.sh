#!/usr/bin/env bash
# UDP socket design benchmark: rmemcached's `-o udp_reuseport` (each worker
# binds its own SO_REUSEPORT socket to the port, and the kernel spreads the
# clients over them by source address) against its default shared socket
# (every worker waits on the one socket and they race for each datagram, as
# memcached's threads do), and against memcached itself, with the project's
# own load generator (rmc-load) over UDP.
#
# usage: scripts/bench-reuseport.sh [--quick]
#
# One command on a Debian machine with at least 2 cores: it installs what is
# missing with apt-get (memcached, python3; through sudo when not root),
# builds with `cargo build --release --workspace` (cargo must be there:
# https://rustup.rs),
# runs everything (about 4 minutes; --quick: about 1), and writes
#     target/bench/reuseport.md             the tables, the machine, the
#                                           exact commands (also printed)
#     target/bench/reuseport/runs.tsv       every measured run
#     target/bench/reuseport/logs/          every rmc-load output
#
# Set-up, on 127.0.0.1 only. For each thread count T (BENCH_THREADS, default
# "2 4"), three fresh servers, each on its own port (free for TCP and UDP):
#     shared     rmemcached -l 127.0.0.1 -p PORT -U PORT -m 64 -t T
#     reuseport  rmemcached -l 127.0.0.1 -p PORT -U PORT -m 64 -t T -o udp_reuseport
#     memcached  memcached  -l 127.0.0.1 -p PORT -U PORT -m 64 -t T
# (plus -u nobody when run as root). Each gets one unmeasured warm-up run of
# rmc-load that also stores the keys (over TCP), then the measured runs:
#     closed loop   rmc-load --udp PORT --mode mixed --keys 1000 --value-size 32
#                     --sockets 8 --outstanding 16 --duration SECS --no-preload --json
#     open loop     the same with --rate R instead of --outstanding (only at
#                   the thread counts in BENCH_LAT_THREADS, default "2"), R
#                   being a quarter of the lowest of the three closed-loop
#                   medians (at half, 16 client threads on 2 cores already
#                   made every server drop datagrams in bursts)
# Several client sockets are needed: SO_REUSEPORT picks the server socket by
# a hash of the source address and port, so one client socket would always
# land on one worker. --mode mixed is 90% gets, 10% sets, as memaslap is run
# in scripts/bench-vs-memcached.sh. The servers alternate within each round,
# and the order rotates from round to round (shared, reuseport, memcached;
# then reuseport, memcached, shared; ...), so that no server always runs
# first or last.
#
# Nothing is pinned. The machine this was written for has 2 cores: the
# server's T threads share them with rmc-load's threads (one per socket in
# closed loop, two per socket in open loop), and any pinning that gave the
# server its own cores would leave it fewer than T of them. So the closed-
# loop ops/s measure server and client together on 2 cores; the server's CPU
# per operation is the fairer comparison, and the open-loop runs compare the
# servers at the same, lower, load. The table shows how the CPU was shared.
#
# Measured per run, then the median over the rounds (lost, drops: sums):
#   ops/s        rmc-load's completed requests per second
#   CPU us/op    the server's utime+stime (fields 14 and 15 of /proc/PID/stat,
#                all its threads, in clock ticks) just before and just after
#                the run: delta seconds * 1e6 / completed requests; also split
#                into user (utime) and sys (stime). Kernels that account irq
#                time apart charge softirq work, such as loopback packet
#                delivery, to no process: it is in no server's numbers
#   lost         requests without a whole reply within rmc-load's 1 s timeout
#   UDP drops    datagrams the server's sockets dropped because their receive
#                buffer was full (last column of /proc/net/udp, all sockets
#                bound to the port)
#   sockets      UDP sockets bound to the port (/proc/net/udp): 1 shared,
#                T with reuseport; a check that the option did what it says
#   busiest      the busiest worker thread's share of all worker threads' CPU
#                (/proc/PID/task/*/stat; workers are "worker-N" in rmemcached,
#                "mc-worker" in memcached): 100/T % is an even spread
#   server, client, other CPU
#                in % of one core during the run (200% = both cores): the
#                server; rmc-load (its rusage); and everything else on the
#                machine (user+nice+system of /proc/stat minus both)
#   p50, p99     rmc-load's latency percentiles, from each request's send
#                time (closed loop) or scheduled send time (open loop)
# Below each table, the ratios reuseport/shared and reuseport/memcached of
# each round, whose runs were back to back; a round where either run had
# more than 25% of a core of other work is marked, and the median is also
# given over the unmarked rounds alone.
#
# env: BENCH_SECS         seconds per measured run (default 4)
#      BENCH_ROUNDS       rounds (default 5)
#      BENCH_QUICK=1      same as --quick: 1 round of 2-second runs
#      BENCH_THREADS      server -t values, default "2 4"
#      BENCH_LAT_THREADS  -t values that also get the open-loop runs (default
#                         "2"; "" for none)
#      BENCH_RATE         open-loop requests/s (default: see above)
#      BENCH_SOCKETS      rmc-load --sockets (default 8)
#      BENCH_OUTSTANDING  rmc-load --outstanding, closed loop (default 16)
#      BENCH_MODE         rmc-load --mode (default mixed)
#      BENCH_KEYS         rmc-load --keys (default 1000)
#      BENCH_VALUE_SIZE   rmc-load --value-size (default 32)
#      MEM_MB             -m for every server (default 64)
#      RMC_BIN            rmemcached binary (default: build, then
#                         target/release/rmemcached)
#      RMC_LOAD           rmc-load binary (default: next to RMC_BIN)
#      MC_BIN             memcached binary (default /usr/bin/memcached)
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
    case $arg in
        --quick) BENCH_QUICK=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    SECS=${BENCH_SECS:-2} ROUNDS=${BENCH_ROUNDS:-1}
else
    SECS=${BENCH_SECS:-4} ROUNDS=${BENCH_ROUNDS:-5}
fi
THREADS=${BENCH_THREADS:-2 4}
LAT_THREADS=${BENCH_LAT_THREADS-2}
SOCKETS=${BENCH_SOCKETS:-8}
OUTSTANDING=${BENCH_OUTSTANDING:-16}
MODE=${BENCH_MODE:-mixed}
KEYS=${BENCH_KEYS:-1000}
VALUE_SIZE=${BENCH_VALUE_SIZE:-32}
MEM_MB=${MEM_MB:-64}
MC_BIN=${MC_BIN:-/usr/bin/memcached}
OUT=target/bench/reuseport
REPORT=target/bench/reuseport.md
SERVERS=(shared reuseport memcached)
started=$(date +%s)
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

# --- what the benchmark needs ---------------------------------------------
require_memcached python3:python3
release_build
RMC_LOAD=${RMC_LOAD:-$(dirname "$RMC_BIN")/rmc-load}
[ -x "$RMC_LOAD" ] || die "no rmc-load at $RMC_LOAD"
CLK_TCK=$(getconf CLK_TCK)

rm -rf "$OUT/logs"
mkdir -p "$OUT/logs"
# Run copies, so that a rebuild during the benchmark changes nothing.
[ "$RMC_BIN" -ef "$OUT/rmemcached" ] || cp --remove-destination "$RMC_BIN" "$OUT/rmemcached"
[ "$RMC_LOAD" -ef "$OUT/rmc-load" ] || cp --remove-destination "$RMC_LOAD" "$OUT/rmc-load"
RMC_SHOWN=$RMC_BIN LOAD_SHOWN=$RMC_LOAD
RMC_BIN=$OUT/rmemcached RMC_LOAD=$OUT/rmc-load
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
RUNS=$OUT/runs.tsv
printf 'loop\tthreads\tserver\tround\tstatus\trate\tops_per_sec\tcompleted\tlost\tp50_us\tp99_us\tp999_us\tcpu_us_per_op\tuser_us_per_op\tsys_us_per_op\tserver_cpu_pct\tclient_cpu_pct\tother_cpu_pct\tbusiest_worker_pct\tudp_drops\tudp_sockets\n' >"$RUNS"

# --- helpers ----------------------------------------------------------------

# "TID NAME TICKS" for each worker thread of PID (utime+stime).
worker_ticks() {
    local t name u s
    for t in /proc/"$1"/task/*; do
        name=$(cat "$t/comm" 2>/dev/null) || continue
        case $name in worker-*|mc-worker) ;; *) continue ;; esac
        read -r u s < <(stat_ticks "$t/stat" 2>/dev/null) || continue
        echo "${t##*/} $name $((u + s))"
    done
}

# server_args NAME THREADS PORT: the command line of one server, into the
# array `cmd`.
server_args() {
    local bin=$RMC_BIN extra=()
    case $1 in
        memcached) bin=$MC_BIN ;;
        reuseport) extra=(-o udp_reuseport) ;;
    esac
    cmd=("$bin" -l 127.0.0.1 -p "$3" -U "$3" -m "$MEM_MB" -t "$2" "${extra[@]}" "${user_args[@]}")
}

# start_server NAME THREADS PORT: starts it and waits until its TCP port
# answers; its pid is then in $server_pid. Fails when it exits at start
# (another process may have taken the port in the meantime).
start_server() {
    local logf=$OUT/logs/$1-t$2.server.log
    server_args "$@"
    "${cmd[@]}" </dev/null >"$logf" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 200); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            log "    $1 exited at start: $(tr '\n' ' ' <"$logf")"
            return 1
        fi
        (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return 0
        sleep 0.05
    done
    die "$1 did not listen on port $3 within 10 s"
}

# start_all THREADS: the three servers on fresh ports; sets port[NAME] and
# pid[NAME].
declare -A port pid
start_all() {
    local attempt s ok ports
    for attempt in 1 2 3 4 5; do
        read -r -a ports < <(free_ports ${#SERVERS[@]})
        ok=1
        for s in 0 1 2; do
            port[${SERVERS[s]}]=${ports[s]}
            if ! start_server "${SERVERS[s]}" "$1" "${ports[s]}"; then
                ok=0
                break
            fi
            pid[${SERVERS[s]}]=$server_pid
        done
        [ "$ok" = 1 ] && return
        stop_servers
        log "    retrying with other ports (attempt $attempt)"
    done
    die "could not start the servers"
}

# load_args PORT RATE SECS: rmc-load's arguments, into the array `load`
# (RATE 0: closed loop).
load_args() {
    load=(--udp "$1" --mode "$MODE" --keys "$KEYS" --value-size "$VALUE_SIZE"
          --sockets "$SOCKETS")
    if [ "$2" = 0 ]; then
        load+=(--outstanding "$OUTSTANDING")
    else
        load+=(--rate "$2")
    fi
    load+=(--duration "$3")
}

# warm_up NAME: one unmeasured second, storing the keys over TCP first.
warm_up() {
    load_args "${port[$1]}" 0 1
    timeout 40 "$RMC_LOAD" "${load[@]}" --preload-tcp "${port[$1]}" \
        >"$OUT/logs/$1-t$threads-warmup.out" 2>&1 \
        || log "    $1: warm-up run failed (see $OUT/logs/$1-t$threads-warmup.out)"
}

# measure LOOP NAME ROUND RATE: one measured run; appends a line to runs.tsv.
measure() {
    local loop=$1 name=$2 round=$3 rate=$4 p=${pid[$2]} base rc=0 json
    local u0 s0 u1 s1 kids0 kids1 busy0 busy1 t0 t1 d0 n1 d1
    base=$OUT/logs/$loop-t$threads-$name-r$round
    load_args "${port[$name]}" "$rate" "$SECS"
    read -r _ d0 < <(udp_sockets "${port[$name]}")
    worker_ticks "$p" >"$base.workers0"
    children_ticks
    kids0=$REPLY busy0=$(machine_busy) t0=$(date +%s%N)
    read -r u0 s0 < <(stat_ticks "/proc/$p/stat")
    timeout $((SECS + 30)) "$RMC_LOAD" "${load[@]}" --no-preload --json \
        </dev/null >"$base.out" 2>"$base.err" || rc=$?
    read -r u1 s1 < <(stat_ticks "/proc/$p/stat")
    t1=$(date +%s%N) busy1=$(machine_busy)
    children_ticks
    kids1=$REPLY
    worker_ticks "$p" >"$base.workers1"
    read -r n1 d1 < <(udp_sockets "${port[$name]}")
    kill -0 "$p" 2>/dev/null || { cat "$base.err" >&2; die "$name died under load ($base.out)"; }
    json=$(grep '^{' "$base.out" | tail -1 || true)
    python3 - "$RUNS" "$loop" "$threads" "$name" "$round" "$rc" "$rate" "$json" \
        "$CLK_TCK" $((u1 - u0)) $((s1 - s0)) $((kids1 - kids0)) \
        $((busy1 - busy0)) $((t1 - t0)) "$base.workers0" "$base.workers1" \
        $((d1 - d0)) "$n1" <<'EOF'
import json, sys
(runs, loop, threads, name, rnd, rc, rate, js, hz, du, ds, dkids, dbusy, dns,
 w0, w1, drops, nsock) = sys.argv[1:]
hz, du, ds, dkids, dbusy, secs = (float(hz), int(du), int(ds), int(dkids),
                                  int(dbusy), int(dns) / 1e9)
def workers(path):
    d = {}
    for line in open(path):
        tid, _, ticks = line.split()
        d[tid] = int(ticks)
    return d
a, b = workers(w0), workers(w1)
deltas = [b[t] - a.get(t, 0) for t in b]
busiest = "%.0f" % (100 * max(deltas) / sum(deltas)) if deltas and sum(deltas) > 0 else "-"
pct = lambda ticks: "%.0f" % max(0.0, ticks / hz / secs * 100)
try:
    r = json.loads(js)
except ValueError:
    r = None
if r is None:
    row = [loop, threads, name, rnd, "failed(rc %s)" % rc, rate] + ["-"] * 15
else:
    n = r["completed"]
    per = lambda ticks: "%.3f" % (ticks / hz * 1e6 / n) if n else "-"
    row = [loop, threads, name, rnd, "ok" if rc == "0" else "rc %s" % rc, rate,
           "%.0f" % r["ops_per_sec"], n, r["lost"], r["p50_us"], r["p99_us"], r["p999_us"],
           per(du + ds), per(du), per(ds), pct(du + ds), pct(dkids),
           pct(dbusy - du - ds - dkids), busiest, drops, nsock]
with open(runs, "a") as f:
    f.write("\t".join(str(x) for x in row) + "\n")
print("    %s round %s: %s ops/s, %s us/op CPU (%s user, %s sys), lost %s, drops %s, "
      "sockets %s, busiest worker %s%%, server/client/other CPU %s/%s/%s%%" % (
          name, rnd, row[6], row[12], row[13], row[14], row[8], row[19], row[20],
          row[18], row[15], row[16], row[17]), file=sys.stderr)
EOF
}

# lowest_median_ops THREADS: the lowest of the servers' median closed-loop ops/s.
lowest_median_ops() {
    python3 - "$RUNS" "$1" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")
        if r["loop"] == "closed" and r["threads"] == sys.argv[2] and r["status"] == "ok"]
meds = []
for s in ("shared", "reuseport", "memcached"):
    v = [float(r["ops_per_sec"]) for r in rows if r["server"] == s]
    if v:
        meds.append(statistics.median(v))
print(int(min(meds)) if meds else 0)
EOF
}

# rounds LOOP RATE: every round, the servers in a rotating order.
rounds() {
    local round i k
    for round in $(seq "$ROUNDS"); do
        for k in 0 1 2; do
            i=$(( (round - 1 + k) % 3 ))
            measure "$1" "${SERVERS[i]}" "$round" "$2"
        done
    done
}

# --- the runs -----------------------------------------------------------------
log "rmemcached: $RMC_SHOWN; memcached: $MC_BIN; load: $LOAD_SHOWN"
log "$ROUNDS round(s) of ${SECS}s runs; threads: $THREADS; load average $load_start"
rates=()
for threads in $THREADS; do
    log "[-t $threads, closed loop: $SOCKETS sockets x $OUTSTANDING in flight]"
    start_all "$threads"
    for s in "${SERVERS[@]}"; do warm_up "$s"; done
    rounds closed 0
    if [[ " $LAT_THREADS " == *" $threads "* ]]; then
        rate=${BENCH_RATE:-$(( $(lowest_median_ops "$threads") / 4 ))}
        [ "$rate" -gt 0 ] || rate=20000
        rates+=("-t $threads: $rate/s")
        log "[-t $threads, open loop: $rate requests/s over $SOCKETS sockets]"
        rounds open "$rate"
    fi
    stop_servers
done
elapsed=$(( $(date +%s) - started ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$OUT/.times"

# --- the report ---------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(LC_ALL=C lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || rev="$rev (with local changes)"
cmds=""
for s in "${SERVERS[@]}"; do
    server_args "$s" T PORT
    cmds+="${cmd[*]}"$'\n'
done
cmds=${cmds//$RMC_BIN/$RMC_SHOWN}
load_args PORT 0 "$SECS"
cmds+="$LOAD_SHOWN ${load[*]} --no-preload --json"$'\n'
load_args PORT R "$SECS"
cmds+="$LOAD_SHOWN ${load[*]} --no-preload --json"$'\n'
load_args PORT 0 1
cmds+="$LOAD_SHOWN ${load[*]} --preload-tcp PORT   # warm-up, once per server"

BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') BENCH_KERNEL=$(uname -r)
BENCH_CPU=${cpu_model:-unknown} BENCH_CORES=$(nproc --all)
BENCH_RMC="rmemcached $rev" BENCH_MC=$("$MC_BIN" -V 2>&1 | head -1)
BENCH_CMDS=$cmds BENCH_RATES="${rates[*]:-none}"
export RUNS REPORT SECS ROUNDS SOCKETS CLK_TCK elapsed load_start load_end
export BENCH_DATE BENCH_KERNEL BENCH_CPU BENCH_CORES BENCH_RMC BENCH_MC BENCH_CMDS BENCH_RATES
python3 - <<'EOF'
import csv, os, statistics

env = os.environ
with open(env["RUNS"]) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
servers = ["shared", "reuseport", "memcached"]

def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None

def sel(loop, t, s, ok=True):
    return [r for r in rows if r["loop"] == loop and r["threads"] == t and r["server"] == s
            and (r["status"] == "ok" or not ok)]

def med(loop, t, s, field):
    v = [num(r[field]) for r in sel(loop, t, s)]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None

def span(loop, t, s, field, spec):
    v = [num(r[field]) for r in sel(loop, t, s)]
    v = [x for x in v if x is not None]
    return "-" if not v else (spec + "–" + spec) % (min(v), max(v))

def total(loop, t, s, field):
    v = [num(r[field]) for r in sel(loop, t, s, ok=False)]
    v = [x for x in v if x is not None]
    return "%d" % sum(v) if v else "-"

def fmt(x, spec):
    return "-" if x is None else spec % x

def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)

NOISY = 25  # % of one core of other work that marks a run as disturbed

def paired(loop, t, field, a, b):
    """Per-round (ratio a/b of one field, disturbed?), in round order."""
    out = []
    for rnd in sorted({r["round"] for r in rows if r["loop"] == loop and r["threads"] == t}, key=int):
        x = [r for r in sel(loop, t, a) if r["round"] == rnd]
        y = [r for r in sel(loop, t, b) if r["round"] == rnd]
        if x and y and num(x[0][field]) is not None and num(y[0][field]):
            noisy = any((num(r["other_cpu_pct"]) or 0) > NOISY for r in (x[0], y[0]))
            out.append((num(x[0][field]) / num(y[0][field]), noisy))
    return out

def table(loop):
    head = ["-t", "server", "ops/s", "ops/s min–max", "vs shared", "vs mc",
            "CPU µs/op", "CPU min–max", "vs shared", "vs mc", "user µs/op", "sys µs/op",
            "lost", "UDP drops", "sockets", "busiest worker %", "p50 µs", "p99 µs",
            "server / client / other CPU %"]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    ts = []
    for r in rows:
        if r["loop"] == loop and r["threads"] not in ts:
            ts.append(r["threads"])
    for t in ts:
        ops = {s: med(loop, t, s, "ops_per_sec") for s in servers}
        cpu = {s: med(loop, t, s, "cpu_us_per_op") for s in servers}
        for s in servers:
            failed = len(sel(loop, t, s, ok=False)) - len(sel(loop, t, s))
            name = s + (" (%d failed)" % failed if failed else "")
            out.append("| " + " | ".join([
                t, name, fmt(ops[s], "%.0f"), span(loop, t, s, "ops_per_sec", "%.0f"),
                ratio(ops[s], ops["shared"]), ratio(ops[s], ops["memcached"]),
                fmt(cpu[s], "%.2f"), span(loop, t, s, "cpu_us_per_op", "%.2f"),
                ratio(cpu[s], cpu["shared"]), ratio(cpu[s], cpu["memcached"]),
                fmt(med(loop, t, s, "user_us_per_op"), "%.2f"),
                fmt(med(loop, t, s, "sys_us_per_op"), "%.2f"),
                total(loop, t, s, "lost"), total(loop, t, s, "udp_drops"),
                fmt(med(loop, t, s, "udp_sockets"), "%.0f"),
                fmt(med(loop, t, s, "busiest_worker_pct"), "%.0f"),
                fmt(med(loop, t, s, "p50_us"), "%.0f"), fmt(med(loop, t, s, "p99_us"), "%.0f"),
                " / ".join(fmt(med(loop, t, s, f), "%.0f")
                           for f in ("server_cpu_pct", "client_cpu_pct", "other_cpu_pct")),
            ]) + " |")
    return "\n".join(out), ts

def rounds_text(loop, ts):
    lines = []
    for t in ts:
        for field, what, better in (("ops_per_sec", "ops/s", 1), ("cpu_us_per_op", "CPU µs/op", -1)):
            for b in ("shared", "memcached"):
                v = paired(loop, t, field, "reuseport", b)
                if not v:
                    continue
                wins = sum(1 for x, _ in v if (x - 1) * better > 0)
                quiet = [x for x, n in v if not n]
                qwins = sum(1 for x in quiet if (x - 1) * better > 0)
                lines.append("- -t %s, %s, reuseport / %s per round: %s (median %.2f; reuseport better "
                             "in %d of %d; undisturbed rounds: %s)"
                             % (t, what, b, " ".join("%.2f%s" % (x, "*" if n else "") for x, n in v),
                                statistics.median(x for x, _ in v), wins, len(v),
                                "none" if not quiet else "median %.2f, better in %d of %d"
                                % (statistics.median(quiet), qwins, len(quiet))))
    return "\n".join(lines)

closed, closed_ts = table("closed")
opened, open_ts = table("open")
md = f"""# UDP: rmemcached -o udp_reuseport vs its shared socket vs memcached

- date: {env['BENCH_DATE']}
- kernel: {env['BENCH_KERNEL']}
- CPU: {env['BENCH_CPU']}, {env['BENCH_CORES']} cores; load average {env['load_start']} at the start,
  {env['load_end']} at the end (other agents' work on a shared machine shows up here and
  in the "other CPU" column)
- servers: {env['BENCH_RMC']} (shared: default, every worker reads the one UDP socket;
  reuseport: -o udp_reuseport, one SO_REUSEPORT socket per worker), {env['BENCH_MC']}
- {env['ROUNDS']} round(s) of {env['SECS']} s runs per server, the servers alternating in an order
  that rotates each round, after one unmeasured warm-up run each; medians over the rounds
  (lost, UDP drops: sums); open-loop rate {env['BENCH_RATES']} (a quarter of the lowest
  closed-loop median unless set); whole benchmark {env['elapsed']} s
- commands (PORT: free for TCP and UDP, one per server, fresh servers for each -t; T: -t value;
  R: open-loop rate; -u nobody only when run as root):

```
{env['BENCH_CMDS']}
```

**The machine has {env['BENCH_CORES']} cores and nothing is pinned**: the server's threads share
them with rmc-load's {env['SOCKETS']} client threads (twice that in open loop), so closed-loop ops/s
measure server and client together, and a server that uses less CPU leaves more to the client.
No pinning can give the server its own cores here without leaving it fewer cores than threads.
The server's CPU per operation is the fairer comparison; the last column shows how the CPU was
shared (in % of one core; 200% = both cores). With -t 4 each core runs two server threads.
CPU per operation also depends on the load: a server that keeps up with more requests finds more
datagrams waiting at each wake-up and takes them in fewer system calls, so in closed loop part of
a CPU µs/op lead can follow from an ops/s lead; the open-loop runs compare at one fixed rate.

- ops/s: rmc-load's completed requests per second; CPU µs/op: server utime+stime (/proc/PID/stat,
  all threads) over the run / completed requests, split into user (utime) and sys (stime); clock
  ticks of {1e3 / float(env['CLK_TCK']):g} ms; softirq work such as loopback delivery is in it only if the
  kernel charges it to the process; vs shared, vs mc: ratios of the medians (< 1 is better for CPU)
- lost: requests without a whole reply within 1 s; UDP drops: datagrams the server's sockets
  dropped, receive buffer full (/proc/net/udp); sockets: UDP sockets bound to the port (a check:
  1 shared, T with reuseport); busiest worker: its share of all workers' CPU (100/T % is even)
- p50, p99: rmc-load's latency, from the send time (closed loop) or the scheduled send time
  (open loop)

## Closed loop ({env['SOCKETS']} sockets, each with its requests in flight)

{closed}

Per round (the servers ran back to back in each round, so these pair up runs under similar noise;
\\* marks a round in which one of the two runs had more than 25% of a core of other work):

{rounds_text("closed", closed_ts)}
"""
if open_ts:
    md += f"""
## Open loop (fixed rate, {env['BENCH_RATES']})

{opened}

{rounds_text("open", open_ts)}
"""
with open(env["REPORT"], "w") as f:
    f.write(md)
EOF

cat "$REPORT"
log "wrote $REPORT and $OUT/runs.tsv ($elapsed s)"
