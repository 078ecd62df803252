#!/usr/bin/env bash
# `make wheels`: one PyPI wheel per built target (maturin, `bindings = "bin"`: both binaries, no
# Python code) plus the sdist, into dist/. Linux wheels hold the static musl binaries, so each is
# tagged for glibc and musl systems at once (manylinux_2_17 + musllinux_1_2).
set -euo pipefail
source "$(dirname "$0")/targets.sh"
cd "$ROOT"
MATURIN="$ROOT/.packaging/venv/bin/maturin"
# maturin --zig finds zig through the venv's python (the pinned ziglang package).
export PATH="$ROOT/.packaging/venv/bin:$PATH"
# maturin's progress is long: show the lines naming what it built, or everything when it fails.
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "wheels: $* failed" >&2
    return 1
  fi
  grep -E '^(📦|⚠️)' "$log" || true
  rm -f "$log"
}

mkdir -p dist
rm -f dist/mcp_secure_remote-*.whl dist/mcp_secure_remote-*.tar.gz

for triple in $(built_triples); do
  args=(build --release --target "$triple" --out dist)
  case "$triple" in
    # Static musl binaries cannot dlopen a PKCS#11 module: built without it, as `make musl` does.
    x86_64-unknown-linux-musl) args+=(--no-default-features --compatibility manylinux_2_17 musllinux_1_2) ;;
    *-linux-musl) args+=(--no-default-features --zig --compatibility manylinux_2_17 musllinux_1_2) ;;
    # On a Mac (the release workflow) maturin links natively; elsewhere zig needs Apple's SDK.
    *-apple-darwin) [ "$(uname -s)" = Darwin ] || args+=(--zig) ;;
  esac
  # maturin runs cargo on the same target/ directory: for binaries that are up to date cargo only
  # re-links or does nothing. The wheel must hold the bytes that `make dist` archived, so compare.
  before=$(cd "$(release_dir "$triple")" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  quiet "$MATURIN" "${args[@]}"
  after=$(cd "$(release_dir "$triple")" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  if [ "$before" != "$after" ]; then
    echo "wheels: maturin rebuilt target/$triple/release with different bytes; run make dist again" >&2
    exit 1
  fi
done
quiet "$MATURIN" sdist --out dist

# Each wheel's binaries are the release build's, byte for byte.
python3 - "$ROOT" dist/mcp_secure_remote-"$VERSION"-*.whl <<'PY'
import hashlib, pathlib, sys, zipfile
root = pathlib.Path(sys.argv[1])
for wheel in sys.argv[2:]:
    tag = wheel.rsplit("-", 1)[1]
    arch = "aarch64" if ("aarch64" in tag or "arm64" in tag) else "x86_64"
    triple = ("x86_64-pc-windows-gnu" if "win_amd64" in tag else
              f"{arch}-unknown-linux-musl" if "linux" in tag else f"{arch}-apple-darwin")
    with zipfile.ZipFile(wheel) as z:
        scripts = [n for n in z.namelist() if ".data/scripts/" in n]
        if len(scripts) != 2:
            sys.exit(f"wheels: {wheel} holds {scripts}, expected both binaries")
        for name in scripts:
            built = root / "target" / triple / "release" / name.rsplit("/", 1)[1]
            if hashlib.sha256(z.read(name)).digest() != hashlib.sha256(built.read_bytes()).digest():
                sys.exit(f"wheels: {name} in {wheel} is not {built}")
PY
ls -l dist/mcp_secure_remote-"$VERSION"* | awk '{ printf "%10s  %s\n", $5, $9 }'
