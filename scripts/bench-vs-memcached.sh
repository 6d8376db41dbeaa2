#!/usr/bin/env bash
# Throughput and CPU benchmark: rmemcached against the real memcached, under
# memaslap (Debian ships it as `memcaslap`), over UDP and TCP; then, under
# the project's own rmc-load, latency at a fixed UDP load, and TCP over TLS.
#
# usage: scripts/bench-vs-memcached.sh [--quick]
#
# One command on a fresh Debian machine with at least 2 cores: it installs
# what is missing with apt-get (memcached, libmemcached-tools, gnuplot-nox,
# util-linux, python3; through sudo when not root), builds rmemcached and
# rmc-load with `cargo build --release --workspace` (cargo itself must be
# there: https://rustup.rs),
# runs everything, and writes
#     target/bench/results.md   the table below, with the machine and the
#                               exact command lines (also printed at the end)
#     target/bench/ops.png      ops/s of both servers per combination
#     target/bench/runs.tsv     every measured run
#     target/bench/latency.tsv  the rmc-load runs behind the latency table
#                               (latency at half of memcached's peak UDP rate)
#     target/bench/tls.tsv      the rmc-load runs behind the TLS table
#     target/bench/logs/        every memaslap and rmc-load output
#
# Set-up, on 127.0.0.1 only: for each combination of transport (udp, tcp),
# value size (32, 1000 bytes) and concurrency (memaslap -c 32, 128), a fresh
# rmemcached and a fresh memcached are started with the same flags,
#     taskset -c 0 SERVER -l 127.0.0.1 -p PORT -U PORT -m 64 -t 1 [-u nobody]
# (PORT free for both TCP and UDP, as memaslap --udp wants them equal;
# -u nobody only when run as root), and loaded in turn from the other core,
#     taskset -c 1 memcaslap -s 127.0.0.1:PORT -F CONFIG -t 5s -T 1 -c C -o 0.9 [--udp]
# where CONFIG gives 32-byte keys, fixed-size values and 90% gets, 10% sets.
# Runs alternate rmemcached, memcached, rmemcached, ... (3 rounds each).
#
# Gets hit: memaslap only gets keys it has stored in the same run (a get
# aimed at a slot of its key window not stored yet is sent as a set; its
# own warm-up phase exists only for 100% gets, and a fill beforehand cannot
# know its keys), so a get misses only when the server evicted the item.
# By default every memaslap set stores a new key: a 5-second UDP run with
# 1000-byte values then stores more than -m 64 holds, and gets miss (and a
# miss is a cheaper reply than a hit). `-o 0.9` (BENCH_OVERWRITE) makes 90%
# of the sets overwrite a key stored earlier in the run, so only about 1% of
# all operations add a key and the data stays well within 64 MB. Before the
# measured rounds each server also gets one unmeasured memaslap run
# (BENCH_WARMUP_SECS) to take it past its first allocations.
#
# Measured per run, then the median over the rounds:
#   ops/s       memaslap's final "Run time: 5.0s Ops: N TPS: N ..." line (TPS)
#   CPU us/op   server utime+stime from /proc/PID/stat (clock ticks,
#               getconf CLK_TCK) sampled just before and just after the run:
#               delta_cpu_seconds * 1e6 / Ops
#   user, sys   the same for utime (field 14) and stime (field 15) apart:
#               the server's own code, and the kernel working for it
#               (system calls: recvmmsg, sendmmsg, epoll_wait, ...); each
#               is a median of its own, so user + sys need not equal the
#               CPU median exactly. Each is counted in whole clock ticks
#               (10 ms at CLK_TCK 100): in a short run a few ticks of user
#               time are all there is, so --quick gives it only roughly
#   RSS         VmRSS from /proc/PID/status after the run
#   timeouts    memaslap's udp_timeout (UDP only), summed over the rounds
#   UDP drops   datagrams the server's UDP socket dropped because its receive
#               buffer was full (last column of /proc/net/udp), summed over
#               the rounds and their retries
#   misses      memaslap's get_misses, summed over the rounds
#   other CPU   user+system time of the machine (/proc/stat) during a run
#               that was neither the server's nor memaslap's, in % of one
#               core; the table shows the most of any run of the combination
# Kernels that account irq time apart (CONFIG_IRQ_TIME_ACCOUNTING) charge
# softirq work, such as loopback packet delivery, to no process: it is in
# neither server's CPU us/op.
# and the ratios rmemcached/memcached of the medians. Absolute numbers vary
# from machine to machine and run to run; keep the machine otherwise idle.
#
# TLS: memaslap does not speak TLS, so rmc-load (target/release/rmc-load)
# loads both servers, started as above plus
#     -Z -o ssl_chain_cert=tests/tls/server.pem,ssl_key=tests/tls/server.key
# (the same certificate and key for both; as root the files must be
# readable by nobody), over TLS, trusting tests/tls/ca.pem:
#     taskset -c 1 rmc-load --tcp PORT --tls --tls-ca tests/tls/ca.pem --mode mixed
#         --keys 1000 --value-size 32 --sockets 4 --outstanding 8 --duration 5
# (closed loop: 4 connections, 8 requests in flight on each, 32 in all as
# memaslap's -c 32; 90% gets, 10% sets; each connection's handshake done
# before the measured run starts), and the same load over plain TCP against
# a second pair started without -Z, as the baseline of the same generator.
# Each server gets one unmeasured run that also stores the keys, then the
# rounds alternate the two servers as above. Reported: ops/s (rmc-load's
# completed requests per second), CPU us/op, user and sys as above (over
# rmc-load's completed requests), the CPU of the server and of rmc-load in
# % of one core (the one near 100% limits ops/s), the ratios
# rmemcached/memcached, and each server's CPU per op over TLS / over TCP.
#
# Known memaslap issue: with --udp it sometimes dies with
#   ms_sort_udp_packet: Assertion `req_id == c->request_id' failed
# or waits forever, against memcached too, roughly 1 run in 4 at -c 128:
# its unconnected SO_REUSEADDR UDP sockets can be given the same ephemeral
# port, and one then reads the other's replies. A run in which the server
# dropped datagrams (see UDP drops; memaslap never resends a request) often
# ends the same way, or hangs after its report. Such a run (the assertion
# on stderr, or killed by `timeout`) is retried, up to BENCH_RETRIES times,
# and the retries are counted in the table; a run without a result after
# that is reported as failed and left out of the medians. Every memaslap
# run is bounded by `timeout` (run time + 6 s), so a hung one ends too.
#
# env: BENCH_SECS         seconds per measured run (default 5)
#      BENCH_ROUNDS       rounds per server and combination (default 3)
#      BENCH_QUICK=1      same as --quick: 1 round of 2-second runs
#      BENCH_WARMUP_SECS  unmeasured warm-up run per server (default 1; 0: none)
#      BENCH_RETRIES      retries of a run memaslap broke (default 3)
#      BENCH_TRANSPORTS   default "udp tcp"; " " (blank): no memaslap run,
#                         only the rmc-load tables (the latency one at
#                         BENCH_LAT_RATE, default 50000/s)
#      BENCH_SIZES        value sizes, default "32 1000"
#      BENCH_CONCURRENCY  memaslap -c values, default "32 128"
#      BENCH_KEY_SIZE     key length (default 32; memaslap wants 16..250)
#      BENCH_OVERWRITE    memaslap -o, share of sets that overwrite (default 0.9)
#      MEM_MB             -m for both servers (default 64)
#      BENCH_TLS=0        leave out the TLS table (default 1)
#      BENCH_TLS_SOCKETS  rmc-load --sockets for the TLS table (default 4)
#      BENCH_TLS_OUTSTANDING  rmc-load --outstanding for it (default 8)
#      BENCH_TLS_CERT, BENCH_TLS_KEY, BENCH_TLS_CA  the servers' certificate
#                         and key, and the CA rmc-load trusts (default
#                         tests/tls/server.pem, server.key, ca.pem)
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
    SECS=${BENCH_SECS:-5} ROUNDS=${BENCH_ROUNDS:-3}
fi
WARMUP=${BENCH_WARMUP_SECS:-1}
RETRIES=${BENCH_RETRIES:-3}
TRANSPORTS=${BENCH_TRANSPORTS:-udp tcp}
SIZES=${BENCH_SIZES:-32 1000}
CONCS=${BENCH_CONCURRENCY:-32 128}
KEY_SIZE=${BENCH_KEY_SIZE:-32}
OVERWRITE=${BENCH_OVERWRITE:-0.9}
MEM_MB=${MEM_MB:-64}
MC_BIN=${MC_BIN:-/usr/bin/memcached}
TLS=${BENCH_TLS:-1}
TLS_SOCKETS=${BENCH_TLS_SOCKETS:-4}
TLS_OUTSTANDING=${BENCH_TLS_OUTSTANDING:-8}
TLS_CERT=${BENCH_TLS_CERT:-tests/tls/server.pem}
TLS_KEY=${BENCH_TLS_KEY:-tests/tls/server.key}
TLS_CA=${BENCH_TLS_CA:-tests/tls/ca.pem}
OUT=target/bench
started=$(date +%s)
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

# --- what the benchmark needs ---------------------------------------------
require_memaslap_setup gnuplot:gnuplot-nox python3:python3
release_build

CLK_TCK=$(getconf CLK_TCK)
if [ "$TLS" = 1 ]; then
    for f in "$TLS_CERT" "$TLS_KEY" "$TLS_CA"; do
        [ -r "$f" ] || die "TLS: cannot read $f"
    done
    # The servers read the certificate and key as nobody.
    if [ "$(id -u)" -eq 0 ]; then
        for f in "$TLS_CERT" "$TLS_KEY"; do
            runuser -u nobody -- test -r "$f" || die "TLS: nobody cannot read $f (the servers run as nobody)"
        done
    fi
fi

rm -rf "$OUT/logs"
mkdir -p "$OUT/logs"
# Run a copy, so that a rebuild during the benchmark changes nothing.
cp --remove-destination "$RMC_BIN" "$OUT/rmemcached"
RMC_SHOWN=$RMC_BIN RMC_BIN=$OUT/rmemcached
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
RUNS=$OUT/runs.tsv
printf 'transport\tvalue\tconc\tserver\tround\tstatus\tops\ttps\tcpu_us_per_op\tuser_us_per_op\tsys_us_per_op\trss_kb\tget_misses\tudp_timeout\tpacket_drop\tserver_udp_drops\tretries\tother_cpu_pct\n' >"$RUNS"

# --- helpers ----------------------------------------------------------------

# start_pair LOGBASE [FLAG ...]: both servers on fresh ports, the FLAGs
# added to both; sets rm_port, rm_pid, mc_port, mc_pid.
start_pair() {
    local attempt base=$1
    shift
    for attempt in 1 2 3 4 5; do
        read -r rm_port mc_port < <(free_ports 2)
        if start_server "$RMC_BIN" "$rm_port" "$base-rmemcached.server.log" "$@"; then
            rm_pid=$server_pid
            if start_server "$MC_BIN" "$mc_port" "$base-memcached.server.log" "$@"; then
                mc_pid=$server_pid
                return
            fi
        fi
        stop_servers
        pids=()
    done
    die "could not start both servers"
}

# A run memaslap's UDP sockets broke: its assertion, or killed as late.
is_clash() {
    grep -q 'ms_sort_udp_packet: Assertion' "$1.err" 2>/dev/null || [ "$2" = 124 ] || [ "$2" = 137 ]
}

# memaslap TRANSPORT SIZE CONC PORT SECS LOGBASE: runs one load, bounded by
# timeout; returns memaslap's exit status (124/137 when it had to be killed).
memaslap_run() {
    local transport=$1 size=$2 conc=$3 port=$4 secs=$5 base=$6 rc=0
    local udp=()
    [ "$transport" = udp ] && udp=(--udp)
    # In a subshell (not exec'd: the `exit`), so that the shell's "Aborted"
    # notice goes to the .err file too.
    (timeout -k 2 $((secs + 6)) taskset -c 1 "$MEMASLAP" -s "127.0.0.1:$port" \
        -F "$OUT/memaslap-$size.cnf" -t "${secs}s" -T 1 -c "$conc" -o "$OVERWRITE" "${udp[@]}" \
        </dev/null >"$base.out"; exit $?) 2>"$base.err" || rc=$?
    echo "exit status $rc" >>"$base.err"
    return "$rc"
}

# per_op TICKS OPS: TICKS clock ticks of CPU in microseconds per operation.
per_op() {
    awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.3f", (n > 0 ? d / hz * 1e6 / n : 0) }'
}

# report_value LOG NAME: the number after "NAME:" in memaslap's report.
report_value() { awk -v k="$2:" '$1 == k { v = $2 } END { print (v == "" ? "-" : v) }' "$1"; }

# measure TRANSPORT SIZE CONC NAME PORT PID ROUND: one measured run, with
# retries of broken UDP runs; appends a line to runs.tsv.
measure() {
    local transport=$1 size=$2 conc=$3 name=$4 port=$5 pid=$6 round=$7
    local attempt=0 rc before after base status line ops tps cpu user sys rss drops0 drops
    local busy0 kids0 t0 busy1 kids1 t1 other user0 sys0 user1 sys1
    drops0=$(udp_drops "$port")
    while :; do
        base=$OUT/logs/$transport-$size-c$conc-$name-r$round-a$attempt
        children_ticks
        kids0=$REPLY busy0=$(machine_busy) t0=$(date +%s%N)
        read -r user0 sys0 < <(cpu_ticks "$pid")
        rc=0
        memaslap_run "$transport" "$size" "$conc" "$port" "$SECS" "$base" || rc=$?
        read -r user1 sys1 < <(cpu_ticks "$pid")
        before=$((user0 + sys0)) after=$((user1 + sys1))
        t1=$(date +%s%N) busy1=$(machine_busy)
        children_ticks
        kids1=$REPLY
        kill -0 "$pid" 2>/dev/null || { cat "$base.err" >&2; die "$name died under memaslap ($base.out)"; }
        if [ "$rc" -ne 0 ] && [ "$transport" = udp ] && is_clash "$base" "$rc" \
            && [ "$attempt" -lt "$RETRIES" ]; then
            attempt=$((attempt + 1))
            log "    $name round $round: memaslap's UDP run broke (exit $rc: its assertion, or hung), retry $attempt"
            continue
        fi
        break
    done
    line=$(grep '^Run time:' "$base.out" | tail -1 || true)
    if [ -n "$line" ]; then
        # late: killed after its report, which then stays out of the medians
        status=ok
        [ "$rc" -eq 0 ] || status=late
        # Run time: 5.0s Ops: 352030 TPS: 117333 Net_rate: 15.0M/s
        ops=$(awk '{ for (i = 1; i < NF; i++) if ($i == "Ops:") print $(i + 1) }' <<<"$line")
        tps=$(awk '{ for (i = 1; i < NF; i++) if ($i == "TPS:") print $(i + 1) }' <<<"$line")
        cpu=$(per_op $((after - before)) "$ops")
        user=$(per_op $((user1 - user0)) "$ops")
        sys=$(per_op $((sys1 - sys0)) "$ops")
        # What neither the server nor memaslap used, in % of one core.
        other=$(awk -v o=$((busy1 - busy0 - (after - before) - (kids1 - kids0))) \
            -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { v = o / hz / (ns / 1e9) * 100; printf "%.0f", (v < 0 ? 0 : v) }')
    else
        status=failed ops=- tps=- cpu=- user=- sys=- other=-
    fi
    [ "$status" = ok ] || log "    $name round $round: memaslap exit $rc, no result in the medians (see $base.err)"
    rss=$(rss_kb "$pid")
    drops=$(( $(udp_drops "$port") - drops0 ))
    [ "$transport" = udp ] || drops=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$transport" "$size" "$conc" "$name" "$round" "$status" "$ops" "$tps" "$cpu" "$user" "$sys" "$rss" \
        "$(report_value "$base.out" get_misses)" "$(report_value "$base.out" udp_timeout)" \
        "$(report_value "$base.out" packet_drop)" "$drops" "$attempt" "$other" >>"$RUNS"
    log "    $name round $round: $tps ops/s, $cpu us/op CPU ($user user, $sys sys), RSS $((rss / 1024)) MiB, UDP drops $drops, retries $attempt, other CPU $other%"
}

# --- the runs -----------------------------------------------------------------
log "rmemcached: $RMC_SHOWN; memcached: $MC_BIN; load: $MEMASLAP"
log "$ROUNDS round(s) of ${SECS}s runs per server, warm-up ${WARMUP}s"
for size in $SIZES; do memaslap_config "$OUT/memaslap-$size.cnf" "$KEY_SIZE" "$size"; done
for transport in $TRANSPORTS; do
    for size in $SIZES; do
        for conc in $CONCS; do
            log "[$transport, $size-byte values, -c $conc]"
            start_pair "$OUT/logs/$transport-$size-c$conc"
            if [ "$WARMUP" -gt 0 ]; then
                memaslap_run "$transport" "$size" "$conc" "$rm_port" "$WARMUP" \
                    "$OUT/logs/$transport-$size-c$conc-rmemcached-warmup" || true
                memaslap_run "$transport" "$size" "$conc" "$mc_port" "$WARMUP" \
                    "$OUT/logs/$transport-$size-c$conc-memcached-warmup" || true
            fi
            for round in $(seq "$ROUNDS"); do
                measure "$transport" "$size" "$conc" rmemcached "$rm_port" "$rm_pid" "$round"
                measure "$transport" "$size" "$conc" memcached "$mc_port" "$mc_pid" "$round"
            done
            stop_servers
            pids=()
        done
    done
done
elapsed=$(( $(date +%s) - started ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report ---------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(LC_ALL=C lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || rev="$rev (with local changes)"
udp_flag=""
[[ " $TRANSPORTS " == *" udp "* ]] && udp_flag=" [--udp]"

export RUNS OUT SECS ROUNDS WARMUP RETRIES MEM_MB KEY_SIZE OVERWRITE elapsed load_start load_end CLK_TCK
export TLS_SOCKETS TLS_OUTSTANDING TLS_CERT TLS_KEY
BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') BENCH_KERNEL=$(uname -r)
BENCH_CPU=${cpu_model:-unknown} BENCH_CORES=$(nproc --all)
BENCH_RMC="rmemcached $rev" BENCH_MC=$("$MC_BIN" -V 2>&1 | head -1)
BENCH_LOAD="$(basename "$MEMASLAP") $("$MEMASLAP" -V 2>&1 | head -1 | awk '{ print $NF }')"
CMD_RMC="taskset -c 0 $RMC_SHOWN -l 127.0.0.1 -p PORT -U PORT -m $MEM_MB -t 1${user_args[*]:+ ${user_args[*]}}"
CMD_MC="taskset -c 0 $MC_BIN -l 127.0.0.1 -p PORT -U PORT -m $MEM_MB -t 1${user_args[*]:+ ${user_args[*]}}"
CMD_LOAD="taskset -c 1 $(basename "$MEMASLAP") -s 127.0.0.1:PORT -F memaslap-VALUE.cnf -t ${SECS}s -T 1 -c CONC -o $OVERWRITE$udp_flag"
CONFIG_EXAMPLE=$(cat "$OUT/memaslap-${SIZES%% *}.cnf")
export BENCH_DATE BENCH_KERNEL BENCH_CPU BENCH_CORES BENCH_RMC BENCH_MC BENCH_LOAD
export CMD_RMC CMD_MC CMD_LOAD CONFIG_EXAMPLE
python3 - <<'EOF'
import csv, os, statistics

env = os.environ
out = env["OUT"]
rows = list(csv.DictReader(open(env["RUNS"]), delimiter="\t"))

combos = []
for r in rows:
    c = (r["transport"], r["value"], r["conc"])
    if c not in combos:
        combos.append(c)

def num(x):
    try:
        return float(x)
    except ValueError:
        return None

def med(c, server, field):
    v = [num(r[field]) for r in rows
         if (r["transport"], r["value"], r["conc"]) == c and r["server"] == server
         and r["status"] == "ok" and num(r[field]) is not None]
    return statistics.median(v) if v else None

def total(c, server, field):
    v = [num(r[field]) for r in rows
         if (r["transport"], r["value"], r["conc"]) == c and r["server"] == server]
    v = [x for x in v if x is not None]
    return "%d" % sum(v) if v else "-"

def failed(c, server):
    return sum(1 for r in rows if (r["transport"], r["value"], r["conc"]) == c
               and r["server"] == server and r["status"] != "ok")

def other(c):
    v = [num(r["other_cpu_pct"]) for r in rows
         if (r["transport"], r["value"], r["conc"]) == c and r["status"] == "ok"]
    v = [x for x in v if x is not None]
    return "%d" % max(v) if v else "-"

def fmt(x, spec):
    return "-" if x is None else spec % x

def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)

head = ["transport", "value B", "conc", "ops/s rmc", "ops/s mc", "rmc/mc",
        "CPU µs/op rmc", "CPU µs/op mc", "rmc/mc", "user µs/op rmc/mc", "sys µs/op rmc/mc",
        "RSS MiB rmc", "RSS MiB mc",
        "timeouts rmc/mc", "UDP drops rmc/mc", "misses rmc/mc", "retries rmc/mc",
        "other CPU % max"]
table = ["| " + " | ".join(head) + " |",
         "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
dat = []
for c in combos:
    ops = {s: med(c, s, "tps") for s in ("rmemcached", "memcached")}
    cpu = {s: med(c, s, "cpu_us_per_op") for s in ("rmemcached", "memcached")}
    user = {s: med(c, s, "user_us_per_op") for s in ("rmemcached", "memcached")}
    sys_ = {s: med(c, s, "sys_us_per_op") for s in ("rmemcached", "memcached")}
    rss = {s: med(c, s, "rss_kb") for s in ("rmemcached", "memcached")}
    retries = []
    for s in ("rmemcached", "memcached"):
        t = total(c, s, "retries")
        if failed(c, s):
            t += " (%d failed)" % failed(c, s)
        retries.append(t)
    timeouts = drops = "-"
    if c[0] == "udp":
        timeouts = "%s / %s" % (total(c, "rmemcached", "udp_timeout"),
                                total(c, "memcached", "udp_timeout"))
        drops = "%s / %s" % (total(c, "rmemcached", "server_udp_drops"),
                             total(c, "memcached", "server_udp_drops"))
    table.append("| " + " | ".join([
        c[0], c[1], c[2],
        fmt(ops["rmemcached"], "%.0f"), fmt(ops["memcached"], "%.0f"),
        ratio(ops["rmemcached"], ops["memcached"]),
        fmt(cpu["rmemcached"], "%.2f"), fmt(cpu["memcached"], "%.2f"),
        ratio(cpu["rmemcached"], cpu["memcached"]),
        "%s / %s" % (fmt(user["rmemcached"], "%.2f"), fmt(user["memcached"], "%.2f")),
        "%s / %s" % (fmt(sys_["rmemcached"], "%.2f"), fmt(sys_["memcached"], "%.2f")),
        fmt(rss["rmemcached"] and rss["rmemcached"] / 1024, "%.1f"),
        fmt(rss["memcached"] and rss["memcached"] / 1024, "%.1f"),
        timeouts, drops,
        "%s / %s" % (total(c, "rmemcached", "get_misses"), total(c, "memcached", "get_misses")),
        " / ".join(retries), other(c)]) + " |")
    dat.append('"%s %sB c%s" %s %s' % (c[0], c[1], c[2],
               fmt(ops["rmemcached"], "%.0f"), fmt(ops["memcached"], "%.0f")))

with open(os.path.join(out, "ops.dat"), "w") as f:
    f.write("\n".join(dat) + "\n")

md = f"""# rmemcached vs memcached: memaslap, 90% gets / 10% sets

- date: {env['BENCH_DATE']}
- kernel: {env['BENCH_KERNEL']}
- CPU: {env['BENCH_CPU']}, {env['BENCH_CORES']} cores; load average {env['load_start']} at the start, {env['load_end']} at the end
- servers: {env['BENCH_RMC']}, {env['BENCH_MC']}; load: {env['BENCH_LOAD']}
- {env['ROUNDS']} round(s) of {env['SECS']} s per server and combination, alternating
  rmemcached, memcached, ...; after one unmeasured {env['WARMUP']} s warm-up run each;
  medians over the rounds (timeouts, misses, retries: sums); whole benchmark {env['elapsed']} s
- commands (PORT: free for TCP and UDP, new for each combination; both servers
  fresh for each combination):

```
{env['CMD_RMC']}
{env['CMD_MC']}
{env['CMD_LOAD']}
```

- memaslap-VALUE.cnf ({env['KEY_SIZE']}-byte keys, VALUE-byte values, cmd 0 = set 10%, cmd 1 = get 90%),
  e.g. below; `-o {env['OVERWRITE']}`: that share of sets overwrites a key stored earlier in the run

```
{env['CONFIG_EXAMPLE']}
```

- ops/s: memaslap's TPS; CPU µs/op: server utime+stime (/proc/PID/stat) over the run / memaslap's Ops
  (softirq work such as loopback packet delivery is in it only if the kernel charges it to the process);
  user µs/op and sys µs/op: the same split into utime (the server's own code) and stime (the kernel
  working for it: system calls, and the packet work charged to it), rmemcached / memcached, each a
  median of its own (so user + sys need not equal the CPU median exactly); counted in clock ticks of
  {1e3 / float(env['CLK_TCK']):g} ms, so a short run measures the small user share only roughly;
  RSS: VmRSS after the run; timeouts: memaslap's udp_timeout; UDP drops: datagrams the
  server's socket dropped, receive buffer full (/proc/net/udp), retries included;
  misses: memaslap's get_misses; retries: reruns after memaslap's UDP request-id
  assertion or hang (failed: no good run after all retries, left out of the medians;
  runs.tsv keeps the report of a last run that hung after it, as status "late");
  other CPU: what processes other than the server and memaslap used during a run, in %
  of one core (machine user+system time from /proc/stat minus both), the most of any run:
  more than a few % means other work disturbed the numbers

{chr(10).join(table)}
"""
with open(os.path.join(out, "results.md"), "w") as f:
    f.write(md)
EOF

if [ -z "${TRANSPORTS// /}" ]; then
    log "no memaslap runs: no $OUT/ops.png"
else
gnuplot <<EOF || log "gnuplot failed: no $OUT/ops.png"
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1000,560 noenhanced
} else {
    set terminal png size 1000,560 noenhanced
}
set output "$OUT/ops.png"
set title "memaslap 90% get / 10% set, ${SECS} s runs, medians of $ROUNDS (server on 1 core)"
set ylabel "ops/s"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 scale 0
set grid ytics
set key top right
plot "$OUT/ops.dat" using 2:xtic(1) title "rmemcached" lc rgb "#c0392b", \
     "" using 3 title "memcached" lc rgb "#2c7fb8"
EOF
fi

# --- latency at a fixed load (rmc-load) ------------------------------------
# The project's own generator, open loop over UDP: 32-byte gets at half of
# memcached's best median UDP rate above (BENCH_LAT_RATE overrides), from
# core 1, two sockets, alternating servers for $ROUNDS rounds; medians of
# its percentiles (measured from each request's scheduled send time).
RMC_LOAD=${RMC_LOAD:-$(dirname "$RMC_SHOWN")/rmc-load}
if [ -x "$RMC_LOAD" ]; then
    cp --remove-destination "$RMC_LOAD" "$OUT/rmc-load"
    peak=$(awk -F'\t' '$1 == "udp" && $4 == "memcached" && $6 == "ok" { if ($8 > m) m = $8 } END { print int(m) }' "$RUNS")
    rate=${BENCH_LAT_RATE:-$(( peak / 2 ))}
    [ "$rate" -gt 0 ] || rate=50000
    log "latency at a fixed load: UDP gets at $rate/s"
    start_pair "$OUT/logs/latency"
    LAT=$OUT/latency.tsv
    : >"$LAT"
    for round in $(seq "$ROUNDS"); do
        for server in rmemcached memcached; do
            port=$rm_port
            [ "$server" = memcached ] && port=$mc_port
            json=$(timeout $(( SECS + 30 )) taskset -c 1 "$OUT/rmc-load" --udp "$port" --mode get \
                --keys 1000 --value-size 32 --rate "$rate" --sockets 2 --duration "$SECS" \
                --json 2>>"$OUT/logs/latency-$server.log" | tail -1) || json=""
            printf '%s\t%s\t%s\n' "$server" "$round" "$json" >>"$LAT"
        done
    done
    stop_servers
    pids=()
    python3 - "$LAT" "$rate" "$OUT/results.md" <<'PYEOF'
import json, statistics, sys
lat, rate, md = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(lat):
    server, _, js = line.rstrip("\n").split("\t", 2)
    try:
        runs.setdefault(server, []).append(json.loads(js))
    except ValueError:
        pass
def med(server, key):
    vals = [r[key] for r in runs.get(server, [])]
    return statistics.median(vals) if vals else float("nan")
rows = ["| server | ops/s | p50 µs | p99 µs | p99.9 µs | max µs | lost |",
        "|---|---:|---:|---:|---:|---:|---:|"]
for s in ["rmemcached", "memcached"]:
    lost = sum(r["lost"] for r in runs.get(s, []))
    rows.append(f"| {s} | {med(s, 'ops_per_sec'):.0f} | {med(s, 'p50_us'):.1f} | {med(s, 'p99_us'):.1f} "
                f"| {med(s, 'p999_us'):.1f} | {med(s, 'max_us'):.1f} | {lost} |")
ratio = med("rmemcached", "p99_us") / med("memcached", "p99_us")
with open(md, "a") as f:
    f.write(f"\n## Latency at a fixed load\n\nrmc-load, UDP, open loop, 32-byte gets of 1,000 keys "
            f"at {rate}/s (half of memcached's best median UDP rate above), 2 sockets, from core 1; "
            f"medians over the rounds; latency from each request's scheduled send time.\n\n")
    f.write("\n".join(rows))
    f.write(f"\n\np99 rmemcached/memcached: {ratio:.2f}\n")
PYEOF
else
    log "no rmc-load at $RMC_LOAD: latency table left out"
fi

# --- TLS (rmc-load) -----------------------------------------------------------
# memaslap does not speak TLS, so rmc-load loads both servers here, started
# with -Z and the same certificate and key, over TLS (it finishes every
# handshake before its clock starts), and, as the baseline with the same
# generator, over plain TCP from a second pair started without -Z. Closed
# loop, $TLS_SOCKETS connections with $TLS_OUTSTANDING requests in flight
# each, from core 1; one unmeasured run per server first (it also stores the
# keys), then $ROUNDS alternating rounds of measured runs (--no-preload).
TLS_RUNS=$OUT/tls.tsv
tls_flags=(-Z -o "ssl_chain_cert=$TLS_CERT,ssl_key=$TLS_KEY")
load_flags=(--mode mixed --keys 1000 --value-size 32 --sockets "$TLS_SOCKETS"
    --outstanding "$TLS_OUTSTANDING")

# json_field FILE NAME: the value of NAME (a number, or a string without
# quotes in it) in the JSON line that ends FILE.
json_field() {
    tail -1 "$1" | sed -n -e "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p; t" -e "s/.*\"$2\":\([^,}]*\).*/\1/p"
}

# load_run TRANSPORT PORT SECS LOGBASE [FLAG ...]: one rmc-load run over
# TRANSPORT (tcp, tls), bounded by timeout; returns its exit status.
load_run() {
    local transport=$1 port=$2 secs=$3 base=$4 rc=0 tls=()
    shift 4
    [ "$transport" = tls ] && tls=(--tls --tls-ca "$TLS_CA")
    timeout -k 2 $((${secs%.*} + 30)) taskset -c 1 "$OUT/rmc-load" --tcp "$port" "${tls[@]}" \
        "${load_flags[@]}" --duration "$secs" --json "$@" </dev/null >"$base.out" 2>"$base.err" || rc=$?
    return "$rc"
}

# tls_measure TRANSPORT NAME PORT PID ROUND: one measured rmc-load run;
# appends a line to tls.tsv.
tls_measure() {
    local transport=$1 name=$2 port=$3 pid=$4 round=$5 rc=0 base status
    local user0 sys0 user1 sys1 kids0 kids1 busy0 busy1 t0 t1 ops completed cpu user sys
    local server_pct load_pct other lost errors session
    base=$OUT/logs/rmc-load-$transport-$name-r$round
    children_ticks
    kids0=$REPLY busy0=$(machine_busy) t0=$(date +%s%N)
    read -r user0 sys0 < <(cpu_ticks "$pid")
    load_run "$transport" "$port" "$SECS" "$base" --no-preload || rc=$?
    read -r user1 sys1 < <(cpu_ticks "$pid")
    t1=$(date +%s%N) busy1=$(machine_busy)
    children_ticks
    kids1=$REPLY
    kill -0 "$pid" 2>/dev/null || { cat "$base.err" >&2; die "$name died under rmc-load ($base.out)"; }
    ops=$(json_field "$base.out" ops_per_sec) completed=$(json_field "$base.out" completed)
    if [ "$rc" -eq 0 ] && [ -n "$ops" ] && [ "${completed:-0}" -gt 0 ]; then
        status=ok
        cpu=$(per_op $((user1 + sys1 - user0 - sys0)) "$completed")
        user=$(per_op $((user1 - user0)) "$completed")
        sys=$(per_op $((sys1 - sys0)) "$completed")
        # The server's and rmc-load's CPU, in % of one core, over the run.
        read -r server_pct load_pct other < <(awk -v s=$((user1 + sys1 - user0 - sys0)) \
            -v l=$((kids1 - kids0)) -v b=$((busy1 - busy0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) \
            'BEGIN { t = hz * ns / 1e9 / 100; o = (b - s - l) / t; printf "%.0f %.0f %.0f\n", s / t, l / t, (o < 0 ? 0 : o) }')
        lost=$(json_field "$base.out" lost) errors=$(json_field "$base.out" errors)
        session=$(json_field "$base.out" tls)
    else
        status=failed ops=- completed=- cpu=- user=- sys=- server_pct=- load_pct=- other=- lost=- errors=- session=
        log "    $name round $round: rmc-load exit $rc, no result in the medians (see $base.err)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$transport" "$name" "$round" "$status" "$ops" "$completed" "$cpu" "$user" "$sys" \
        "$server_pct" "$load_pct" "$lost" "$errors" "$other" "${session:--}" >>"$TLS_RUNS"
    log "    $name round $round: $ops ops/s, $cpu us/op CPU ($user user, $sys sys), server CPU $server_pct%, rmc-load CPU $load_pct%, other CPU $other%${session:+, $session}"
}

if [ "$TLS" = 1 ] && [ -x "$RMC_LOAD" ]; then
    printf 'transport\tserver\tround\tstatus\tops_per_sec\tcompleted\tcpu_us_per_op\tuser_us_per_op\tsys_us_per_op\tserver_cpu_pct\tload_cpu_pct\tlost\terrors\tother_cpu_pct\ttls\n' >"$TLS_RUNS"
    warm=$WARMUP
    [ "$warm" -gt 0 ] || warm=0.5
    for transport in tcp tls; do
        log "[rmc-load over $transport, 32-byte values, $TLS_SOCKETS connections x $TLS_OUTSTANDING in flight]"
        flags=()
        [ "$transport" = tls ] && flags=("${tls_flags[@]}")
        start_pair "$OUT/logs/rmc-load-$transport" "${flags[@]}"
        load_run "$transport" "$rm_port" "$warm" "$OUT/logs/rmc-load-$transport-rmemcached-warmup" \
            || die "rmc-load against rmemcached over $transport: $(tail -3 "$OUT/logs/rmc-load-$transport-rmemcached-warmup.err")"
        load_run "$transport" "$mc_port" "$warm" "$OUT/logs/rmc-load-$transport-memcached-warmup" \
            || die "rmc-load against memcached over $transport: $(tail -3 "$OUT/logs/rmc-load-$transport-memcached-warmup.err")"
        for round in $(seq "$ROUNDS"); do
            tls_measure "$transport" rmemcached "$rm_port" "$rm_pid" "$round"
            tls_measure "$transport" memcached "$mc_port" "$mc_pid" "$round"
        done
        stop_servers
        pids=()
    done
    TLS_CMD_SERVER="taskset -c 0 SERVER -l 127.0.0.1 -p PORT -U PORT -m $MEM_MB -t 1${user_args[*]:+ ${user_args[*]}} [${tls_flags[*]}]"
    TLS_CMD_LOAD="taskset -c 1 rmc-load --tcp PORT [--tls --tls-ca $TLS_CA] ${load_flags[*]} --duration $SECS --json --no-preload"
    export TLS_RUNS TLS_CMD_SERVER TLS_CMD_LOAD
    python3 - "$OUT/results.md" <<'PYEOF'
import csv, os, statistics, sys
env = os.environ
rows = list(csv.DictReader(open(env["TLS_RUNS"]), delimiter="\t"))
servers = ("rmemcached", "memcached")

def runs(t, s):
    return [r for r in rows if r["transport"] == t and r["server"] == s]

def med(t, s, field):
    v = [float(r[field]) for r in runs(t, s) if r["status"] == "ok"]
    return statistics.median(v) if v else None

def fmt(x, spec):
    return "-" if x is None else spec % x

def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)

def pair(t, field, spec):
    return " / ".join(fmt(med(t, s, field), spec) for s in servers)

def total(t, field):
    out = []
    for s in servers:
        v = [int(r[field]) for r in runs(t, s) if r["status"] == "ok"]
        failed = sum(1 for r in runs(t, s) if r["status"] != "ok")
        out.append("%d" % sum(v) + (" (%d failed)" % failed if failed else ""))
    return " / ".join(out)

table = ["| transport | ops/s rmc | ops/s mc | rmc/mc | CPU µs/op rmc | CPU µs/op mc | rmc/mc "
         "| user µs/op rmc/mc | sys µs/op rmc/mc | server CPU % rmc/mc | rmc-load CPU % rmc/mc "
         "| lost+errors rmc/mc | other CPU % max |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for t in ("tcp", "tls"):
    ops = {s: med(t, s, "ops_per_sec") for s in servers}
    cpu = {s: med(t, s, "cpu_us_per_op") for s in servers}
    bad = []
    for s in servers:
        v = [int(r["lost"]) + int(r["errors"]) for r in runs(t, s) if r["status"] == "ok"]
        bad.append("%d" % sum(v))
    other = [float(r["other_cpu_pct"]) for r in rows if r["transport"] == t and r["status"] == "ok"]
    table.append("| " + " | ".join([
        t, fmt(ops["rmemcached"], "%.0f"), fmt(ops["memcached"], "%.0f"),
        ratio(ops["rmemcached"], ops["memcached"]),
        fmt(cpu["rmemcached"], "%.2f"), fmt(cpu["memcached"], "%.2f"),
        ratio(cpu["rmemcached"], cpu["memcached"]),
        pair(t, "user_us_per_op", "%.2f"), pair(t, "sys_us_per_op", "%.2f"),
        pair(t, "server_cpu_pct", "%.0f"), pair(t, "load_cpu_pct", "%.0f"),
        " / ".join(bad), "%d" % max(other) if other else "-"]) + " |")
cost = []
for s in servers:
    tls, tcp = med("tls", s, "cpu_us_per_op"), med("tcp", s, "cpu_us_per_op")
    cost.append("%s %s" % (s, ratio(tls, tcp)))
sessions = sorted({r["tls"] for r in rows if r["transport"] == "tls" and r["tls"] != "-"})
failed = [r for r in rows if r["status"] != "ok"]
with open(sys.argv[1], "a") as f:
    f.write(f"""
## TLS

rmc-load (memaslap does not speak TLS), TCP, closed loop, {env['TLS_SOCKETS']} connections with
{env['TLS_OUTSTANDING']} requests in flight each, 90% gets / 10% sets of 1,000 keys with 32-byte values,
from core 1; both servers started with `-Z` and the same certificate and key ({env['TLS_CERT']},
{env['TLS_KEY']}); the tcp row is the same load over plain TCP against a pair started without `-Z`.
{env['ROUNDS']} round(s) of {env['SECS']} s per server and row, alternating, after one unmeasured run each
(which stores the keys); medians over the rounds (lost+errors: sums). Session: {", ".join(sessions) or "-"}.

```
{env['TLS_CMD_SERVER']}
{env['TLS_CMD_LOAD']}
```

- ops/s: rmc-load's completed requests per second; CPU µs/op: server utime+stime (/proc/PID/stat)
  over the run / completed requests (the run's connections and their handshakes included, a few ms
  of CPU); user and sys as in the table above; server CPU % and rmc-load CPU %: each one's CPU over
  the run in % of one core: the one near 100 is what limits ops/s; other CPU: the rest of the
  machine, in % of one core, the most of any run

{chr(10).join(table)}

CPU µs/op over TLS / over plain TCP: {", ".join(cost)}{"; failed runs: %d" % len(failed) if failed else ""}
""")
PYEOF
elif [ "$TLS" = 1 ]; then
    log "no rmc-load at $RMC_LOAD: TLS table left out"
fi

rm -f "$OUT/.times"
cat "$OUT/results.md"
log "wrote $OUT/results.md, $OUT/ops.png, $OUT/runs.tsv ($elapsed s)"
