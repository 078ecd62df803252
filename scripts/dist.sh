#!/usr/bin/env bash
# `make dist`: release archives of both binaries for every target this machine can build.
#
# Usage: scripts/dist.sh [TARGET...]    (default: every target below)
#
#   x86_64-unknown-linux-musl          static, no PKCS#11; cargo + Debian's musl-gcc (as `make musl`)
#   aarch64-unknown-linux-musl         static, no PKCS#11; cargo-zigbuild + zig
#   x86_64-unknown-linux-gnu           glibc >= 2.17, PKCS#11; cargo-zigbuild + zig (target .2.17)
#   aarch64-unknown-linux-gnu          glibc >= 2.17, PKCS#11; as above
#   x86_64-unknown-linux-musl-dynamic  musl, dynamically linked (-crt-static off), PKCS#11;
#                                      cargo-zigbuild + zig, in target/dynamic/ (the static build keeps
#                                      target/<triple>/)
#   aarch64-unknown-linux-musl-dynamic as above, for aarch64 (the musllinux aarch64 wheel, npm's
#                                      linux-arm64-musl)
#   x86_64-pc-windows-gnu              PKCS#11 (.dll modules); cargo + Debian's mingw-w64
#   aarch64-apple-darwin               macOS only: linking needs Apple's SDK (Security, CoreFoundation)
#   x86_64-apple-darwin                macOS only, as above
#   universal2-apple-darwin            macOS only: the two above joined with lipo
#
# A static binary has no dynamic loader, so it cannot dlopen() a PKCS#11 module: the static builds
# are made without the feature. The glibc builds are linked by zig against glibc 2.17's symbols so
# they run on any distribution of the last ten years; their highest GLIBC_ symbol version is printed
# and the script fails if it is above 2.17.
#
# Output, for the packaging (keep this layout):
#   target/<triple>/release/mcp-secure-remote[.exe], mcp-secure-remote-client[.exe]
#     (target/dynamic/<triple>/release/ for the dynamic musl builds)
#   dist/mcp-secure-remote-<version>-<target>.tar.gz (.zip for Windows), each holding the directory
#     mcp-secure-remote-<version>-<target>/ with both binaries, LICENSE and README.md
#   dist/SHA256SUMS over every archive in dist/
# A macOS target on another OS is named and skipped with the reason; any other failure stops the script.
# Archives are reproducible: fixed owner, order and timestamps (the last commit's time).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cross/tools.sh

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-unknown-linux-gnu
  aarch64-unknown-linux-gnu x86_64-unknown-linux-musl-dynamic aarch64-unknown-linux-musl-dynamic
  x86_64-pc-windows-gnu
  aarch64-apple-darwin x86_64-apple-darwin universal2-apple-darwin)
# The oldest glibc the glibc builds support (zig links against its symbol versions).
GLIBC_MAX=2.17
BINS=(mcp-secure-remote mcp-secure-remote-client)
[ $# -gt 0 ] && targets=("$@") || targets=("${ALL_TARGETS[@]}")

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
mkdir -p dist
built=() skipped=() timings=()

# Where cargo leaves a target's binaries (scripts/packaging/targets.sh has the same rule).
release_dir() {
  case "$1" in
    *-dynamic) echo "target/dynamic/${1%-dynamic}/release" ;;
    *) echo "target/$1/release" ;;
  esac
}

cargo_build() { # TARGET [cargo-subcommand]
  local target=$1 build=${2:-build}
  local features=()
  # A static musl binary cannot dlopen a PKCS#11 module: built without it, as `make musl` does.
  case "$target" in *-linux-musl) features=(--no-default-features) ;; esac
  nice -n 10 cargo $build --release --locked --bins --target "$target" ${features[@]+"${features[@]}"}
}

# The highest GLIBC_ symbol version each binary of TARGET needs (readelf reads any architecture's
# ELF, objdump only the host's); fails above $GLIBC_MAX.
glibc_check() { # TARGET
  local bin file highest status=0
  for bin in "${BINS[@]}"; do
    file="$(release_dir "$1")/$bin"
    highest=$(readelf --dyn-syms --wide "$file" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
    printf '  %-36s highest GLIBC_%s\n' "$bin" "${highest:-none}"
    if [ -z "$highest" ] || [ "$(printf '%s\n%s\n' "$highest" "$GLIBC_MAX" | sort -V | tail -n 1)" != "$GLIBC_MAX" ]; then
      echo "dist: $file needs GLIBC_${highest:-?}, above $GLIBC_MAX: it would not run on older distributions" >&2
      status=1
    fi
  done
  return $status
}

build() {
  local target=$1
  case "$target" in
    x86_64-unknown-linux-musl) cargo_build "$target" ;;
    aarch64-unknown-linux-musl) cross_need_zig dist && cargo_build "$target" zigbuild ;;
    # zig links against the glibc named after the dot; cargo still puts the output in the plain
    # triple's directory.
    *-unknown-linux-gnu) cross_need_zig dist && cargo_build "$target.$GLIBC_MAX" zigbuild && glibc_check "$target" ;;
    # Dynamically linked against musl's libc.so (ld-musl-<arch>.so.1), so it can dlopen a module.
    # Its own target directory: other RUSTFLAGS would rebuild the static build's dependencies in
    # place. zig links it (Debian's musl-gcc has no libgcc_s for musl, which Rust's dynamic musl
    # target links for unwinding; zig brings its own unwinder).
    *-unknown-linux-musl-dynamic)
      local triple=${target%-dynamic} arch=${target%%-*}
      cross_need_zig dist || return 1
      # RUSTFLAGS, not CARGO_TARGET_…_RUSTFLAGS: cargo merges the latter with .cargo/config.toml's
      # flags for the static musl build (-z pack-relative-relocs, which zig's linker refuses), while
      # RUSTFLAGS replaces them.
      CARGO_TARGET_DIR=target/dynamic RUSTFLAGS="$MUSL_DYNAMIC_RUSTFLAGS" \
        nice -n 10 cargo zigbuild --release --locked --bins --target "$triple" || return 1
      file "$(release_dir "$target")/mcp-secure-remote" | grep -q "dynamically linked, interpreter /lib/ld-musl-$arch.so.1" || {
        echo "dist: $(release_dir "$target")/mcp-secure-remote is not linked against musl's dynamic loader (ld-musl-$arch.so.1)" >&2
        return 1
      }
      ;;
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
  local dir
  dir=$(release_dir "$target")
  for bin in "${BINS[@]}"; do
    cp "$dir/$bin$exe" "$stage/$name/"
    printf '  %-36s %9s bytes\n' "$bin$exe" "$(stat -c %s "$dir/$bin$exe" 2>/dev/null ||
      stat -f %z "$dir/$bin$exe")"
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
  started=$(date +%s)
  build "$target" || status=$?
  timings+=("$(printf '%-36s %5ss' "$target" "$(($(date +%s) - started))")")
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
printf 'build time: %s\n' ${timings[@]+"${timings[@]}"}
# ${a[@]+...}: an empty array under `set -u` in macOS's bash 3.2.
for s in ${skipped[@]+"${skipped[@]}"}; do printf 'skipped %s\n' "$s"; done
