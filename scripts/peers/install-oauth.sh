#!/usr/bin/env bash
# Installs the OAuth test peer's npm packages (oidc-provider, pinned with its whole tree by
# tests/peers/oauth/package-lock.json) into the git-ignored .peers/oauth/node_modules, where
# tests/peers/oauth/server.mjs loads them from. Idempotent: does nothing while the installed tree
# matches the lock file (a stamp holds the lock's checksum). `make test` runs it first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/tests/peers/oauth"
DIR="$ROOT/.peers/oauth"
STAMP="$DIR/installed.sha256"

log() { printf '[peers/install-oauth] %s\n' "$*" >&2; }

command -v node >/dev/null || { log "error: node is not installed (the OAuth tests need Node.js 20 or later and npm)"; exit 1; }
command -v npm >/dev/null || { log "error: npm is not installed (the OAuth tests need Node.js 20 or later and npm)"; exit 1; }

wanted="$(sha256sum "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && [ -d "$DIR/node_modules/oidc-provider" ]; then
  exit 0
fi

log "installing oidc-provider (npm ci from tests/peers/oauth/package-lock.json) into $DIR"
mkdir -p "$DIR"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
# npm ci: exactly the lock file's versions, integrity-checked; it fails rather than re-resolve.
npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error >&2
printf '%s\n' "$wanted" >"$STAMP"
log "installed oidc-provider $(node -p "require('$DIR/node_modules/oidc-provider/package.json').version")"
