#!/usr/bin/env bash
# `make crate`: the crates.io package, verified the way `cargo publish` does it (`--dry-run`: package,
# build the packaged sources on their own, stop before the upload), copied to dist/. Checks that it
# holds only what Cargo.toml's `include` names (sources, manifest, lock file, README, LICENSE) and
# no private key.
set -euo pipefail
source "$(dirname "$0")/targets.sh"
cd "$ROOT"
# A work tree with uncommitted changes can still be checked; publishing needs a clean one.
dirty=()
[ -z "$(git status --porcelain 2>/dev/null)" ] || { dirty=(--allow-dirty); echo "crate: the work tree has uncommitted changes (checked anyway; commit before publishing)" >&2; }

cargo publish --dry-run --locked "${dirty[@]}" 2>&1 | grep -v -E '^warning: ignoring (test|example|bench) `' | grep -v -E '^\s+(Compiling|Downloaded|Downloading|Checking) '

# cargo publish leaves the .crate in target/package/tmp-crate/ (cargo package: target/package/).
crate=
for candidate in target/package/{tmp-crate/,}"mcp-secure-remote-$VERSION.crate"; do
  [ -f "$candidate" ] && { crate=$candidate; break; }
done
[ -n "$crate" ] || { echo "crate: cargo publish --dry-run left no .crate in target/package/" >&2; exit 1; }
unexpected=$(tar tzf "$crate" | sed "s|^mcp-secure-remote-$VERSION/||" |
  grep -v -E '^(src/.*\.rs|Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|README\.md|LICENSE|pyproject\.toml|\.cargo_vcs_info\.json)$' || true)
if [ -n "$unexpected" ]; then
  printf 'crate: files outside the include list:\n%s\n' "$unexpected" >&2
  exit 1
fi
python3 scripts/packaging/no-keys.py "$crate"
mkdir -p dist && cp "$crate" dist/
printf '%10s  dist/%s (%s files)\n' "$(stat -c %s "$crate")" "$(basename "$crate")" "$(tar tzf "$crate" | wc -l)"
