#!/usr/bin/env bash
# `make npm`: the npm tarballs in dist/npm/: `mcp-secure-remote` (the launcher in packaging/npm/,
# its optionalDependencies naming one package per built platform) and `@mcp-secure-remote/<platform>`
# for each target built in target/<triple>/release/ (both binaries; `os`/`cpu`, and `libc` on Linux,
# let npm install only the matching one; an npm that ignores `libc` installs both Linux packages and
# the launcher picks by the libc node runs on). Linux: glibc 2.17 builds (PKCS#11) in linux-x64 and
# linux-arm64, dynamically linked musl builds (PKCS#11) in linux-x64-musl and linux-arm64-musl.
# `npm pack` makes each tarball exactly as `npm publish` would upload it.
set -euo pipefail
source "$(dirname "$0")/targets.sh"
cd "$ROOT"
STAGE="$ROOT/target/npm"
OUT="$ROOT/dist/npm"
rm -rf "$STAGE" "$OUT" && mkdir -p "$STAGE" "$OUT"

platforms=()
for triple in $(built_triples); do
  platform=$(node_platform "$triple")
  dir="$STAGE/$platform"
  mkdir -p "$dir/bin"
  for bin in "${BINARIES[@]}"; do
    cp "$(release_dir "$triple")/$bin$(exe_suffix "$triple")" "$dir/bin/"
  done
  cp LICENSE "$dir/"
  node - "$dir" "$platform" "$VERSION" "$triple" <<'JS'
const fs = require("fs");
const [dir, platform, version, triple] = process.argv.slice(2);
const [os, cpu, libc] = platform.split("-");
const pkg = {
  name: `@mcp-secure-remote/${platform}`,
  version,
  description: `The ${platform} binaries of mcp-secure-remote (${triple}); install mcp-secure-remote instead`,
  homepage: "https://github.com/framedparadox/mcp-secure-remote#readme",
  repository: { type: "git", url: "git+https://github.com/framedparadox/mcp-secure-remote.git" },
  license: "MIT",
  os: [os],
  cpu: [cpu],
  ...(os === "linux" ? { libc: [libc === "musl" ? "musl" : "glibc"] } : {}),
  files: ["bin"],
  preferUnplugged: true,
};
fs.writeFileSync(`${dir}/package.json`, JSON.stringify(pkg, null, 2) + "\n");
fs.writeFileSync(`${dir}/README.md`, `# ${pkg.name}\n\n${pkg.description}: \`npx -y mcp-secure-remote\`.\n`);
JS
  platforms+=("$platform")
done

cp -r packaging/npm/mcp-secure-remote "$STAGE/mcp-secure-remote"
cp LICENSE "$STAGE/mcp-secure-remote/"
node - "$STAGE/mcp-secure-remote/package.json" "$VERSION" "${platforms[@]}" <<'JS'
const fs = require("fs");
const [file, version, ...platforms] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.version = version;
pkg.optionalDependencies = Object.fromEntries(platforms.map((p) => [`@mcp-secure-remote/${p}`, version]));
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
JS

for dir in "$STAGE"/*/; do
  (cd "$dir" && npm pack --silent --pack-destination "$OUT" >/dev/null)
done
ls -l "$OUT"/*.tgz | awk '{ printf "%10s  %s\n", $5, $9 }' | sed "s|$ROOT/||"
