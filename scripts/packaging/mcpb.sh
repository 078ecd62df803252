#!/usr/bin/env bash
# `make mcpb`: the Claude Desktop bundle dist/mcp-secure-remote-<version>.mcpb, from
# packaging/mcpb/manifest.json and the bridge binaries in target/<triple>/release/.
# A bundle picks its command by OS only (mcp_config.platform_overrides), not by CPU, so it holds one
# binary per OS: Linux x86_64 (static musl), Windows x86_64, and macOS only as a universal2 binary
# (arm64 + x86_64 in one file). Platforms without their binary are left out of the manifest's
# `compatibility.platforms`, with the reason printed.
set -euo pipefail
source "$(dirname "$0")/targets.sh"
cd "$ROOT"
MCPB="$ROOT/.packaging/node_modules/.bin/mcpb"
STAGE="$ROOT/target/mcpb/mcp-secure-remote"
OUT="$ROOT/dist/mcp-secure-remote-$VERSION.mcpb"

# <mcpb platform> <bundle directory> <cargo target directory> <binary>
BUNDLE_BINARIES=(
  "linux  linux-x64        x86_64-unknown-linux-musl  mcp-secure-remote"
  "win32  win32-x64        x86_64-pc-windows-gnu      mcp-secure-remote.exe"
  "darwin darwin-universal universal2-apple-darwin    mcp-secure-remote"
)

rm -rf "$STAGE" && mkdir -p "$STAGE/server" dist
platforms=()
for entry in "${BUNDLE_BINARIES[@]}"; do
  read -r platform dir triple bin <<<"$entry"
  src="$(release_dir "$triple")/$bin"
  if [ ! -x "$src" ]; then
    printf 'skip %-7s target/%s/release/%s is not built (make dist builds it)\n' "$platform" "$triple" "$bin" >&2
    continue
  fi
  mkdir -p "$STAGE/server/$dir"
  cp "$src" "$STAGE/server/$dir/$bin"
  platforms+=("$platform")
done
[ "${platforms[0]:-}" = linux ] || { echo "mcpb: the Linux x86_64 binary is missing (make musl)" >&2; exit 1; }
cp LICENSE "$STAGE/"

# The manifest for what is in the bundle: this version, and only the platforms it has binaries for.
node - "$ROOT/packaging/mcpb/manifest.json" "$STAGE/manifest.json" "$VERSION" "${platforms[@]}" <<'JS'
const fs = require("fs");
const [src, dst, version, ...platforms] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(src, "utf8"));
manifest.version = version;
manifest.compatibility.platforms = platforms;
const overrides = manifest.server.mcp_config.platform_overrides;
for (const platform of Object.keys(overrides)) if (!platforms.includes(platform)) delete overrides[platform];
fs.writeFileSync(dst, JSON.stringify(manifest, null, 2) + "\n");
JS

"$MCPB" validate "$STAGE/manifest.json"
rm -f "$OUT"
"$MCPB" pack "$STAGE" "$OUT" >/dev/null
"$MCPB" info "$OUT" | grep -v -E '^\s*$' | head -n 8
printf '%10s  %s  (platforms: %s)\n' "$(stat -c %s "$OUT")" "${OUT#"$ROOT"/}" "${platforms[*]}"
