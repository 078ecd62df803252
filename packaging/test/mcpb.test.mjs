// The Claude Desktop bundle as Claude Desktop runs it: unpacked by the mcpb CLI, its manifest turned
// into a command line and environment by the mcpb library's own getMcpConfigForManifest (the code
// the desktop app uses), and that exact command run for a real mTLS session.
// Env: MCPB_BUNDLE (dist/mcp-secure-remote-<version>.mcpb), MCPB_HOME (.packaging, with the pinned CLI).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import { P12, PEM, VERSION, Bridge, run, session, startEndpoint, tempDir } from "./support.mjs";

const { MCPB_BUNDLE, MCPB_HOME } = process.env;
assert.ok(MCPB_BUNDLE && MCPB_HOME, "set MCPB_BUNDLE and MCPB_HOME (make release-check does)");
const mcpb = await import(pathToFileURL(path.join(MCPB_HOME, "node_modules/@anthropic-ai/mcpb/dist/index.js")));

/** The bundle unpacked by `mcpb unpack`, as the desktop app installs it. */
async function unpacked(t) {
  const dir = path.join(tempDir(t, "mcpb"), "mcp-secure-remote");
  const r = await run(path.join(MCPB_HOME, "node_modules/.bin/mcpb"), ["unpack", MCPB_BUNDLE, dir]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, manifest: JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) };
}

/** The command, arguments and environment the desktop app derives from the user's settings. */
async function configFor(bundle, userConfig) {
  const config = await mcpb.getMcpConfigForManifest({
    manifest: bundle.manifest,
    extensionPath: bundle.dir,
    systemDirs: { HOME: process.env.HOME ?? "/root" },
    userConfig,
    pathSeparator: path.sep,
  });
  if (config === undefined) return undefined;
  const all = JSON.stringify([config.command, config.args, config.env]);
  assert.doesNotMatch(all, /\$\{/, `a setting was passed through unsubstituted: ${all}`);
  return config;
}

function spawnOptions(config) {
  // The app's own environment (PATH, HOME) plus the manifest's; no SSL_CERT_* from the test runner.
  return { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...config.env } };
}

test("the packed manifest validates, has this version, and the Linux binary is executable", async (t) => {
  const bundle = await unpacked(t);
  assert.equal(bundle.manifest.version, VERSION);
  const r = await run(path.join(MCPB_HOME, "node_modules/.bin/mcpb"), ["validate", path.join(bundle.dir, "manifest.json")]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const config = await configFor(bundle, { server_url: "https://127.0.0.1:9/mcp" });
  const version = await run(config.command, ["--version"]);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, new RegExp(VERSION.replaceAll(".", "\\.")));
});

test("PEM certificate + key + CA from the settings form: initialize and tools/call over mTLS", async (t) => {
  const url = await startEndpoint(t);
  const bundle = await unpacked(t);
  // PKCS#12, passphrase and transport left empty (not in the settings at all).
  const config = await configFor(bundle, { server_url: url, tls_cert: PEM.cert, tls_key: PEM.key, tls_ca: PEM.ca });
  const out = await session(config.command, config.args, spawnOptions(config));
  assert.equal(out.code, 0, out.stderr);
});

test("PKCS#12 bundle + passphrase: a real session, and the passphrase never reaches stderr", async (t) => {
  const url = await startEndpoint(t);
  const bundle = await unpacked(t);
  const config = await configFor(bundle, {
    server_url: url,
    tls_pfx: P12.pfx,
    tls_passphrase: P12.passphrase,
    tls_ca: PEM.ca,
    // Fields the user cleared in the form arrive as empty strings: they count as unset.
    tls_cert: "",
    tls_key: "",
  });
  const out = await session(config.command, config.args, spawnOptions(config));
  assert.equal(out.code, 0, out.stderr);
  assert.ok(!out.stderr.includes(P12.passphrase));
});

test("a wrong passphrase ends the bridge with exit 1 and says so", async (t) => {
  const url = await startEndpoint(t);
  const bundle = await unpacked(t);
  const config = await configFor(bundle, { server_url: url, tls_pfx: P12.pfx, tls_passphrase: "not-it", tls_ca: PEM.ca });
  const bridge = new Bridge(config.command, config.args, spawnOptions(config));
  const exit = await bridge.waitExit();
  assert.equal(exit.code, 1);
  assert.match(bridge.stderr, /wrong passphrase/);
  assert.ok(!bridge.stderr.includes("not-it"));
});

test("transport from the form: sse-only against the legacy endpoint", async (t) => {
  const url = await startEndpoint(t);
  const bundle = await unpacked(t);
  const config = await configFor(bundle, {
    server_url: url.replace(/\/mcp$/, "/sse"),
    transport: "sse-only",
    tls_cert: PEM.cert,
    tls_key: PEM.key,
    tls_ca: PEM.ca,
  });
  assert.deepEqual(config.args.slice(1), ["--transport", "sse-only"]);
  const out = await session(config.command, config.args, spawnOptions(config));
  assert.equal(out.code, 0, out.stderr);
});

test("every optional field empty: the bridge starts and answers initialize with the diagnosis", async (t) => {
  const url = await startEndpoint(t);
  const bundle = await unpacked(t);
  const cases = [
    // Only the CA: the server is trusted, and it refuses the missing client certificate.
    [{ server_url: url, tls_ca: PEM.ca }, /client certificate/],
    // Nothing at all (the system trust store does not know the test CA).
    [{ server_url: url }, /not trusted/],
    // Every field present but empty, as a form that was cleared sends them.
    [{ server_url: url, tls_cert: "", tls_key: "", tls_pfx: "", tls_ca: "", tls_passphrase: "" }, /not trusted/],
  ];
  for (const [userConfig, diagnosis] of cases) {
    const config = await configFor(bundle, userConfig);
    const bridge = new Bridge(config.command, config.args, spawnOptions(config));
    try {
      bridge.send({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      });
      const answer = await bridge.recv();
      assert.equal(answer.id, 0);
      assert.match(answer.error?.message ?? "", diagnosis, `${JSON.stringify(userConfig)}: ${JSON.stringify(answer)}`);
      const exit = await bridge.close();
      assert.notEqual(exit.code, null, "the bridge must exit on stdin EOF");
    } finally {
      bridge.child.kill("SIGKILL");
    }
  }
});

test("without the required server URL the app gets no command to start", async (t) => {
  const bundle = await unpacked(t);
  assert.equal(await configFor(bundle, { tls_ca: PEM.ca }), undefined);
});
