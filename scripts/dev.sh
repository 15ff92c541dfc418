#!/usr/bin/env bash
# `make dev`: bootstrap, build, and serve Confab locally with the stand-in LLM.
# State persists in .confab/dev-state (git-ignored), so history survives restarts.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFAB_ROOT"
bash scripts/bootstrap.sh
bash scripts/build.sh
mkdir -p .confab/dev-state
# Encryption at rest is never optional; give this checkout its own local key
# (kept in the git-ignored .dev.vars) the first time.
if ! grep -q '^ENCRYPTION_KEYS=' .dev.vars 2>/dev/null; then
  log "creating a local encryption key in .dev.vars"
  key="$("$CONFAB_NODE" -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))')"
  printf 'ENCRYPTION_KEYS=dev1:%s\nENCRYPTION_ACTIVE_KEY_ID=dev1\n' "$key" >> .dev.vars
fi
# Search's index key is derived from a keyring entry (README, "Search"):
# the local key's, also for a .dev.vars written before search existed.
if ! grep -q '^SEARCH_KEY_ID=' .dev.vars; then
  active="$(sed -n 's/^ENCRYPTION_ACTIVE_KEY_ID=//p' .dev.vars | tail -n 1)"
  printf 'SEARCH_KEY_ID=%s\n' "${active:-dev1}" >> .dev.vars
fi
log "starting Confab on 127.0.0.1:${PORT:-8787}"
exec "$CONFAB_NODE" miniflare/harness.mjs --dev --port "${PORT:-8787}" --persist .confab/dev-state --log .confab/dev.log
