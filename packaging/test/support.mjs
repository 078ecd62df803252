// Shared by the packaging tests: the local mTLS endpoint (examples/mtls_endpoint) and a real MCP
// session (initialize, tools/call, stdin EOF) through whatever command an installed artifact gives.
// Loopback only; every wait is bounded.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = path.join(ROOT, "fixtures");
export const PEM = {
  cert: path.join(FIXTURES, "client-rsa.crt"),
  key: path.join(FIXTURES, "client-rsa.key"),
  ca: path.join(FIXTURES, "ca.crt"),
};
export const P12 = { pfx: path.join(FIXTURES, "client.p12"), passphrase: "fixture-pass" };
export const VERSION = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];

const WAIT_MS = 20_000;

/** Where Debian (and Ubuntu, Fedora) put SoftHSM2's module; as in tests/support/softhsm.rs. */
const SOFTHSM_MODULES = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib64/pkcs11/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
];

/** A temporary directory, removed when the test ends. */
export function tempDir(t, prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256(file) {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Starts examples/mtls_endpoint (client certificates signed by fixtures/ca.crt required). */
export async function startEndpoint(t, args = []) {
  const bin = process.env.MTLS_ENDPOINT ?? path.join(ROOT, "target/release/examples/mtls_endpoint");
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => child.kill("SIGKILL"));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${bin} printed no PORT= line`)), WAIT_MS);
    child.on("error", reject);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/^PORT=(\d+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return `https://127.0.0.1:${port}/mcp`;
}

/** Runs `command args` to completion with stdin closed; resolves {code, signal, stdout, stderr}. */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not finish within ${options.timeout ?? 120_000} ms`));
    }, options.timeout ?? 120_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A bridge process spoken to over stdio as an agent would, one JSON-RPC frame per line. */
export class Bridge {
  constructor(command, args, options = {}) {
    this.child = spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] });
    this.stderr = "";
    this.child.stderr.on("data", (c) => (this.stderr += c));
    this.lines = [];
    this.waiters = [];
    let buf = "";
    this.child.stdout.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        this.waiters.splice(0).forEach((w) => w());
      }
    });
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code, signal) => resolve({ code, signal })),
    );
    this.child.on("close", () => this.waiters.splice(0).forEach((w) => w()));
  }

  send(message) {
    this.child.stdin.write(JSON.stringify(message) + "\n");
  }

  /** The next stdout frame, parsed. */
  async recv() {
    const deadline = Date.now() + WAIT_MS;
    while (this.lines.length === 0) {
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`no answer from the bridge; its stderr:\n${this.stderr}`);
      }
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return JSON.parse(this.lines.shift());
  }

  async request(id, method, params) {
    this.send({ jsonrpc: "2.0", id, method, params });
    const answer = await this.recv();
    if (answer.id !== id) throw new Error(`expected the answer to ${id}, got ${JSON.stringify(answer)}`);
    return answer;
  }

  /** initialize + notifications/initialized; returns the server's initialize result. */
  async initialize() {
    const answer = await this.request(0, "initialize", {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "packaging-test", version: "1" },
    });
    if (!answer.result) throw new Error(`initialize failed: ${JSON.stringify(answer)}; stderr:\n${this.stderr}`);
    this.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    return answer.result;
  }

  /** tools/call echo; returns the echoed text. */
  async echo(text) {
    const answer = await this.request(1, "tools/call", { name: "echo", arguments: { text } });
    const got = answer.result?.content?.[0]?.text;
    if (got === undefined) throw new Error(`tools/call failed: ${JSON.stringify(answer)}`);
    return got;
  }

  /** Closes stdin (the MCP stdio shutdown signal) and waits for the exit. */
  async close() {
    this.child.stdin.end();
    return this.waitExit();
  }

  async waitExit() {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the bridge did not exit; stderr:\n${this.stderr}`)), WAIT_MS);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The whole session an agent has: initialize, one tools/call, stdin EOF. Returns the exit status and
 * the initialize result; throws with the bridge's stderr when anything is off.
 */
export async function session(command, args, options = {}) {
  const bridge = new Bridge(command, args, options);
  try {
    const init = await bridge.initialize();
    const text = await bridge.echo("hello over mTLS");
    if (text !== "hello over mTLS") throw new Error(`echo returned ${JSON.stringify(text)}`);
    const exit = await bridge.close();
    return { ...exit, init, stderr: bridge.stderr };
  } finally {
    bridge.child.kill("SIGKILL");
  }
}

/** Every process below `pid` now (from /proc), so a test can check that none outlives a signal. */
export function descendants(pid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export function alive(pid) {
  try {
    // A zombie still answers kill(0): look at its state instead.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The program a process runs, as started (argv[0]), to find the real binary below a launcher. */
export function programOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    return "";
  }
}

/**
 * Starts `command`, initializes, sends SIGTERM to the top process and waits until the top process
 * and everything below it (the real binary) are gone; returns the top process's exit status and
 * what is still running (`left`).
 */
export async function terminate(command, args, binaryName, options = {}) {
  const bridge = new Bridge(command, args, options);
  try {
    await bridge.initialize();
    // The top process itself is the binary when nothing launches it.
    const below = [bridge.child.pid, ...descendants(bridge.child.pid)];
    const binary = below.filter((pid) => path.basename(programOf(pid)).startsWith(binaryName));
    if (binary.length === 0) {
      throw new Error(`no ${binaryName} process below ${command}: ${below.map(programOf).join(", ")}`);
    }
    bridge.child.kill("SIGTERM");
    const exit = await bridge.waitExit();
    const deadline = Date.now() + WAIT_MS;
    while (below.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const left = below.filter(alive).map((pid) => `${pid} ${programOf(pid)}`);
    return { ...exit, left, stderr: bridge.stderr };
  } finally {
    bridge.child.kill("SIGKILL");
  }
}

/**
 * A SoftHSM2 token `mcp` in a temporary directory (its own SOFTHSM2_CONF) holding the fixtures'
 * RSA client key and certificate as `client-rsa`, made with softhsm2-util and OpenSC's pkcs11-tool
 * as tests/support/softhsm.rs does. Returns the environment a process needs to see the token and
 * the `pkcs11:` URI of the key, naming the module and a PIN file (never the PIN on argv).
 */
export async function softHsmToken(t) {
  const module = SOFTHSM_MODULES.find((p) => existsSync(p));
  if (!module) throw new Error(`SoftHSM2 is not installed (looked for ${SOFTHSM_MODULES.join(", ")}): apt-get install softhsm2 opensc`);
  const dir = tempDir(t, "softhsm");
  mkdirSync(path.join(dir, "tokens"));
  const conf = path.join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  const tool = async (program, args) => {
    const r = await run(program, args, { env });
    if (r.code !== 0) throw new Error(`${program} ${args.join(" ")} failed: ${r.stdout}${r.stderr}`);
  };
  const pin = "1234";
  await tool("softhsm2-util", ["--init-token", "--free", "--label", "mcp", "--pin", pin, "--so-pin", "5678"]);
  await tool("softhsm2-util", ["--import", PEM.key, "--token", "mcp", "--label", "client-rsa", "--id", "01", "--pin", pin]);
  // The certificate object: the PEM fixture's DER bytes.
  const pem = readFileSync(PEM.cert, "utf8");
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const derFile = path.join(dir, "client-rsa.der");
  writeFileSync(derFile, der);
  await tool("pkcs11-tool", ["--module", module, "--token-label", "mcp", "--login", "--pin", pin,
    "--write-object", derFile, "--type", "cert", "--label", "client-rsa", "--id", "01"]);
  const pinFile = path.join(dir, "pin");
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  return {
    env: { SOFTHSM2_CONF: conf },
    uri: `pkcs11:token=mcp;object=client-rsa?module-path=${module}&pin-source=${pinFile}`,
  };
}

/** The highest GLIBC_x.y symbol version a binary needs (readelf, as scripts/dist.sh), or null for none. */
export async function highestGlibc(binary) {
  const r = await run("readelf", ["--dyn-syms", "--wide", binary]);
  if (r.code !== 0) throw new Error(`readelf --dyn-syms ${binary}: ${r.stderr}`);
  const versions = [...r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return versions.length ? versions.at(-1).join(".") : null;
}

/**
 * Compiles packaging/test/pkcs11-probe.c, the minimal module that reports one token labelled
 * `probe-token`, with `cc` (e.g. "musl-gcc", or a command and its first arguments as an array:
 * zig's cc with a target) into a temporary directory; returns the module's path.
 */
export async function buildProbeModule(t, cc, name) {
  const out = path.join(tempDir(t, "probe"), name);
  const [command, ...ccArgs] = Array.isArray(cc) ? cc : [cc];
  const source = path.join(ROOT, "packaging/test/pkcs11-probe.c");
  const r = await run(command, [...ccArgs, "-shared", "-fPIC", "-O2", "-o", out, source]);
  if (r.code !== 0) throw new Error(`${[command, ...ccArgs].join(" ")} could not build the probe module: ${r.stderr}`);
  return out;
}
