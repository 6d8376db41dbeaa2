#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds
# (default 60), one target after the other, each in one process.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on the stable toolchain: the targets are built without a sanitizer
# (`-s none`; cargo-fuzz adds the coverage instrumentation with stable
# -C flags, and only the sanitizers need nightly). Set FUZZ_SANITIZER
# (e.g. address) to use one on a nightly toolchain.
#
# Each target starts from its seeds (fuzz/seeds/<target>, committed) and
# its corpus (fuzz/corpus/<target>, kept between local runs, not
# committed), with its dictionary when there is one (fuzz/dicts). A crash
# stops that target, leaves the input in fuzz/artifacts/<target>/, prints
# how to reproduce and minimize it, and makes the script exit 1 once every
# target has run.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

cd fuzz
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
mkdir -p target/logs
build() {
    if ! cargo fuzz build -s "$sanitizer" "$@" >target/logs/build.log 2>&1; then
        tail -n 40 target/logs/build.log
        echo "fuzz: build failed"
        exit 1
    fi
}
if [ $# -gt 0 ]; then
    for t in "${targets[@]}"; do build "$t"; done
else
    build
fi
echo "fuzz: built in $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    log="target/logs/$t.log"
    echo "fuzz: $t for ${secs} s"
    if cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 "${dict[@]}" \
        >"$log" 2>&1; then
        # The last status line: runs, coverage, corpus size, execs per second.
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
    else
        failed+=("$t")
        echo "fuzz: $t FAILED (whole log: fuzz/$log)"
        grep -E -B 2 -A 25 'panicked at|ERROR: libFuzzer' "$log" | head -n 60 || tail -n 60 "$log"
        sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | while read -r a; do
            a="artifacts/$t/$(basename "$a")"
            echo "fuzz: input kept in fuzz/$a"
            echo "  reproduce: (cd fuzz && cargo fuzz run -s $sanitizer $t $a)"
            echo "  minimize:  (cd fuzz && cargo fuzz tmin -s $sanitizer $t $a)"
        done
    fi
done

echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start)) s"
[ ${#failed[@]} -gt 0 ] && echo "fuzz: crashes in: ${failed[*]}"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
