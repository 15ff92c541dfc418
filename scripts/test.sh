#!/usr/bin/env bash
# `make test`: bootstrap, build, lint, run every test against the real worker
# in workerd, and dry-run the deploy to report the bundle size.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"
bash scripts/bootstrap.sh
bash scripts/build.sh

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy (host, all targets)"
cargo clippy --all-targets -- -D warnings
log "cargo clippy (wasm32, the worker)"
cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings

log "harness unit tests (node --test)"
(cd miniflare && "$CONFAB_NODE" --test test/*.test.mjs)

log "JS client library and browser tests (Chromium + playwright-core)"
"$CONFAB_NODE" --test tests/browser/*.test.mjs

log "cargo test (native unit tests and e2e tests against workerd)"
cargo test --all-targets

log "benchmark smoke (zero loss, duplication and reordering)"
cargo run -q --example bench -- --smoke

for env in production dev; do
  log "wrangler deploy --dry-run --env $env"
  rm -rf "target/dry-run-$env"
  miniflare/node_modules/.bin/wrangler deploy --dry-run --env "$env" --outdir "target/dry-run-$env" 2>&1 | tee "target/dry-run-$env.log"
  grep -E "Total Upload" "target/dry-run-$env.log" || { echo "test: dry run ($env) printed no bundle size" >&2; exit 1; }
done
