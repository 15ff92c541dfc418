#!/usr/bin/env bash
# `make dev`: bootstrap, build, and serve Confab locally with the stand-in LLM.
# State persists in .confab/dev-state (git-ignored), so history survives restarts.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"
bash scripts/bootstrap.sh
bash scripts/build.sh
mkdir -p .confab/dev-state
log "starting Confab on 127.0.0.1:${PORT:-8787}"
exec "$CONFAB_NODE" miniflare/harness.mjs --dev --port "${PORT:-8787}" --persist .confab/dev-state --log .confab/dev.log
