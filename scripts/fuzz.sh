#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), seeded from
# fuzz/seeds/, with libFuzzer through cargo-fuzz on the nightly toolchain.
#   bash scripts/fuzz.sh [SECONDS]
# Findings land in fuzz/artifacts/<target>/; stats in target/fuzz-<target>.log.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"
each="${1:-600}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p target
cd fuzz
for t in client_frame sse_parser provider_streams; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  log "fuzzing $t for ${each}s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$each" -print_final_stats=1 \
    > "../target/fuzz-$t.log" 2>&1 || { tail -n 40 "../target/fuzz-$t.log"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "../target/fuzz-$t.log" | tail -n 3
done
