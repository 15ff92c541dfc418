#!/usr/bin/env bash
# Installs everything Confab needs on a fresh machine, and nothing twice:
# the wasm target, worker-build and wasm-bindgen-cli at pinned versions, and
# the npm packages of miniflare/ from its lockfile.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"

WORKER_BUILD_VERSION=0.8.7
# The CLI must equal the wasm-bindgen library version locked in Cargo.lock.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version =\"]/, ""); print; exit}' Cargo.lock)"
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "bootstrap: no wasm-bindgen in Cargo.lock" >&2; exit 1; }

need_cmd() { command -v "$1" >/dev/null 2>&1; }

if ! need_cmd node || ! need_cmd npm; then
  log "installing node and npm (apt)"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: the CLI's own lockfile names a webpki-roots release the
  # registry no longer serves. The version that matters is pinned above.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Browser tests drive Debian's Chromium (never a downloaded browser); the
# emoji font makes reactions render in screenshots.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "color emoji"; then
  log "installing chromium and fonts-noto-color-emoji (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji
fi

# Coverage of the native unit tests: the LLVM tools (a rustup component)
# and cargo-llvm-cov at a pinned version.
CARGO_LLVM_COV_VERSION=0.6.21
if ! rustup component list --installed | grep -q '^llvm-tools'; then
  log "adding the llvm-tools component"
  rustup component add llvm-tools-preview
fi
if [ "$(cargo llvm-cov --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LLVM_COV_VERSION" ]; then
  log "installing cargo-llvm-cov $CARGO_LLVM_COV_VERSION"
  cargo install cargo-llvm-cov --version "$CARGO_LLVM_COV_VERSION" --locked --force
fi

# promtool checks and unit-tests the shipped alert rules (ops/alerts.yml);
# Debian's prometheus package carries it (2.42, pinned by the release).
if ! need_cmd promtool; then
  log "installing promtool (apt: prometheus)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
fi

# npm ci is slow-ish and wipes node_modules; skip it when the installed tree
# already matches the lockfile.
stamp="$MF/node_modules/.confab-lock-stamp"
want="$(sha256sum "$MF/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing npm packages (miniflare/)"
  (cd "$MF" && npm ci --no-audit --no-fund)
  echo "$want" > "$stamp"
fi

# Python test tools (a real Prometheus parser, …), pinned, in a venv.
py_stamp="$CONFAB_ROOT/target/pyenv/.confab-req-stamp"
py_want="$(sha256sum "$CONFAB_ROOT/tests/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_want" ]; then
  log "installing Python test tools (tests/requirements.txt)"
  python3 -m venv "$CONFAB_ROOT/target/pyenv"
  "$CONFAB_ROOT/target/pyenv/bin/pip" install -q -r "$CONFAB_ROOT/tests/requirements.txt"
  echo "$py_want" > "$py_stamp"
fi

for bin in "$ESBUILD_BIN" "$WASM_OPT_BIN" "$WASM_BINDGEN_BIN" "$CONFAB_NODE"; do
  [ -x "$bin" ] || { echo "bootstrap: $bin is missing" >&2; exit 1; }
done
