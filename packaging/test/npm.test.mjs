// The npm packages as `npx -y mcp-secure-remote` users get them, from the `npm pack` tarballs: npm
// installs the launcher and the one platform package that matches, and the launcher runs the binary,
// forwarding signals and exit codes; on Linux the glibc 2.17 package with a SoftHSM token key
// (PKCS#11), and the -musl package where node runs on musl. Env: NPM_TARBALLS (dist/npm).
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  Bridge,
  PEM,
  VERSION,
  buildProbeModule,
  descendants,
  highestGlibc,
  programOf,
  run,
  session,
  softHsmToken,
  startEndpoint,
  tempDir,
  terminate,
} from "./support.mjs";

const { NPM_TARBALLS } = process.env;
assert.ok(NPM_TARBALLS, "set NPM_TARBALLS (make release-check does)");
const PLATFORM = `${process.platform}-${process.arch}`;
const tarball = (name) => path.join(NPM_TARBALLS, `${name}-${VERSION}.tgz`);
const LAUNCHER = tarball("mcp-secure-remote");
const BINARIES = tarball(`mcp-secure-remote-${PLATFORM}`);
const MUSL_BINARIES = tarball(`mcp-secure-remote-${PLATFORM}-musl`);
const TLS = ["--tls-cert", PEM.cert, "--tls-key", PEM.key, "--tls-ca", PEM.ca];

test("the tarballs are the launcher and one package per built platform, nothing else", () => {
  const names = readdirSync(NPM_TARBALLS).sort();
  assert.ok(names.includes(path.basename(LAUNCHER)) && names.includes(path.basename(BINARIES)), names.join(", "));
  for (const name of names) assert.match(name, /^mcp-secure-remote(-(linux|win32|darwin)-(x64|arm64)(-musl)?)?-\d+\.\d+\.\d+\.tgz$/);
});

/** npm with its cache (and so npx's install directory) in a temporary directory. */
function npmEnv(t) {
  return {
    ...process.env,
    npm_config_cache: path.join(tempDir(t, "npm"), "cache"),
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    npm_config_loglevel: "error",
  };
}

/** `npx -y --package <launcher.tgz> --package <platform.tgz> -- <bin> …`, as a config would run it. */
function npx(bin, args) {
  return ["npx", ["--yes", "--package", LAUNCHER, "--package", BINARIES, "--", bin, ...args]];
}

test("npx mcp-secure-remote: initialize, tools/call over mTLS, exit 0 on stdin EOF", async (t) => {
  const url = await startEndpoint(t);
  const [cmd, args] = npx("mcp-secure-remote", [url, ...TLS]);
  const out = await session(cmd, args, { env: npmEnv(t) });
  assert.equal(out.code, 0, out.stderr);
});

test("npx mcp-secure-remote-client: exit 0 on success, 1 for a refused client, 2 for a usage error", async (t) => {
  const url = await startEndpoint(t);
  const env = npmEnv(t);
  const ok = await run(...npx("mcp-secure-remote-client", [url, ...TLS]), { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /echo/);
  const refused = await run(...npx("mcp-secure-remote-client", [url, "--tls-ca", PEM.ca]), { env });
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stdout + refused.stderr, /client certificate/);
  const usage = await run(...npx("mcp-secure-remote", ["--no-such-flag"]), { env });
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /--no-such-flag/);
});

test("SIGTERM to npx ends the launcher and the bridge: nothing keeps running", async (t) => {
  const url = await startEndpoint(t);
  const [cmd, args] = npx("mcp-secure-remote", [url, ...TLS]);
  const out = await terminate(cmd, args, "mcp-secure-remote", { env: npmEnv(t) });
  assert.deepEqual(out.left, [], `still running after SIGTERM to npx:\n${out.left.join("\n")}`);
});

test("npx mcp-secure-remote: a session with the client key on a SoftHSM token (pkcs11: URI, module-path)", async (t) => {
  const url = await startEndpoint(t);
  const token = await softHsmToken(t);
  const env = { ...npmEnv(t), ...token.env };
  const [cmd, args] = npx("mcp-secure-remote", [url, "--tls-key", token.uri, "--tls-ca", PEM.ca]);
  const out = await session(cmd, args, { env });
  assert.equal(out.code, 0, out.stderr);
  const client = await run(...npx("mcp-secure-remote-client", [url, "--tls-key", token.uri, "--tls-ca", PEM.ca]), { env });
  assert.equal(client.code, 0, client.stderr);
  assert.match(client.stdout, /echo/);
});

/** The packages installed with npm into a temporary prefix (for running the launcher directly). */
async function installed(t, tarballs, flags = []) {
  const prefix = tempDir(t, "npm-prefix");
  const r = await run("npm", ["install", "--prefix", prefix, "--no-save", ...flags, ...tarballs], { env: npmEnv(t) });
  assert.equal(r.code, 0, r.stderr);
  return path.join(prefix, "node_modules/mcp-secure-remote/bin/mcp-secure-remote.js");
}

test("SIGTERM to the launcher reaches the bridge, and the launcher exits as the bridge did", async (t) => {
  const url = await startEndpoint(t);
  const launcher = await installed(t, [LAUNCHER, BINARIES]);
  const out = await terminate("node", [launcher, url, ...TLS], "mcp-secure-remote");
  assert.deepEqual(out.left, []);
  // The bridge ends a session on SIGTERM as on stdin EOF; the launcher passes its status on.
  const direct = await terminate(path.join(path.dirname(launcher), "../../@mcp-secure-remote", PLATFORM, "bin/mcp-secure-remote"), [url, ...TLS], "mcp-secure-remote");
  assert.deepEqual([out.code, out.signal], [direct.code, direct.signal]);
  assert.ok(out.code !== null || out.signal !== null);
});

test("without the platform package (optional dependencies omitted) the launcher says what to do", async (t) => {
  const launcher = await installed(t, [LAUNCHER], ["--omit=optional"]);
  const r = await run("node", [launcher, "--version"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`@mcp-secure-remote/${PLATFORM}, the package with the binary for ${PLATFORM}, is not installed`));
  assert.match(r.stderr, /--omit=optional/);
});

test("on a platform without a prebuilt binary the launcher names it and the ways to build from source", async (t) => {
  const launcher = await installed(t, [LAUNCHER, BINARIES]);
  // The launcher is run as it would be on FreeBSD: only process.platform differs.
  const shim = path.join(tempDir(t, "shim"), "freebsd.cjs");
  writeFileSync(shim, 'Object.defineProperty(process, "platform", { value: "freebsd" });\n');
  const r = await run("node", ["--require", shim, launcher, "--version"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`no prebuilt binary for freebsd-${process.arch}`));
  assert.match(r.stderr, /cargo install mcp-secure-remote/);
  assert.equal(r.stdout, "");
});

test("the glibc package's binaries need GLIBC_2.17 at most", async (t) => {
  const launcher = await installed(t, [LAUNCHER, BINARIES]);
  for (const name of ["mcp-secure-remote", "mcp-secure-remote-client"]) {
    const binary = path.join(path.dirname(launcher), "../../@mcp-secure-remote", PLATFORM, "bin", name);
    const highest = await highestGlibc(binary);
    t.diagnostic(`${PLATFORM}/${name}: highest GLIBC_${highest}`);
    assert.ok(highest, `${name} names no GLIBC_ version: not a glibc build`);
    const [major, minor] = highest.split(".").map(Number);
    assert.ok(major < 2 || (major === 2 && minor <= 17), `${name} needs GLIBC_${highest}, above 2.17`);
  }
});

// Every Linux package, of either architecture, read from its tarball: npm installs only this
// machine's, so the others are checked here by their ELF headers (the arm64 builds run under
// qemu-user in make test-cross and make wheels-check).
test("every Linux package holds a build that can load a PKCS#11 module: glibc 2.17 or dynamically linked musl", async (t) => {
  const linux = readdirSync(NPM_TARBALLS).filter((name) => /^mcp-secure-remote-linux-/.test(name));
  assert.deepEqual(
    linux.map((name) => name.replace(/-\d+\.\d+\.\d+\.tgz$/, "")).sort(),
    ["linux-arm64", "linux-arm64-musl", "linux-x64", "linux-x64-musl"].map((p) => `mcp-secure-remote-${p}`),
  );
  for (const name of linux) {
    const dir = tempDir(t, "linux-package");
    const x = await run("tar", ["-xzf", path.join(NPM_TARBALLS, name), "-C", dir]);
    assert.equal(x.code, 0, x.stderr);
    const binary = path.join(dir, "package/bin/mcp-secure-remote");
    const arch = name.includes("-arm64") ? "aarch64" : "x86_64";
    const r = await run("readelf", ["--program-headers", "--wide", binary]);
    assert.equal(r.code, 0, r.stderr);
    const interpreter = r.stdout.match(/Requesting program interpreter: (\S+)\]/)?.[1];
    t.diagnostic(`${name}: interpreter ${interpreter ?? "none (static)"}`);
    if (name.includes("-musl")) {
      assert.equal(interpreter, `/lib/ld-musl-${arch}.so.1`, `${name} is not the dynamically linked musl build`);
    } else {
      assert.equal(interpreter, arch === "aarch64" ? "/lib/ld-linux-aarch64.so.1" : "/lib64/ld-linux-x86-64.so.2");
      const highest = await highestGlibc(binary);
      assert.ok(highest && highest.split(".").map(Number)[1] <= 17 && highest.startsWith("2."), `${name} needs GLIBC_${highest}`);
    }
  }
});

// node on musl (Alpine) is simulated: a preload removes glibcVersionRuntime from node's report,
// which is all the launcher looks at. The -musl package's binary (dynamically linked musl) runs here
// through Debian's musl loader (the musl package, with musl-tools); SoftHSM is glibc-linked, so the
// PKCS#11 check loads the minimal packaging/test/pkcs11-probe.c built with musl-gcc.
test("on musl the launcher runs the -musl package: a session, and it dlopens a musl PKCS#11 module", async (t) => {
  // --force: npm (which does read `libc`) refuses the musl package on this glibc machine otherwise.
  const launcher = await installed(t, [LAUNCHER, BINARIES, MUSL_BINARIES], ["--force"]);
  const shim = path.join(tempDir(t, "shim"), "musl.cjs");
  writeFileSync(
    shim,
    "const report = process.report.getReport.bind(process.report);\n" +
      'Object.defineProperty(process.report, "getReport", { value: (...a) => { const r = report(...a); delete r.header.glibcVersionRuntime; return r; } });\n',
  );
  const url = await startEndpoint(t);
  const bridge = new Bridge("node", ["--require", shim, launcher, url, ...TLS]);
  try {
    await bridge.initialize();
    const programs = descendants(bridge.child.pid).map(programOf);
    assert.ok(
      programs.some((p) => p.endsWith(`@mcp-secure-remote/${PLATFORM}-musl/bin/mcp-secure-remote`)),
      `the launcher ran ${programs.join(", ")}, not the ${PLATFORM}-musl binary`,
    );
    assert.equal(await bridge.echo("hello from musl"), "hello from musl");
    assert.equal((await bridge.close()).code, 0, bridge.stderr);
  } finally {
    bridge.child.kill("SIGKILL");
  }
  const module = await buildProbeModule(t, "musl-gcc", "libprobe-musl.so");
  const r = await run("node", ["--require", shim, launcher, url, "--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", module, "--tls-ca", PEM.ca]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no PKCS#11 token matches pkcs11:token=mcp;object=client-rsa; tokens present: 'probe-token'/);
});
