//! What MCP authorization adds to a cold start: the bridge already signed in (its tokens in a
//! `file:` store, as after `mcp-secure-remote login`), and the bridge that runs a machine grant
//! at every start (`--oauth-grant client-credentials`, authenticated by its TLS certificate or by
//! a client secret, tokens in memory: discovery, the token request and the retried initialize),
//! against the same bridge handed a token with `--header Authorization` (which turns OAuth off).
//! All started from nothing and timed from spawn to the initialize result, against the
//! oidc-provider peer's protected MCP server (tests/peers/oauth, installed by `make oauth-peer`)
//! in one run, alternating.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use base64ct::{Base64, Encoding};
use serde_json::Value;

use crate::bridge_proc::{mtls_args, BridgeProcess};
use crate::error::{BenchError, Result};

/// Cold starts of each kind.
const ROUNDS: usize = 10;

/// The peer's pre-registered machine clients (server.mjs `--clients`).
const MTLS_CLIENT: &str = "bench-machine-mtls";
const SECRET_CLIENT: &str = "bench-machine-secret";
/// Not a secret: the bench's own client at its own throw-away peer.
const BENCH_SECRET: &str = "bench-machine-secret-0123456789";

/// Spawn-to-initialize times, in ms, of each kind.
pub struct OauthCold {
    pub signed_in_ms: Vec<f64>,
    pub header_ms: Vec<f64>,
    /// client credentials, `tls_client_auth` (a certificate-bound token).
    pub machine_mtls_ms: Vec<f64>,
    /// client credentials, `client_secret_basic`.
    pub machine_secret_ms: Vec<f64>,
}

/// The peer, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(binary: &Path, fixtures: &Path) -> Result<OauthCold> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join(".peers/oauth/node_modules");
    if !modules.is_dir() {
        return Err(BenchError::Usage(format!(
            "the OAuth peer is not installed ({}): run `make oauth-peer`",
            modules.display()
        )));
    }
    let dir = std::env::temp_dir().join(format!("mcp-bench-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Usage(e.to_string()))?;
    let clients = dir.join("clients.json");
    let registered = serde_json::json!([
        {"client_id": MTLS_CLIENT, "token_endpoint_auth_method": "tls_client_auth", "bound": true,
         "subject_dn_of": fixtures.join("client-rsa.crt")},
        {"client_id": SECRET_CLIENT, "token_endpoint_auth_method": "client_secret_basic",
         "client_secret": BENCH_SECRET},
    ]);
    std::fs::write(&clients, registered.to_string())
        .map_err(|e| BenchError::Usage(format!("{}: {e}", clients.display())))?;
    let mut child = Command::new("node")
        .arg(root.join("tests/peers/oauth/server.mjs"))
        .arg("--fixtures")
        .arg(fixtures)
        .arg("--modules")
        .arg(&modules)
        .arg("--clients")
        .arg(&clients)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| BenchError::Usage(format!("cannot start node for the OAuth peer: {e}")))?;
    let stdout = child.stdout.take();
    let peer = Peer(child);
    let mut ready = String::new();
    if let Some(stdout) = stdout {
        let _ = BufReader::new(stdout).read_line(&mut ready);
    }
    let ready: Value = serde_json::from_str(&ready)
        .map_err(|e| BenchError::Usage(format!("the OAuth peer did not start ({e})")))?;
    let url = ready["mcp_url"].as_str().unwrap_or_default().to_string();

    let tokens = dir.join("tokens.json");
    let store = format!("file:{}", tokens.display());
    let jar = dir.join("cookies.txt");
    let browser = format!(
        "curl -fsS -o /dev/null -L -c {jar} -b {jar} --cacert {ca} --max-redirs 10",
        jar = jar.display(),
        ca = fixtures.join("ca.crt").display()
    );
    let state = dir.display().to_string();
    let login = Command::new(binary)
        .arg("login")
        .arg(&url)
        .args(mtls_args(fixtures))
        .args(["--oauth-browser", &browser, "--oauth-token-store", &store])
        .env("XDG_STATE_HOME", &state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| BenchError::Spawn(binary.to_path_buf(), e))?;
    if !login.success() {
        return Err(BenchError::Usage(format!(
            "`mcp-secure-remote login` against the OAuth peer failed ({login})"
        )));
    }
    let token = stored_access_token(&tokens)?;
    let header = format!("Authorization: Bearer {token}");

    let mut figures = OauthCold {
        signed_in_ms: Vec::new(),
        header_ms: Vec::new(),
        machine_mtls_ms: Vec::new(),
        machine_secret_ms: Vec::new(),
    };
    let machine = |client: &'static str, method: &'static str| {
        [
            "--oauth-token-store",
            "memory",
            "--oauth-grant",
            "client-credentials",
            "--oauth-client-id",
            client,
            "--oauth-client-auth",
            method,
        ]
    };
    let no_env: [(&str, &str); 0] = [];
    let secret_env = [("MCP_REMOTE_OAUTH_CLIENT_SECRET", BENCH_SECRET)];
    for _ in 0..ROUNDS {
        let signed_in = ["--oauth-token-store", store.as_str()];
        figures.signed_in_ms.push(cold_start(
            binary, &url, fixtures, &signed_in, &state, &no_env,
        )?);
        let own_header = ["--header", header.as_str()];
        figures.header_ms.push(cold_start(
            binary,
            &url,
            fixtures,
            &own_header,
            &state,
            &no_env,
        )?);
        let mtls = machine(MTLS_CLIENT, "tls_client_auth");
        figures
            .machine_mtls_ms
            .push(cold_start(binary, &url, fixtures, &mtls, &state, &no_env)?);
        let secret = machine(SECRET_CLIENT, "client_secret_basic");
        figures.machine_secret_ms.push(cold_start(
            binary,
            &url,
            fixtures,
            &secret,
            &state,
            &secret_env,
        )?);
    }
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(figures)
}

/// One bridge from spawn to its initialize result, in ms.
fn cold_start(
    binary: &Path,
    url: &str,
    fixtures: &Path,
    extra: &[&str],
    state: &str,
    env: &[(&str, &str)],
) -> Result<f64> {
    let mut env = env.to_vec();
    env.push(("XDG_STATE_HOME", state));
    let started = Instant::now();
    let mut bridge = BridgeProcess::spawn_with(binary, url, fixtures, extra, &env)?;
    // Timed as BridgeProcess::initialize does, and the answer checked: a grant that failed
    // answers quickly with an error, which is no cold start.
    bridge.send(&format!("{}\n", crate::messages::initialize(0)))?;
    let line = bridge.response(0)?;
    let took = line.at.duration_since(started);
    if !line.text.contains("\"result\"") {
        return Err(BenchError::Usage(format!(
            "a bridge with {extra:?} did not initialize against the OAuth peer: {}",
            line.text.chars().take(300).collect::<String>()
        )));
    }
    bridge.send(&format!("{}\n", crate::messages::initialized()))?;
    bridge.close_and_time_exit()?;
    Ok(took.as_secs_f64() * 1e3)
}

/// The access token the file store holds (its values are base64 of the bridge's JSON record).
fn stored_access_token(path: &Path) -> Result<String> {
    let missing = || BenchError::Usage(format!("no access token in {}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|_| missing())?;
    let contents: Value = serde_json::from_str(&text).map_err(|_| missing())?;
    let entries = contents["entries"].as_object().ok_or_else(missing)?;
    for value in entries.values() {
        let bytes =
            Base64::decode_vec(value.as_str().unwrap_or_default()).map_err(|_| missing())?;
        let record: Value = serde_json::from_slice(&bytes).map_err(|_| missing())?;
        if let Some(token) = record["tokens"]["access_token"].as_str() {
            return Ok(token.to_string());
        }
    }
    Err(missing())
}

/// The report's section.
pub fn render(figures: &OauthCold) -> String {
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let signed_in = median(&figures.signed_in_ms);
    let header = median(&figures.header_ms);
    let mtls = median(&figures.machine_mtls_ms);
    let secret = median(&figures.machine_secret_ms);
    let ratio = |v: f64| if header > 0.0 { v / header } else { 0.0 };
    format!(
        "### MCP authorization: cold start of a signed-in bridge and of a machine grant\n\n\
         | spawn → initialize result, median of {ROUNDS} (against the oidc-provider peer over mTLS) | ms | vs `--header` |\n\
         | --- | --- | --- |\n\
         | a token with `--header Authorization` (OAuth off) | {header:.1} | 1.00× |\n\
         | signed in: tokens from the `file:` store, the OAuth layer on | {signed_in:.1} | {:.2}× |\n\
         | machine grant at start: client credentials, `tls_client_auth` (certificate-bound token) | {mtls:.1} | {:.2}× |\n\
         | machine grant at start: client credentials, `client_secret_basic` | {secret:.1} | {:.2}× |\n\n",
        ratio(signed_in),
        ratio(mtls),
        ratio(secret)
    )
}
