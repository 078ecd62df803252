// The Linux wheel as a `uvx mcp-secure-remote` user gets it: installed by uv into a fresh
// environment, holding the very binaries `make dist`/`make musl` built, and run through `uvx --from`
// for a real mTLS session and a real test-client check.
// Env: WHEEL (the .whl for this machine), UV (the pinned uv), BINARIES (target/<triple>/release).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";

import { PEM, VERSION, run, session, sha256, startEndpoint, tempDir, terminate } from "./support.mjs";

const { WHEEL, UV, BINARIES } = process.env;
const UVX = UV && path.join(path.dirname(UV), "uvx");
assert.ok(WHEEL && UV && BINARIES, "set WHEEL, UV and BINARIES (make wheels-check does)");
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
