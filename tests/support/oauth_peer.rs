//! The OAuth test peer (tests/peers/oauth/server.mjs): a real authorization server (npm oidc-provider)
//! and the mTLS MCP server it protects, on 127.0.0.1, started per test and killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::fixture;

/// How long the peer may take to print its ready line: node starting oidc-provider and generating an
/// RSA key takes about a second here, much longer on a loaded 2-core machine or beside qemu.
const READY_WAIT: Duration = Duration::from_secs(60);
/// Bound on one control request (loopback, answered from memory).
const CONTROL_WAIT: Duration = Duration::from_secs(10);

/// Where scripts/peers/install-oauth.sh puts the peer's npm packages.
pub fn modules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/oauth/node_modules")
}

/// How to start the peer.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// Lifetime of access tokens in seconds (the control endpoint can change it later).
    pub access_ttl: u32,
    /// "opaque" (checked against the AS's store, so revocation shows) or "jwt".
    pub token_format: &'static str,
    /// Keep oidc-provider's strict OIDC rule: `offline_access` without `prompt=consent` is dropped, so
    /// no refresh token. Off by default: the peer then adds the prompt itself, as most ASes behave.
    pub offline_access_needs_consent: bool,
    /// A JSON file of pre-registered machine clients (see server.mjs `--clients`).
    pub clients: Option<PathBuf>,
    /// DPoP at the AS: "off", "on", "nonce" (the token endpoint and the MCP server demand server
    /// nonces) or "nonce+bearer" (the MCP server's demand follows a Bearer challenge).
    pub dpop: &'static str,
    /// The DPoP proof algorithms the AS accepts, comma-separated (None: all it knows).
    pub dpop_algs: Option<&'static str>,
    /// The MCP server's TLS accepts client certificates from any issuer, and serves those not
    /// from the fixtures CA only with a token bound to them (server.mjs `--mcp-self-signed-clients`).
    pub mcp_self_signed_clients: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            access_ttl: 3600,
            token_format: "opaque",
            offline_access_needs_consent: false,
            clients: None,
            dpop: "off",
            dpop_algs: None,
            mcp_self_signed_clients: false,
        }
    }
}

pub struct OauthPeer {
    child: Child,
    /// The peer exits when its stdin closes: held open until drop.
    _stdin: ChildStdin,
    ready: Value,
    stderr: Arc<Mutex<String>>,
}

impl OauthPeer {
    pub fn start() -> OauthPeer {
        OauthPeer::start_with(PeerOptions::default())
    }

    /// Start the peer and wait for its ready line. A missing install is a failure, not a skip: the
    /// message names the script that installs it.
    ///
    /// Peers of one test binary start one at a time: nine nodes loading oidc-provider and
    /// generating RSA keys at once, beside qemu, starve each other on a 2-core machine. A peer that
    /// has not reported ready after [`READY_WAIT`] is killed, its state and stderr are printed, and
    /// one more is started; a second silent peer fails the test. (Open defect: once in CI, a peer
    /// under the arm64 suite printed nothing for 90 s; its startup phases are now on its stderr.)
    pub fn start_with(options: PeerOptions) -> OauthPeer {
        static STARTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        match OauthPeer::try_start(&options) {
            Ok(peer) => peer,
            Err(first) => {
                eprintln!("{first}\nstarting the OAuth test peer once more");
                OauthPeer::try_start(&options).unwrap_or_else(|second| panic!("{second}"))
            }
        }
    }

    fn try_start(options: &PeerOptions) -> Result<OauthPeer, String> {
        let modules = modules_dir();
        assert!(
            modules.join("oidc-provider/package.json").is_file(),
            "the OAuth test peer is not installed ({} is missing): run scripts/peers/install-oauth.sh \
             (`make test` runs it first)",
            modules.join("oidc-provider").display()
        );
        let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oauth/server.mjs");
        let fixtures = fixture("ca.crt")
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let mut node = Command::new("node");
        node.arg(&server);
        if options.offline_access_needs_consent {
            node.arg("--offline-access-needs-consent");
        }
        if options.mcp_self_signed_clients {
            node.arg("--mcp-self-signed-clients");
        }
        if let Some(algs) = options.dpop_algs {
            node.arg("--dpop-algs").arg(algs);
        }
        if let Some(clients) = &options.clients {
            node.arg("--clients").arg(clients);
        }
        let mut child = node
            .arg("--dpop")
            .arg(options.dpop)
            .arg("--fixtures")
            .arg(&fixtures)
            .arg("--modules")
            .arg(&modules)
            .arg("--access-ttl")
            .arg(options.access_ttl.to_string())
            .arg("--token-format")
            .arg(options.token_format)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start node for the OAuth test peer ({e}): install Node.js 20 or later"
                )
            });
        let stdin = child.stdin.take().expect("peer stdin");
        let stdout = child.stdout.take().expect("peer stdout");
        let stderr_pipe = child.stderr.take().expect("peer stderr");

        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OAUTH_PEER_STDERR").is_some() {
                    eprintln!("[oauth peer] {line}");
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so that the peer never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(READY_WAIT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let state = process_state(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let log = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
                return Err(format!(
                    "the OAuth test peer did not report ready within {READY_WAIT:?} ({other:?}); \
                     process state: {state}; its stderr:\n{log}"
                ));
            }
        };
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("the OAuth test peer's ready line is not JSON ({e}): {line:?}")
        });
        Ok(OauthPeer {
            child,
            _stdin: stdin,
            ready,
            stderr,
        })
    }

    fn ready_str(&self, key: &str) -> String {
        self.ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("ready line has no {key}: {}", self.ready))
            .to_string()
    }

    /// The AS issuer, `https://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> String {
        self.ready_str("issuer")
    }

    /// The protected MCP endpoint, `https://127.0.0.1:PORT/mcp`; also the resource identifier.
    pub fn mcp_url(&self) -> String {
        self.ready_str("mcp_url")
    }

    pub fn resource(&self) -> String {
        self.ready_str("resource")
    }

    /// The protected-resource metadata URL the 401 challenge names.
    pub fn prm_url(&self) -> String {
        self.ready_str("prm_url")
    }

    /// The plain-HTTP control endpoint, `http://127.0.0.1:PORT`.
    pub fn control_url(&self) -> String {
        self.ready_str("control_url")
    }

    /// The peer's diagnostics so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters: authorizations, registrations, token_requests{grant}, token_errors{error},
    /// refresh_token_reuse, revocations, live_refresh_tokens, mcp{authorized, unauthorized, …}.
    pub fn stats(&self) -> Value {
        self.control("GET", "/stats")
    }

    /// Every token, code, verifier and client secret that crossed the AS.
    pub fn secrets(&self) -> Vec<String> {
        self.control("GET", "/secrets")["secrets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The access, refresh and ID tokens the AS issued (a subset of [`Self::secrets`]).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.control("GET", "/secrets")["tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Revoke every refresh token (of `client_id` if given), and the access tokens too with
    /// `access`; returns how many tokens were destroyed.
    pub fn revoke_all(&self, client_id: Option<&str>, access: bool) -> u64 {
        let mut path = format!("/revoke?access={}", if access { 1 } else { 0 });
        if let Some(id) = client_id {
            path.push_str("&client_id=");
            path.push_str(&url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        }
        self.control("POST", &path)["revoked"].as_u64().unwrap_or(0)
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_ttl(&self, seconds: u32) {
        self.control("POST", &format!("/access-ttl?seconds={seconds}"));
    }

    /// One request to the control endpoint (HTTP/1.0, so the answer ends at EOF).
    fn control(&self, method: &str, path: &str) -> Value {
        let base = self.control_url();
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| {
            panic!("cannot reach the OAuth peer's control endpoint {base}: {e}")
        });
        stream
            .set_read_timeout(Some(CONTROL_WAIT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(CONTROL_WAIT))
            .expect("write timeout");
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .expect("write control request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("control {method} {path}: no answer ({e})"));
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "control {method} {path} failed: {head}\n{body}"
        );
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("control {method} {path}: not JSON ({e}): {body}"))
    }
}

impl Drop for OauthPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A silent peer's scheduler state and CPU time from /proc (Linux), to tell a hang (sleeping, little
/// CPU) from starvation (running, CPU climbing).
fn process_state(pid: u32) -> String {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return "unknown (no /proc)".to_string();
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    format!(
        "state {}, user+system {} clock ticks, waiting in {:?}",
        fields.first().unwrap_or(&"?"),
        ticks(11) + ticks(12),
        wchan
    )
}
