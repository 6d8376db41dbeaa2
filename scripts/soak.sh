#!/usr/bin/env bash
# Soak rmemcached in release for SECONDS (default 300): many clients at once
# over TCP, UDP and a unix socket, in the text, meta and binary protocols,
# then tests/soak.rs checks that every acknowledged set is readable with
# its last value, that the shared incr counters are exact, and that the
# server's RSS stayed flat after the warm-up. Prints the operations done
# per kind, the lost UDP replies and the RSS samples; the log is kept in
# target/soak/.
#
#   scripts/soak.sh [SECONDS]
#   RMC_SOAK_CLIENTS=N    clients of each of the nine kinds (default 2)
#   RMC_SOAK_BIN=PATH     soak another server (e.g. /usr/bin/memcached)
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-300}"
case "$secs" in
    '' | *[!0-9]*)
        echo "usage: $0 [SECONDS]" >&2
        exit 2
        ;;
esac
export RMC_SOAK_SECS="$secs"
export RMC_SOAK_CLIENTS="${RMC_SOAK_CLIENTS:-2}"
export CARGO_TERM_COLOR=never

cargo build --release --bin rmemcached
export RMC_SOAK_BIN="${RMC_SOAK_BIN:-$PWD/target/release/rmemcached}"

mkdir -p target/soak
log="target/soak/soak-$(date +%Y%m%d-%H%M%S)-${secs}s.log"
echo "soak: ${secs} s, ${RMC_SOAK_CLIENTS} client(s) per kind, server ${RMC_SOAK_BIN}; log ${log}"
start=$(date +%s)
status=0
cargo test --release --test soak -- --nocapture --test-threads 1 2>&1 | tee "$log" || status=$?
echo "soak: finished in $(($(date +%s) - start)) s, status ${status}"
exit "$status"
