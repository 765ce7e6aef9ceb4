#!/usr/bin/env bash
# Runs every fuzz target (or those named as arguments) for FUZZ_SECONDS each (default 60),
# one after the other, with cargo-fuzz and libFuzzer (AddressSanitizer). Stops with a
# non-zero status at the first crash, hang (FUZZ_TIMEOUT seconds for one input, default 10)
# or allocation over FUZZ_MALLOC_MB (default 64 MiB; inputs are capped at FUZZ_MAX_LEN,
# default 64 KiB, so nothing legitimate comes close). The reproducer lands in
# fuzz/artifacts/<target>/.
#
# cargo-fuzz needs nightly's -Zsanitizer; with only a stable toolchain, RUSTC_BOOTSTRAP=1
# (set here) unlocks it. FUZZ_SANITIZER=none builds without ASan (faster, fewer checks).
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what libFuzzer
# finds goes to fuzz/work/<target>/ (ignored by git) and is reused by the next run.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"
malloc_mb="${FUZZ_MALLOC_MB:-64}"
max_len="${FUZZ_MAX_LEN:-65536}"
sanitizer="${FUZZ_SANITIZER:-address}"
all=(bencode metainfo wire_message wire_stream tracker_http tracker_udp tracker_server extension magnet select resume mse krpc)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz" >&2
    exit 2
fi
if [ $# -eq 0 ]; then
    cargo fuzz build --sanitizer "$sanitizer"
else
    for t in "${targets[@]}"; do cargo fuzz build --sanitizer "$sanitizer" "$t"; done
fi

for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    echo "== fuzz $t for ${seconds}s"
    start=$(date +%s)
    if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
        -malloc_limit_mb="$malloc_mb" -max_len="$max_len" -print_final_stats=1; then
        echo "fuzz/run.sh: $t failed after $(( $(date +%s) - start ))s; see fuzz/artifacts/$t/" >&2
        exit 1
    fi
    echo "== $t: ran $(( $(date +%s) - start ))s"
done
