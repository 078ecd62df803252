#!/usr/bin/env bash
# `make wheels`: one PyPI wheel per built target (`bindings = "bin"`: both binaries, no Python code)
# plus the sdist (maturin), into dist/. Windows and macOS wheels are maturin's; the Linux ones are
# written around the binaries `make dist` built (wheel_from_binaries.py, with the sdist's metadata),
# because maturin --zig would compile everything again. Linux wheels hold builds that can load a PKCS#11 module:
# manylinux_2_17 the glibc 2.17 build (zig), musllinux_1_2 the dynamically linked musl build.
# See scripts/packaging/targets.sh.
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

# The sdist first: its PKG-INFO is the core metadata of the Linux wheels below (maturin's own).
quiet "$MATURIN" sdist --out dist
pkg_info=$(mktemp)
tar -xzOf dist/mcp_secure_remote-"$VERSION".tar.gz "mcp_secure_remote-$VERSION/PKG-INFO" >"$pkg_info"

# The shared libraries a Linux wheel's binaries may need: what every glibc (manylinux) or musl
# (musllinux) system has. maturin's own audit is not run for these wheels.
linux_libs_check() { # BUILD DIR
  local allowed bin lib
  case "$1" in
    *-linux-gnu) allowed='^(libc\.so\.6|libdl\.so\.2|libpthread\.so\.0|libm\.so\.6|librt\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$' ;;
    *) allowed='^libc\.so$' ;;
  esac
  for bin in "${BINARIES[@]}"; do
    for lib in $(readelf --dynamic --wide "$2/$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      grep -Eq "$allowed" <<<"$lib" || { echo "wheels: $2/$bin needs $lib, which a $1 system may lack" >&2; return 1; }
    done
  done
}

wheels=()
for build in $(built_triples); do
  triple=$(rust_triple "$build")
  tag=$(wheel_tag "$build")
  dir=$(release_dir "$build")
  # Linux: the wheel is written around the binaries `make dist` built (scripts/packaging/
  # wheel_from_binaries.py says why not maturin); the tag names the glibc/musl they need.
  if [[ $build == *-linux-* ]]; then
    arch=${triple%%-*}
    case "$tag" in
      manylinux_2_17) platforms="manylinux2014_$arch.manylinux_2_17_$arch" ;;
      *) platforms="${tag}_$arch" ;;
    esac
    linux_libs_check "$build" "$dir"
    wheel=$(python3 scripts/packaging/wheel_from_binaries.py dist "$pkg_info" LICENSE "$platforms" \
      "${BINARIES[@]/#/$dir/}")
    echo "📦 Built wheel $wheel"
    wheels+=("$wheel=$dir")
    continue
  fi
  # Windows and macOS: maturin. On a Mac (the release workflow) it links natively; elsewhere zig
  # needs Apple's SDK.
  args=(build --release --target "$triple" --out dist)
  case "$build" in *-apple-darwin) [ "$(uname -s)" = Darwin ] || args+=(--zig) ;; esac
  # maturin runs cargo on the same target/ directory: for binaries that are up to date cargo only
  # re-links or does nothing. The wheel must hold the bytes that `make dist` archived, so compare.
  before=$(cd "$dir" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  existing=$(ls dist/*.whl 2>/dev/null || true)
  quiet "$MATURIN" "${args[@]}"
  after=$(cd "$dir" && sha256sum "${BINARIES[@]/%/$(exe_suffix "$triple")}")
  if [ "$before" != "$after" ]; then
    echo "wheels: maturin rebuilt $dir with different bytes; run make dist again" >&2
    exit 1
  fi
  for wheel in dist/*.whl; do
    grep -qxF "$wheel" <<<"$existing" || wheels+=("$wheel=$dir")
  done
done
rm -f "$pkg_info"

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
