// The Linux wheels as a `uvx mcp-secure-remote` user gets them: the manylinux wheel installed by uv
// into a fresh environment, holding the very binaries `make dist` built (glibc 2.17, PKCS#11), and
// run through `uvx --from` for real mTLS sessions (a key in a file, a key on a SoftHSM token) and a
// real test-client check; the musllinux wheel's dynamically linked musl binary run directly (uv on
// this glibc machine would not pick it), loading a musl-built PKCS#11 module; the musllinux aarch64
// wheel's the same way under qemu-user.
// Env: WHEEL (the manylinux .whl for this machine), MUSL_WHEEL (the musllinux x86_64 .whl),
// MUSL_ARM64_WHEEL (the musllinux aarch64 .whl), UV (the pinned uv), BINARIES (target/<triple>/release
// of the manylinux wheel's build), QEMU_AARCH64, ARM64_MUSL_ROOT (arm64 musl's loader, for qemu -L)
// and ZIG_CC (zig's cc command, for an aarch64 musl probe module): scripts/cross/tools.sh's.
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  PEM,
  VERSION,
  buildProbeModule,
  highestGlibc,
  run,
  session,
  sha256,
  softHsmToken,
  startEndpoint,
  tempDir,
  terminate,
} from "./support.mjs";

const { WHEEL, MUSL_WHEEL, MUSL_ARM64_WHEEL, UV, BINARIES, QEMU_AARCH64, ARM64_MUSL_ROOT, ZIG_CC } = process.env;
const UVX = UV && path.join(path.dirname(UV), "uvx");
assert.ok(
  WHEEL && MUSL_WHEEL && MUSL_ARM64_WHEEL && UV && BINARIES && QEMU_AARCH64 && ARM64_MUSL_ROOT && ZIG_CC,
  "set WHEEL, MUSL_WHEEL, MUSL_ARM64_WHEEL, UV, BINARIES, QEMU_AARCH64, ARM64_MUSL_ROOT and ZIG_CC (make wheels-check does)",
);
const TLS = ["--tls-cert", PEM.cert, "--tls-key", PEM.key, "--tls-ca", PEM.ca];

/** uv with its cache, tools and Python downloads confined to a temporary directory, offline. */
function uvEnv(t) {
  const dir = tempDir(t, "uv");
  return {
    ...process.env,
    UV_CACHE_DIR: path.join(dir, "cache"),
    UV_TOOL_DIR: path.join(dir, "tools"),
    UV_PYTHON_DOWNLOADS: "never",
    UV_OFFLINE: "1",
    UV_NO_CONFIG: "1",
  };
}

test("uv installs the wheel into a fresh venv: both binaries, byte for byte the release build", async (t) => {
  const env = uvEnv(t);
  const venv = path.join(tempDir(t, "venv"), "venv");
  let r = await run(UV, ["venv", "--quiet", venv], { env });
  assert.equal(r.code, 0, r.stderr);
  r = await run(UV, ["pip", "install", "--quiet", "--python", path.join(venv, "bin/python"), WHEEL], { env });
  assert.equal(r.code, 0, r.stderr);
  for (const name of ["mcp-secure-remote", "mcp-secure-remote-client"]) {
    const installed = path.join(venv, "bin", name);
    assert.equal(sha256(installed), sha256(path.join(BINARIES, name)), `${name} differs from ${BINARIES}`);
    r = await run(installed, ["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(VERSION.replaceAll(".", "\\.")));
  }
});

test("uvx --from <wheel> mcp-secure-remote: initialize, tools/call over mTLS, exit 0 on stdin EOF", async (t) => {
  const url = await startEndpoint(t);
  const out = await session(UVX, ["--from", WHEEL, "mcp-secure-remote", url, ...TLS], { env: uvEnv(t) });
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.init.serverInfo, "initialize result without serverInfo");
});

test("the manylinux wheel's binaries need GLIBC_2.17 at most (its manylinux_2_17 tag)", async (t) => {
  assert.match(path.basename(WHEEL), /manylinux_2_17_x86_64/);
  for (const name of ["mcp-secure-remote", "mcp-secure-remote-client"]) {
    const highest = await highestGlibc(path.join(BINARIES, name));
    t.diagnostic(`${name}: highest GLIBC_${highest}`);
    assert.ok(highest, `${name} names no GLIBC_ version: not a glibc build`);
    const [major, minor] = highest.split(".").map(Number);
    assert.ok(major < 2 || (major === 2 && minor <= 17), `${name} needs GLIBC_${highest}, above 2.17`);
  }
});

test("uvx --from <wheel> mcp-secure-remote: a session with the client key on a SoftHSM token (pkcs11: URI, module-path)", async (t) => {
  const url = await startEndpoint(t);
  const token = await softHsmToken(t);
  const args = [url, "--tls-key", token.uri, "--tls-ca", PEM.ca];
  const out = await session(UVX, ["--from", WHEEL, "mcp-secure-remote", ...args], { env: { ...uvEnv(t), ...token.env } });
  assert.equal(out.code, 0, out.stderr);
  // The test client too, and the certificate came from the token (no --tls-cert given).
  const r = await run(UVX, ["--from", WHEEL, "mcp-secure-remote-client", ...args], { env: { ...uvEnv(t), ...token.env } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /echo/);
});

/** A musllinux wheel's two binaries, unpacked into a temporary directory. */
async function muslBinaries(t, wheel = MUSL_WHEEL) {
  const dir = tempDir(t, "musl-wheel");
  const unzip = `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if ".data/scripts/" in n:
        open(sys.argv[2] + "/" + n.rsplit("/", 1)[1], "wb").write(z.read(n))`;
  const r = await run("python3", ["-c", unzip, wheel, dir]);
  assert.equal(r.code, 0, r.stderr);
  const bins = { proxy: path.join(dir, "mcp-secure-remote"), client: path.join(dir, "mcp-secure-remote-client") };
  for (const bin of Object.values(bins)) chmodSync(bin, 0o755);
  return bins;
}

// The same check for each architecture's musllinux wheel.
for (const [arch, wheel] of [["x86_64", MUSL_WHEEL], ["aarch64", MUSL_ARM64_WHEEL]]) {
  test(`the musllinux ${arch} wheel holds a dynamically linked musl build (ld-musl-${arch}), not the static one`, async (t) => {
    assert.match(path.basename(wheel), new RegExp(`musllinux_1_2_${arch}`));
    const { proxy } = await muslBinaries(t, wheel);
    const r = await run("readelf", ["--program-headers", "--dynamic", "--wide", proxy]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`Requesting program interpreter: /lib/ld-musl-${arch}.so.1`), r.stdout);
    assert.match(r.stdout, /NEEDED.*libc\.so/);
    assert.doesNotMatch(r.stdout, /GLIBC_/);
  });
}

// Needs musl's loader here (/lib/ld-musl-x86_64.so.1, Debian's musl package under musl-tools) and
// musl-gcc. SoftHSM's module is glibc-linked C++, which a musl process cannot load: the module is the
// minimal packaging/test/pkcs11-probe.c, so this proves dlopen + the PKCS#11 calls, not a signature.
test("the musllinux wheel's binaries run (mTLS session) and dlopen a musl-built PKCS#11 module", async (t) => {
  const { proxy, client } = await muslBinaries(t);
  const url = await startEndpoint(t);
  const out = await session(proxy, [url, "--tls-cert", PEM.cert, "--tls-key", PEM.key, "--tls-ca", PEM.ca]);
  assert.equal(out.code, 0, out.stderr);
  const module = await buildProbeModule(t, "musl-gcc", "libprobe-musl.so");
  const r = await run(client, [url, "--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", module, "--tls-ca", PEM.ca]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no PKCS#11 token matches pkcs11:token=mcp;object=client-rsa; tokens present: 'probe-token'/);
});

// Under qemu-user, with Debian's arm64 musl loader as the root (-L); the probe module is built for
// aarch64 musl by zig, for the reason above.
test("the musllinux aarch64 wheel's binaries run under qemu-user (mTLS session) and dlopen an aarch64 musl PKCS#11 module", async (t) => {
  const { proxy, client } = await muslBinaries(t, MUSL_ARM64_WHEEL);
  const qemu = (bin) => ["-L", ARM64_MUSL_ROOT, bin];
  const url = await startEndpoint(t);
  const out = await session(QEMU_AARCH64, [...qemu(proxy), url, ...TLS]);
  assert.equal(out.code, 0, out.stderr);
  const module = await buildProbeModule(t, [...ZIG_CC.split(" "), "-target", "aarch64-linux-musl"], "libprobe-musl-arm64.so");
  const r = await run(QEMU_AARCH64, [...qemu(client), url, "--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", module, "--tls-ca", PEM.ca]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no PKCS#11 token matches pkcs11:token=mcp;object=client-rsa; tokens present: 'probe-token'/);
});

test("uvx --from <wheel> mcp-secure-remote-client checks the endpoint, and diagnoses a refused client", async (t) => {
  const url = await startEndpoint(t);
  const env = uvEnv(t);
  const ok = await run(UVX, ["--from", WHEEL, "mcp-secure-remote-client", url, ...TLS], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /echo/);
  const refused = await run(
    UVX,
    ["--from", WHEEL, "mcp-secure-remote-client", url, "--tls-ca", PEM.ca],
    { env },
  );
  assert.equal(refused.code, 1, "a client without a certificate must exit 1");
  assert.match(refused.stdout + refused.stderr, /client certificate/);
});

test("SIGTERM to uvx ends the bridge below it: nothing keeps running", async (t) => {
  const url = await startEndpoint(t);
  const out = await terminate(UVX, ["--from", WHEEL, "mcp-secure-remote", url, ...TLS], "mcp-secure-remote", {
    env: uvEnv(t),
  });
  assert.deepEqual(out.left, [], `still running after SIGTERM to uvx:\n${out.left.join("\n")}`);
});

test("a usage error reaches the agent as exit code 2 through uvx", async (t) => {
  const r = await run(UVX, ["--from", WHEEL, "mcp-secure-remote", "--no-such-flag"], { env: uvEnv(t) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--no-such-flag/);
});

test("the sdist builds from source (what a platform without a wheel gets) and runs", async (t) => {
  const { SDIST } = process.env;
  assert.ok(SDIST, "set SDIST");
  const out = tempDir(t, "sdist-wheel");
  // Online for the build backend (maturin, pinned in pyproject.toml); cargo reuses the dependencies
  // already compiled in this checkout's target/ directory.
  const env = { ...uvEnv(t), UV_OFFLINE: "0", CARGO_TARGET_DIR: path.join(path.dirname(BINARIES), "../..") };
  let r = await run(UV, ["build", "--quiet", "--wheel", "--out-dir", out, SDIST], { env, timeout: 900_000 });
  assert.equal(r.code, 0, r.stderr);
  const venv = path.join(out, "venv");
  r = await run(UV, ["venv", "--quiet", venv], { env });
  assert.equal(r.code, 0, r.stderr);
  r = await run(UV, ["pip", "install", "--quiet", "--offline", "--python", path.join(venv, "bin/python"), "--find-links", out, "mcp-secure-remote"], { env });
  assert.equal(r.code, 0, r.stderr);
  r = await run(path.join(venv, "bin/mcp-secure-remote"), ["--version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(VERSION.replaceAll(".", "\\.")));
});
