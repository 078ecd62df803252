# Sourced by scripts/dist.sh, scripts/test-cross.sh and .ci/run: the pinned cross toolchain, in one place.
#
#   Windows x86_64   Debian's mingw-w64 C compiler and linker (ring's C code, the final link)
#   Linux aarch64    cargo-zigbuild (PyPI's prebuilt wheel) driving zig (PyPI's ziglang) as C compiler and linker
#   Linux glibc      cargo-zigbuild + zig, linked against glibc 2.17's symbols (x86_64 and aarch64)
#   macOS            compile and lint only, with zig as ring's C compiler (no Apple SDK to link)
#   tests            wine (Windows build), qemu-user (aarch64 build)
#
# `cross_install` installs whatever is missing (Debian 12, as root); the other scripts only check.

CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.15.2
# libc6-arm64-cross: arm64 glibc for qemu-user to run the aarch64 glibc build (-L $ARM64_GLIBC_ROOT).
CROSS_APT_PACKAGES=(gcc-mingw-w64-x86-64 wine64 qemu-user musl-tools zip file libc6-arm64-cross)
CROSS_RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-unknown-linux-gnu
  aarch64-unknown-linux-gnu x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin)

# zig comes from PyPI into a venv of its own (Debian's python refuses system-wide pip installs);
# cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH, so the venv's python goes first.
CROSS_VENV=${CROSS_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cross/venv}
[ -x "$CROSS_VENV/bin/python3" ] && export PATH="$CROSS_VENV/bin:$PATH"

# The dynamically linked musl build (scripts/dist.sh x86_64-unknown-linux-musl-dynamic, the musllinux
# wheel): without crt-static, and -dynamic because zig links musl statically unless told otherwise.
MUSL_DYNAMIC_RUSTFLAGS="-C target-feature=-crt-static -C link-arg=-dynamic"

# Debian's wine64 puts its loader here, without the `wine` wrapper (that comes with the 32-bit part).
WINE=${WINE:-/usr/lib/wine/wine64}
QEMU_AARCH64=${QEMU_AARCH64:-/usr/bin/qemu-aarch64}
ARM64_GLIBC_ROOT=${ARM64_GLIBC_ROOT:-/usr/aarch64-linux-gnu}
# arm64 musl's loader, for qemu-user to run the dynamically linked aarch64 musl build
# (-L $ARM64_MUSL_ROOT): Debian's musl:arm64 package unpacked here, not installed (Debian has no
# musl cross package, and installing it would put an arm64 loader into the host's /lib).
ARM64_MUSL_DEB=musl:arm64=1.2.3-1
ARM64_MUSL_ROOT=${ARM64_MUSL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cross/musl-arm64}

cross_install() {
  local missing=() target
  for pkg in "${CROSS_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local installed
  installed=$(rustup target list --installed)
  for target in "${CROSS_RUST_TARGETS[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
  done
  if [ ! -x "$CROSS_VENV/bin/python3" ]; then
    python3 -m venv "$CROSS_VENV"
    export PATH="$CROSS_VENV/bin:$PATH"
  fi
  [ "$("$CROSS_VENV/bin/python3" -m ziglang version 2>/dev/null)" = "$ZIGLANG_VERSION" ] ||
    "$CROSS_VENV/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
  [ -e "$ARM64_MUSL_ROOT/lib/ld-musl-aarch64.so.1" ] || cross_install_arm64_musl
  # PyPI's prebuilt cargo-zigbuild, into the same venv: `cargo install` compiled it for 3 minutes of CI.
  [ "$("$CROSS_VENV/bin/cargo-zigbuild" --version 2>/dev/null)" = "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ] ||
    "$CROSS_VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
}

cross_install_arm64_musl() {
  local tmp
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$ARM64_MUSL_DEB" 2>/dev/null) || { apt-get update -qq && (cd "$tmp" && apt-get download -qq "$ARM64_MUSL_DEB"); }
  mkdir -p "$ARM64_MUSL_ROOT"
  dpkg-deb -x "$tmp"/musl_*_arm64.deb "$ARM64_MUSL_ROOT"
  # musl's loader is its libc.so; the package's postinst would make this link.
  ln -sfn aarch64-linux-musl/libc.so "$ARM64_MUSL_ROOT/lib/ld-musl-aarch64.so.1"
  rm -rf "$tmp"
}

# cargo-zigbuild finds zig through `python3 -m ziglang` when no `zig` is on PATH.
cross_need_zig() {
  command -v cargo-zigbuild >/dev/null && python3 -c "import ziglang" 2>/dev/null || {
    echo "$1: needs cargo-zigbuild $CARGO_ZIGBUILD_VERSION and ziglang $ZIGLANG_VERSION:" \
      "pip install cargo-zigbuild==$CARGO_ZIGBUILD_VERSION ziglang==$ZIGLANG_VERSION" \
      "(or: source scripts/cross/tools.sh; cross_install)" >&2
    return 1
  }
}

cross_need_mingw() {
  command -v x86_64-w64-mingw32-gcc >/dev/null || {
    echo "$1: needs the mingw-w64 C compiler: apt-get install gcc-mingw-w64-x86-64" >&2
    return 1
  }
}
