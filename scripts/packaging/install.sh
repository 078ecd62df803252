#!/usr/bin/env bash
# Installs the pinned packaging tools into project-local, git-ignored directories: maturin and uv
# (PyPI) in .packaging/venv, the MCP Bundle CLI (npm) in .packaging/node_modules. Idempotent: each
# step is skipped when its pinned version is already there. Prints nothing but progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.packaging"
mkdir -p "$DIR"

# maturin 1.16: `bindings = "bin"` wheels with both binaries; uv: the installer and `uvx` users run.
# ziglang: the linker maturin --zig uses for wheels of the cross targets `make dist` built.
PY_TOOLS=("maturin==1.16.0" "uv==0.13.9" "ziglang==0.15.2")
NPM_TOOLS=("@anthropic-ai/mcpb@2.1.2")

log() { printf '[packaging/install] %s\n' "$*" >&2; }

if [ ! -x "$DIR/venv/bin/python" ]; then
  log "creating $DIR/venv"
  python3 -m venv "$DIR/venv"
fi
stamp="$DIR/venv/installed.txt"
wanted="$(printf '%s\n' "${PY_TOOLS[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  log "installing ${PY_TOOLS[*]} (pip)"
  "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi

stamp="$DIR/npm-installed.txt"
wanted="$(printf '%s\n' "${NPM_TOOLS[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -d "$DIR/node_modules" ]; then
  log "installing ${NPM_TOOLS[*]} (npm)"
  [ -f "$DIR/package.json" ] || printf '{ "name": "mcp-secure-remote-packaging-tools", "private": true }\n' >"$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --save-exact "${NPM_TOOLS[@]}" >&2
  printf '%s\n' "$wanted" >"$stamp"
fi
log "tools installed: $("$DIR/venv/bin/maturin" --version), $("$DIR/venv/bin/uv" --version), mcpb $("$DIR/node_modules/.bin/mcpb" --version)"
