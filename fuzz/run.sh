#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time on the checked-in seed corpus
# (README "Fuzzing"). Used by .ci/run; works the same by hand:
#
#   bash fuzz/run.sh                   # every target, 30 s each
#   bash fuzz/run.sh 600 templates     # one target, 10 minutes
#   FUZZ_BUILD_ONLY=1 bash fuzz/run.sh # build only (CI builds while the tests run)
#
# It builds with plain cargo and the flags `cargo fuzz build` (cargo-fuzz 0.13) passes —
# SanitizerCoverage, AddressSanitizer, debug assertions, `--cfg fuzzing` — so CI needs no
# cargo-fuzz install; `cargo fuzz run <target>` builds the same binaries. Stable rustc accepts
# `-Zsanitizer=address` with RUSTC_BOOTSTRAP=1. New corpus entries go to a temporary directory,
# never into fuzz/corpus. Any crash, sanitizer report, timeout or leak fails the script (libFuzzer
# exits non-zero and leaves the input in the artefact directory it prints).
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH="${1:-30}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(templates mechanisms attributes session)
fi
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
JOBS="${CARGO_BUILD_JOBS:-2}"

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Zsanitizer=address -Cdebug-assertions -Ccodegen-units=16"

build_start=$SECONDS
cargo build --release -j "$JOBS" --target "$TRIPLE" --locked --bins
echo "fuzz: targets built in $((SECONDS - build_start)) s"
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
    exit 0
fi

BIN="target/$TRIPLE/release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sqlhsm-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# The targets' temporary key stores (src/fixture.rs) go there too, also after a crash.
export TMPDIR="$WORK"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

for target in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$target/corpus" "$WORK/$target/artefacts"
    echo "fuzz: $target for ${SECONDS_EACH} s"
    if ! "$BIN/$target" -seed=1 -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 \
        -max_len=1024 -len_control=0 -print_final_stats=1 \
        -artifact_prefix="$WORK/$target/artefacts/" \
        "$WORK/$target/corpus" "corpus/$target" >"$WORK/$target/log" 2>&1; then
        tail -n 80 "$WORK/$target/log"
        for a in "$WORK/$target/artefacts/"*; do
            [ -f "$a" ] || continue
            mkdir -p artefacts
            cp "$a" "artefacts/$target-$(basename "$a")"
            echo "fuzz: $target failed; input kept as fuzz/artefacts/$target-$(basename "$a")"
        done
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$WORK/$target/log" | sed "s/^/fuzz: $target: /"
done
echo "fuzz: every target ran ${SECONDS_EACH} s without a failure"
echo "fuzzing: ${#TARGETS[@]} passed, 0 failed"
