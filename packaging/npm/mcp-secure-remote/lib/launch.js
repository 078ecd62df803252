// Runs the prebuilt binary of this platform's package (@mcp-secure-remote/<platform>-<arch>, an
// optional dependency that npm installs only where its `os`/`cpu` match), as esbuild and biome do.
// The binary inherits stdin/stdout/stderr, so the MCP stream and the agent's stdin EOF reach it
// directly; this process only forwards termination signals and mirrors the exit status, so that an
// agent stopping `npx mcp-secure-remote` stops the bridge too.
"use strict";

const { spawn } = require("child_process");
const { constants } = require("os");

// Keep in step with scripts/packaging/targets.sh (the targets `make dist` builds). Linux has a
// package per C library: the glibc one (glibc 2.17 or later) cannot start on musl (Alpine).
const PLATFORMS = [
  "linux-x64",
  "linux-arm64",
  "linux-x64-musl",
  "linux-arm64-musl",
  "win32-x64",
  "darwin-arm64",
  "darwin-x64",
];
const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"];

function fail(message) {
  process.stderr.write(`mcp-secure-remote: ${message}\n`);
  process.exit(1);
}

/**
 * Whether node runs on musl: node's own report names the glibc it runs on, and has no such field on
 * musl (what detect-libc, used by sharp and others, reads first). Looking for /lib/ld-musl-* would
 * be wrong on a glibc system that also has musl installed.
 */
function isMusl() {
  if (process.platform !== "linux") return false;
  try {
    return !process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return false;
  }
}

function binaryPath(name) {
  const platform = `${process.platform}-${process.arch}${isMusl() ? "-musl" : ""}`;
  if (!PLATFORMS.includes(platform)) {
    fail(
      `no prebuilt binary for ${platform} (there are: ${PLATFORMS.join(", ")}). ` +
        "Build it from source instead: `cargo install mcp-secure-remote`, or `uvx mcp-secure-remote` with a Rust toolchain installed.",
    );
  }
  const pkg = `@mcp-secure-remote/${platform}`;
  const file = `${pkg}/bin/${name}${process.platform === "win32" ? ".exe" : ""}`;
  try {
    return require.resolve(file);
  } catch {
    fail(
      `${pkg}, the package with the binary for ${platform}, is not installed. npm leaves it out when ` +
        "optional dependencies are omitted (--omit=optional, --no-optional, optional=false in .npmrc): install again without that.",
    );
  }
}

function launch(name) {
  const binary = binaryPath(name);
  const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", windowsHide: true });
  const forward = (signal) => child.kill(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  child.on("error", (err) => fail(`cannot start ${binary}: ${err.message}`));
  child.on("exit", (code, signal) => {
    if (signal) {
      // Die of the same signal, so the agent sees what it would have seen without this launcher.
      for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
      process.kill(process.pid, signal);
      // Only reached if the signal is ignored here: exit as a shell reports a signal death.
      process.exitCode = 128 + (constants.signals[signal] ?? 0);
      return;
    }
    process.exit(code ?? 1);
  });
}

module.exports = { launch, PLATFORMS, isMusl };
