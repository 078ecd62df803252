# Sourced by the packaging scripts: the release targets of `make dist` and where their binaries are.
# Each packaging step takes the binaries cargo left in target/<triple>/release/ (`make dist` builds
# them all, `make musl` the x86_64 Linux one) and skips, with the reason, a target not built there.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
BINARIES=(mcp-secure-remote mcp-secure-remote-client)

# <rust triple> <node platform-arch> (node's process.platform-process.arch, also the bundle's names)
TARGETS=(
  "x86_64-unknown-linux-musl  linux-x64"
  "aarch64-unknown-linux-musl linux-arm64"
  "x86_64-pc-windows-gnu      win32-x64"
  "aarch64-apple-darwin       darwin-arm64"
  "x86_64-apple-darwin        darwin-x64"
)

exe_suffix() { case "$1" in *windows*) echo .exe ;; *) echo "" ;; esac; }
release_dir() { echo "$ROOT/target/$1/release"; }

# The triples whose two binaries are built; prints a skip line on stderr for the others.
built_triples() {
  local entry triple missing bin
  for entry in "${TARGETS[@]}"; do
    read -r triple _ <<<"$entry"
    missing=
    for bin in "${BINARIES[@]}"; do
      [ -x "$(release_dir "$triple")/$bin$(exe_suffix "$triple")" ] || missing="$bin$(exe_suffix "$triple")"
    done
    if [ -n "$missing" ]; then
      printf 'skip %-28s target/%s/release/%s is not built (make dist builds it)\n' "$triple" "$triple" "$missing" >&2
    else
      echo "$triple"
    fi
  done
}

node_platform() {
  local entry triple platform
  for entry in "${TARGETS[@]}"; do
    read -r triple platform <<<"$entry"
    [ "$triple" = "$1" ] && { echo "$platform"; return; }
  done
  return 1
}
