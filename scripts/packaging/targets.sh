# Sourced by the packaging scripts: the release targets of `make dist` and where their binaries are.
# Each packaging step takes the binaries cargo left in target/<triple>/release/ (`make dist` builds
# them all, `make musl` the x86_64 Linux one) and skips, with the reason, a target not built there.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
BINARIES=(mcp-secure-remote mcp-secure-remote-client)

# <build> <npm platform> <wheel platform tag>
#   build: a `make dist` target (scripts/dist.sh), a rust triple or <triple>-dynamic
#   npm platform: node's process.platform-process.arch, with -musl where the C library is musl (the
#     launcher asks node which libc it runs on); also the bundle's names
#   wheel tag: maturin's --compatibility for a Linux wheel, "-" for the others
# Linux users get the builds that can load a PKCS#11 module: glibc 2.17 (manylinux, npm's linux-x64
# and linux-arm64) and the dynamically linked musl builds (musllinux, npm's linux-*-musl). The static
# builds are the release archives' and the image's.
TARGETS=(
  "x86_64-unknown-linux-gnu          linux-x64        manylinux_2_17"
  "aarch64-unknown-linux-gnu         linux-arm64      manylinux_2_17"
  "x86_64-unknown-linux-musl-dynamic linux-x64-musl   musllinux_1_2"
  "aarch64-unknown-linux-musl-dynamic linux-arm64-musl musllinux_1_2"
  "x86_64-pc-windows-gnu             win32-x64        -"
  "aarch64-apple-darwin              darwin-arm64     -"
  "x86_64-apple-darwin               darwin-x64       -"
)

exe_suffix() { case "$1" in *windows*) echo .exe ;; *) echo "" ;; esac; }
# The rust triple of a build; the dynamic musl build has a target directory of its own.
rust_triple() { echo "${1%-dynamic}"; }
target_dir() { case "$1" in *-dynamic) echo "$ROOT/target/dynamic" ;; *) echo "$ROOT/target" ;; esac; }
release_dir() { echo "$(target_dir "$1")/$(rust_triple "$1")/release"; }

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
      printf 'skip %-34s %s/%s is not built (make dist builds it)\n' "$triple" "$(release_dir "$triple")" "$missing" >&2
    else
      echo "$triple"
    fi
  done
}

node_platform() {
  local entry triple platform
  for entry in "${TARGETS[@]}"; do
    read -r triple platform _ <<<"$entry"
    [ "$triple" = "$1" ] && { echo "$platform"; return; }
  done
  return 1
}

wheel_tag() {
  local entry triple tag
  for entry in "${TARGETS[@]}"; do
    read -r triple _ tag <<<"$entry"
    [ "$triple" = "$1" ] && { echo "$tag"; return; }
  done
  return 1
}
