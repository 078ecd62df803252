#!/usr/bin/env bash
# `make dist`: release archives of both binaries for every target this machine can build.
#
# Usage: scripts/dist.sh [TARGET...]    (default: every target below)
#
#   x86_64-unknown-linux-musl    static; cargo + Debian's musl-gcc (as `make musl`)
#   aarch64-unknown-linux-musl   static; cargo-zigbuild + zig
#   x86_64-pc-windows-gnu        cargo + Debian's mingw-w64
#   aarch64-apple-darwin         macOS only: linking needs Apple's SDK (Security, CoreFoundation)
#   x86_64-apple-darwin          macOS only, as above
#   universal2-apple-darwin      macOS only: the two above joined with lipo
#
# Output, for the packaging (keep this layout):
#   target/<triple>/release/mcp-secure-remote[.exe], mcp-secure-remote-client[.exe]
#   dist/mcp-secure-remote-<version>-<target>.tar.gz (.zip for Windows), each holding the directory
#     mcp-secure-remote-<version>-<target>/ with both binaries, LICENSE and README.md
#   dist/SHA256SUMS over every archive in dist/
# A macOS target on another OS is named and skipped with the reason; any other failure stops the script.
# Archives are reproducible: fixed owner, order and timestamps (the last commit's time).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cross/tools.sh

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu
  aarch64-apple-darwin x86_64-apple-darwin universal2-apple-darwin)
BINS=(mcp-secure-remote mcp-secure-remote-client)
[ $# -gt 0 ] && targets=("$@") || targets=("${ALL_TARGETS[@]}")

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
mkdir -p dist
built=() skipped=()

cargo_build() { # TARGET [cargo-subcommand]
  local target=$1 build=${2:-build}
  local features=()
  # A static musl binary cannot dlopen a PKCS#11 module: built without it, as `make musl` does.
  case "$target" in *-linux-musl) features=(--no-default-features) ;; esac
  nice -n 10 cargo $build --release --locked --bins --target "$target" "${features[@]}"
}

build() {
  local target=$1
  case "$target" in
    x86_64-unknown-linux-musl) cargo_build "$target" ;;
    aarch64-unknown-linux-musl) cross_need_zig dist && cargo_build "$target" zigbuild ;;
    x86_64-pc-windows-gnu) cross_need_mingw dist && cargo_build "$target" ;;
    *-apple-darwin)
      if [ "$(uname -s)" != Darwin ]; then
        skipped+=("$target: linking needs Apple's macOS SDK (the Security and CoreFoundation frameworks), which only a Mac has; .github/workflows/release.yml builds it on a macOS runner")
        return 2
      fi
      if [ "$target" = universal2-apple-darwin ]; then
        local arch out=target/universal2-apple-darwin/release
        mkdir -p "$out"
        for arch in aarch64 x86_64; do cargo_build "$arch-apple-darwin"; done
        for bin in "${BINS[@]}"; do
          lipo -create -output "$out/$bin" \
            "target/aarch64-apple-darwin/release/$bin" "target/x86_64-apple-darwin/release/$bin"
        done
      else
        cargo_build "$target"
      fi
      ;;
    *) echo "dist: unknown target $target (known: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
  esac
}

package() {
  local target=$1 exe= name="mcp-secure-remote-$version-$target" stage
  [[ $target == *windows* ]] && exe=.exe
  stage=$(mktemp -d)
  mkdir "$stage/$name"
  for bin in "${BINS[@]}"; do
    cp "target/$target/release/$bin$exe" "$stage/$name/"
    printf '  %-36s %9s bytes\n' "$bin$exe" "$(stat -c %s "target/$target/release/$bin$exe" 2>/dev/null ||
      stat -f %z "target/$target/release/$bin$exe")"
  done
  cp LICENSE README.md "$stage/$name/"
  find "$stage/$name" -exec touch -d "@$epoch" {} + 2>/dev/null || find "$stage/$name" -exec touch -t "$(date -r "$epoch" +%Y%m%d%H%M.%S)" {} +
  rm -f "dist/$name.tar.gz" "dist/$name.zip"
  if [ -n "$exe" ]; then
    (cd "$stage" && find "$name" | LC_ALL=C sort | zip -q -X -@ "$OLDPWD/dist/$name.zip")
    echo "  → dist/$name.zip"
  else
    # GNU tar's options for a reproducible archive; bsdtar (macOS) takes the files as they are.
    if tar --version 2>/dev/null | grep -q GNU; then
      tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -cf - "$name"
    else
      tar -C "$stage" -cf - "$name"
    fi | gzip -n -9 >"dist/$name.tar.gz"
    echo "  → dist/$name.tar.gz"
  fi
  rm -rf "$stage"
}

for target in "${targets[@]}"; do
  printf '\n== %s\n' "$target"
  status=0
  build "$target" || status=$?
  case $status in
    0) package "$target"; built+=("$target") ;;
    2) echo "  skipped: ${skipped[${#skipped[@]}-1]#*: }" ;;
    *) echo "dist: building $target failed" >&2; exit 1 ;;
  esac
done

sum=(sha256sum)
command -v sha256sum >/dev/null || sum=(shasum -a 256) # macOS
(cd dist && ls | grep -E '^mcp-secure-remote-.*\.(tar\.gz|zip)$' | LC_ALL=C sort | xargs "${sum[@]}" >SHA256SUMS)
printf '\n== dist/ (version %s)\n' "$version"
cat dist/SHA256SUMS
printf 'built: %s\n' "${built[*]:-none}"
# ${a[@]+...}: an empty array under `set -u` in macOS's bash 3.2.
for s in ${skipped[@]+"${skipped[@]}"}; do printf 'skipped %s\n' "$s"; done
