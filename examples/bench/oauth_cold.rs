//! What MCP authorization adds to a cold start: the bridge already signed in (its tokens in a
//! `file:` store, as after `mcp-secure-remote login`) against the same bridge handed the same
//! token with `--header Authorization` (which turns OAuth off), both started from nothing and
//! timed from spawn to the initialize result, against the oidc-provider peer's protected MCP
//! server (tests/peers/oauth, installed by `make oauth-peer`) in one run, alternating.

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

/// Spawn-to-initialize times, in ms, of both kinds.
pub struct OauthCold {
    pub signed_in_ms: Vec<f64>,
    pub header_ms: Vec<f64>,
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
    let mut child = Command::new("node")
        .arg(root.join("tests/peers/oauth/server.mjs"))
        .arg("--fixtures")
        .arg(fixtures)
        .arg("--modules")
        .arg(&modules)
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

    let dir = std::env::temp_dir().join(format!("mcp-bench-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Usage(e.to_string()))?;
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
    };
    for _ in 0..ROUNDS {
        let signed_in = ["--oauth-token-store", store.as_str()];
        figures
            .signed_in_ms
            .push(cold_start(binary, &url, fixtures, &signed_in, &state)?);
        let own_header = ["--header", header.as_str()];
        figures
            .header_ms
            .push(cold_start(binary, &url, fixtures, &own_header, &state)?);
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
) -> Result<f64> {
    let started = Instant::now();
    let mut bridge =
        BridgeProcess::spawn_with(binary, url, fixtures, extra, &[("XDG_STATE_HOME", state)])?;
    let took = bridge.initialize(started)?;
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
    format!(
        "### MCP authorization: cold start of a signed-in bridge\n\n\
         | spawn → initialize result, median of {ROUNDS} (against the oidc-provider peer over mTLS) | ms |\n\
         | --- | --- |\n\
         | signed in: tokens from the `file:` store, the OAuth layer on | {signed_in:.1} |\n\
         | the same token with `--header Authorization` (OAuth off) | {header:.1} |\n\
         | ratio | {:.2}× |\n\n",
        if header > 0.0 { signed_in / header } else { 0.0 }
    )
}
