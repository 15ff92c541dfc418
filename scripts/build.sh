#!/usr/bin/env bash
# Builds the release wasm worker into build/ with local tool binaries only.
# Also wrangler's [build] command, so `wrangler deploy` builds the same way.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"

# worker-build always re-runs wasm-bindgen and wasm-opt; skip the whole build
# when no input is newer than the output.
if [ -f build/index_bg.wasm ] && [ -f build/index.js ] &&
   [ -z "$(find src Cargo.toml Cargo.lock -newer build/index_bg.wasm -print -quit)" ]; then
  log "worker build is up to date"
  exit 0
fi
log "building the worker (release wasm)"
worker-build --release

# worker-build keeps the wasm name section (function names in panic stack
# traces). It is a fifth of the gzip bundle, so the deployed module goes
# without it; the same module with names stays in target/symbols/ (function
# indices are unchanged) to read a `wasm-function[N]` frame of a production
# trace against. The producers and target-features sections (which
# toolchain built it, which wasm features it was built for) are read by no
# engine, only by tools; they go too (0.25 KiB gzip).
mkdir -p target/symbols
cp build/index_bg.wasm target/symbols/index_bg.wasm
"$WASM_OPT_BIN" build/index_bg.wasm --strip-debug --strip-producers --strip-target-features \
  -o build/index_bg.wasm \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
