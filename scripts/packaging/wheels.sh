#!/usr/bin/env bash
# `make wheels`: one PyPI wheel per built target (maturin, `bindings = "bin"`: both binaries, no
# Python code) plus the sdist, into dist/. Linux wheels hold builds that can load a PKCS#11 module:
# manylinux_2_17 the glibc 2.17 build (zig), musllinux_1_2 x86_64 the dynamically linked musl build;
# musllinux_1_2 aarch64 is still the static build (no PKCS#11). See scripts/packaging/targets.sh.
set -euo pipefail
source "$(dirname "$0")/targets.sh"
source "$ROOT/scripts/cross/tools.sh" # MUSL_DYNAMIC_RUSTFLAGS
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

wheels=()
for build in $(built_triples); do
  triple=$(rust_triple "$build")
  tag=$(wheel_tag "$build")
  args=(build --release --target "$triple" --out dist)
  envs=()
  case "$build" in
    # zig links against the glibc of the tag (2.17), as `make dist` did with cargo-zigbuild.
    *-linux-gnu) args+=(--zig --compatibility "$tag") ;;
    # The same environment as scripts/dist.sh's build, so that cargo finds it up to date.
    x86_64-unknown-linux-musl-dynamic)
      args+=(--zig --compatibility "$tag" --target-dir "$(target_dir "$build")")
      envs=(CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$MUSL_DYNAMIC_RUSTFLAGS") ;;
    # Static musl binaries cannot dlopen a PKCS#11 module: built without it, as `make dist` does.
    *-linux-musl) args+=(--no-default-features --zig --compatibility "$tag") ;;
    # On a Mac (the release workflow) maturin links natively; elsewhere zig needs Apple's SDK.
    *-apple-darwin) [ "$(uname -s)" = Darwin ] || args+=(--zig) ;;
  esac
  # maturin runs cargo on the same target/ directory: for binaries that are up to date cargo only
  # re-links or does nothing. The wheel must hold the bytes that `make dist` archived, so compare.
  dir=$(release_dir "$build")
  before=$(cd "$dir" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  existing=$(ls dist/*.whl 2>/dev/null || true)
  quiet env ${envs[@]+"${envs[@]}"} "$MATURIN" "${args[@]}"
  after=$(cd "$dir" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  if [ "$before" != "$after" ]; then
    echo "wheels: maturin rebuilt $dir with different bytes; run make dist again" >&2
    exit 1
  fi
  for wheel in dist/*.whl; do
    grep -qxF "$wheel" <<<"$existing" || wheels+=("$wheel=$dir")
  done
done
quiet "$MATURIN" sdist --out dist

# Each wheel's binaries are the release build's, byte for byte.
python3 - "${wheels[@]}" <<'PY'
import hashlib, pathlib, sys, zipfile
for arg in sys.argv[1:]:
    wheel, built_dir = arg.split("=", 1)
    with zipfile.ZipFile(wheel) as z:
        scripts = [n for n in z.namelist() if ".data/scripts/" in n]
        if len(scripts) != 2:
            sys.exit(f"wheels: {wheel} holds {scripts}, expected both binaries")
        for name in scripts:
            built = pathlib.Path(built_dir) / name.rsplit("/", 1)[1]
            if hashlib.sha256(z.read(name)).digest() != hashlib.sha256(built.read_bytes()).digest():
                sys.exit(f"wheels: {name} in {wheel} is not {built}")
        print(f"  {pathlib.Path(wheel).name}: {', '.join(n.rsplit('/', 1)[1] for n in scripts)} from {built_dir}")
PY
ls -l dist/mcp_secure_remote-"$VERSION"* | awk '{ printf "%10s  %s\n", $5, $9 }'
