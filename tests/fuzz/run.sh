#!/usr/bin/env bash
# Fuzzes the triggerState parser and the request handling (README "Fuzzing").
#
#   bash tests/fuzz/run.sh [SECONDS [TARGET...]]
#
# Runs each target (default: all of trigger_state, query, request) for SECONDS (default
# $FUZZ_SECONDS, else 30), starting from the committed seeds/TARGET and growing the
# uncommitted corpus/TARGET. Installs cargo-fuzz if it is missing and builds with the
# active (stable) toolchain. Exits non-zero on the first crash (a panic, a failed check, a
# timeout or running out of memory); libFuzzer leaves the input in artifacts/TARGET/, and
#   cargo fuzz run --fuzz-dir tests/fuzz TARGET artifacts/TARGET/crash-...
# replays it (with RUSTC_BOOTSTRAP=1 on a stable toolchain).
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzz=tests/fuzz
seconds=${1:-${FUZZ_SECONDS:-30}}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(trigger_state query request)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    # A debug build: it only drives cargo and libFuzzer, and builds in two thirds the time.
    cargo install cargo-fuzz --locked --quiet --debug
fi
# cargo-fuzz passes nightly-only -Z flags to rustc; this lets a stable rustc take them.
export RUSTC_BOOTSTRAP=1
# The targets' watched directory and index (one per fuzzing process).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export FILETRIGGER_FUZZ_SCRATCH=$scratch
# No sanitizer by default: the code under test is safe Rust, where a bug is a panic;
# FUZZ_SANITIZER=address adds AddressSanitizer at about half the speed.
flags=(--fuzz-dir "$fuzz" --sanitizer "${FUZZ_SANITIZER:-none}")

echo "== build the fuzz targets"
cargo fuzz build "${flags[@]}"
for t in "${targets[@]}"; do
    mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
    log="$fuzz/target/fuzz-$t.log"
    echo "== fuzz $t for ${seconds}s (log: $log)"
    if ! cargo fuzz run "${flags[@]}" "$t" "$fuzz/corpus/$t" "$fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t failed; the input is in $fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^Done|stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
done
echo "fuzzing ok: ${targets[*]}, ${seconds}s each, no crash"
