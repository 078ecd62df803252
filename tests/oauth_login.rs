//! The bridge's OAuth sign-in end to end: the real binary against a real authorization server (npm
//! oidc-provider, tests/peers/oauth) and an MCP server that wants both a client certificate and a
//! token, all on 127.0.0.1. The browser is curl, scripted: it follows the AS's auto-approving
//! interaction to the bridge's loopback listener. Every test runs the bridge with `--debug` and then
//! asserts that no token, code, verifier or client secret the AS saw appears on its stdout or stderr.
//!
//! Not on Windows: the Windows suite runs under wine, which cannot start the peer (a Linux node
//! process), and the scripted browser and opener are Unix command lines.
#![cfg_attr(windows, allow(unused))]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::bridge::{mtls_args, Bridge};
use support::fixture;
use support::oauth_peer::{OauthPeer, PeerOptions};

/// Bound on one answer that may include a whole sign-in (discovery, DCR, browser, token): about a
/// second here, far more on a loaded 2-core CI machine or under qemu.
const LOGIN_WAIT: Duration = Duration::from_secs(60);
/// Lifetime of access tokens in the expiry tests: short, so the tests see several expiries, but long
/// enough that a token is still valid when a loaded machine (or qemu) delivers the request it is for.
const SHORT_TTL: u32 = 5;
/// A wait after which a token issued at its start has expired.
const PAST_EXPIRY: Duration = Duration::from_secs(SHORT_TTL as u64 + 1);

// ---- scene: the peer, a private directory, the flags ---------------------------------------------

struct Scene {
    peer: OauthPeer,
    dir: TempDir,
}

impl Scene {
    fn new(options: PeerOptions) -> Scene {
        Scene {
            peer: OauthPeer::start_with(options),
            dir: TempDir::new(),
        }
    }

    /// The scripted browser: curl with a cookie jar (the AS's interaction sets cookies), the fixtures
    /// CA (the AS is HTTPS), following redirects to the bridge's http://127.0.0.1 callback.
    fn browser(&self) -> String {
        let jar = self.dir.path.join("cookies.txt");
        format!(
            "curl -fsS -o /dev/null -L -c {jar} -b {jar} --cacert {ca} --max-redirs 10",
            jar = jar.display(),
            ca = fixture("ca.crt").display()
        )
    }

    fn file_store(&self) -> String {
        format!("file:{}", self.tokens_file().display())
    }

    fn tokens_file(&self) -> PathBuf {
        self.dir.path.join("tokens.json")
    }

    /// `<url> <mTLS flags> --debug --oauth-browser B --oauth-token-store S [extra]`.
    fn args(&self, browser: &str, store: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![self.peer.mcp_url()];
        args.extend(mtls_args());
        args.extend(
            [
                "--debug",
                "--oauth-browser",
                browser,
                "--oauth-token-store",
                store,
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The lock directory (and anything else the bridge keeps in its state directory) is this
    /// test's own; nothing from the environment picks another browser or a client secret.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "XDG_STATE_HOME",
            self.dir.path.join("state").display().to_string(),
        )]
    }

    fn bridge(&self, browser: &str, store: &str, extra: &[&str]) -> Session {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Session::new(Bridge::spawn(&self.args(browser, store, extra), &env))
    }

    /// `mcp-secure-remote <login|logout> <url> …`, run to its end.
    fn cli(&self, subcommand: &str, browser: &str, store: &str) -> CliRun {
        let mut args = vec![subcommand.to_string()];
        args.extend(self.args(browser, store, &[]));
        let mut cmd = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote"));
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env_remove("MCP_REMOTE_OAUTH_BROWSER")
            .env_remove("MCP_REMOTE_OAUTH_CLIENT_SECRET")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn mcp-secure-remote");
        let out = reader(child.stdout.take().expect("stdout"));
        let err = reader(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + LOGIN_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`mcp-secure-remote {subcommand}` did not finish within {LOGIN_WAIT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        CliRun {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }

    /// No secret the AS issued or received is in any of `outputs`.
    fn assert_no_secret(&self, outputs: &[(&str, &str)]) {
        let secrets = self.peer.secrets();
        assert!(
            !secrets.is_empty(),
            "the AS recorded no secret: the test did not exercise a login"
        );
        for (name, text) in outputs {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{name} contains a secret the AS issued or received (it begins {:?}); {name}:\n{text}",
                    &secret[..6.min(secret.len())]
                );
            }
        }
    }

    fn stats(&self) -> Value {
        self.peer.stats()
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

struct CliRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// A bridge plus everything it wrote on stdout (for the secret check).
struct Session {
    bridge: Bridge,
    stdout: Vec<String>,
}

impl Session {
    fn new(bridge: Bridge) -> Session {
        Session {
            bridge,
            stdout: Vec::new(),
        }
    }

    fn send(&mut self, id: u64, method: &str, params: Value) {
        let msg = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
        // A bridge that already exited makes the write fail (broken pipe): say why it exited.
        let sent =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.bridge.send(&msg)));
        if sent.is_err() {
            self.assert_running(&format!("before reading request {id}"));
            panic!(
                "cannot write request {id} to the bridge; stderr:\n{}",
                self.bridge.stderr()
            );
        }
    }

    /// The response to `id`, waiting up to [`LOGIN_WAIT`] (a sign-in may be in it).
    fn response(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + LOGIN_WAIT;
        loop {
            // Short slices, so that a bridge that exited (a refused flag, a crash) fails the test at
            // once rather than after the whole wait.
            let Some(msg) = self.bridge.recv_within(Duration::from_millis(250)) else {
                self.assert_running(&format!("before answering request {id}"));
                assert!(
                    Instant::now() < deadline,
                    "no answer to request {id} within {LOGIN_WAIT:?}; stderr:\n{}",
                    self.bridge.stderr()
                );
                continue;
            };
            self.stdout.push(msg.to_string());
            if msg["id"] == json!(id) && (msg.get("result").is_some() || msg.get("error").is_some())
            {
                return msg;
            }
        }
    }

    fn assert_running(&mut self, when: &str) {
        if !self.bridge.running() {
            let status = self.bridge.wait_exit(Duration::from_secs(5));
            panic!(
                "the bridge exited ({status:?}) {when}; stderr:\n{}",
                self.bridge.stderr()
            );
        }
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(id, method, params);
        self.response(id)
    }

    fn send_initialize(&mut self, id: u64) {
        self.send(
            id,
            "initialize",
            json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"oauth-test","version":"1"}}),
        );
    }

    /// initialize (which meets the 401 and signs in) + notifications/initialized.
    fn initialize(&mut self) -> Value {
        self.send_initialize(0);
        let resp = self.response(0);
        self.initialized(&resp);
        resp
    }

    fn initialized(&mut self, resp: &Value) {
        assert_eq!(
            resp["result"]["protocolVersion"],
            json!("2025-11-25"),
            "initialize was not answered by the server: {resp}; stderr:\n{}",
            self.bridge.stderr()
        );
        self.bridge
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    }

    fn echo(&mut self, id: u64, message: &str) -> Value {
        self.call(
            id,
            "tools/call",
            json!({"name":"echo","arguments":{"message":message}}),
        )
    }

    fn assert_echo(&mut self, id: u64, message: &str) {
        let resp = self.echo(id, message);
        assert_eq!(
            resp["result"]["content"][0]["text"],
            json!(format!("Echo: {message}")),
            "tools/call: {resp}; stderr:\n{}",
            self.bridge.stderr()
        );
    }

    /// Close stdin, wait for the exit, collect the last stdout lines.
    fn finish(&mut self) -> (String, String) {
        self.bridge.close_stdin();
        let exited = self.bridge.wait_exit(Duration::from_secs(20));
        assert!(
            exited.is_some(),
            "the bridge did not exit after stdin closed"
        );
        while let Some(msg) = self.bridge.recv_within(Duration::from_millis(100)) {
            self.stdout.push(msg.to_string());
        }
        (self.stdout.join("\n"), self.bridge.stderr())
    }
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mcp-oauth-login-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("state")).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn count(stats: &Value, path: &[&str]) -> u64 {
    path.iter().fold(stats, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// Lines of the bridge's stderr that are not `--debug` tracing and report a refused refresh: they name
/// the AS's `invalid_grant`, or say that the refresh was revoked/refused/rejected/failed/….
fn refresh_failure_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            !l.starts_with("mcp-secure-remote: debug:")
                && !l.starts_with("mcp-secure-remote: trace:")
        })
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            let refused = [
                "revoked", "refused", "rejected", "invalid", "failed", "denied", "expired",
            ];
            l.contains("invalid_grant")
                || (l.contains("refresh") && refused.iter().any(|w| l.contains(w)))
        })
        .collect()
}

fn wait_for_file(path: &Path, what: &str, writer: &mut Session) -> String {
    let deadline = Instant::now() + LOGIN_WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        writer.assert_running(&format!("before {what}"));
        assert!(
            Instant::now() < deadline,
            "{what} never happened ({} not written)",
            path.display()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---- the tests -----------------------------------------------------------------------------------

/// The first request meets the 401; the bridge discovers the AS, registers, opens the (scripted)
/// browser, redeems the code and answers initialize from the server; later requests carry the token.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn login_through_a_scripted_browser_then_requests_carry_the_token() {
    let scene = Scene::new(PeerOptions::default());
    let mut bridge = scene.bridge(&scene.browser(), "memory", &[]);
    bridge.initialize();
    let tools = bridge.call(1, "tools/list", json!({}));
    assert_eq!(
        tools["result"]["tools"][0]["name"],
        json!("echo"),
        "{tools}"
    );
    bridge.assert_echo(2, "signed in");

    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["authorizations"]),
        1,
        "one sign-in: {stats}"
    );
    assert_eq!(
        count(&stats, &["registrations"]),
        1,
        "one DCR client: {stats}"
    );
    assert_eq!(
        count(&stats, &["token_requests", "authorization_code"]),
        1,
        "{stats}"
    );
    assert_eq!(stats["token_errors"], json!({}), "{stats}");
    // initialize, the notification, tools/list, tools/call: all with the one token.
    assert!(count(&stats, &["mcp", "authorized"]) >= 4, "{stats}");
    assert_eq!(
        stats["mcp"]["requests_by_token"]
            .as_object()
            .map(|m| m.len()),
        Some(1),
        "{stats}"
    );
    assert_eq!(
        count(&stats, &["mcp", "methods", "initialize"]),
        1,
        "initialize reached the server once: {stats}"
    );

    let (stdout, stderr) = bridge.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("stderr (--debug)", &stderr)]);
}

/// With access tokens of [`SHORT_TTL`] seconds, a request after expiry is served through the
/// refresh token: no second sign-in, no refused grant.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn an_expired_access_token_is_refreshed_without_a_new_login() {
    let scene = Scene::new(PeerOptions {
        access_ttl: SHORT_TTL,
        ..PeerOptions::default()
    });
    let mut bridge = scene.bridge(&scene.browser(), "memory", &[]);
    bridge.initialize();
    bridge.assert_echo(1, "before expiry");
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["live_refresh_tokens"]),
        1,
        "the sign-in got no refresh token: the bridge must ask for offline_access (the AS lists it): {stats}"
    );
    thread::sleep(PAST_EXPIRY);
    bridge.assert_echo(2, "after expiry");
    thread::sleep(PAST_EXPIRY);
    bridge.assert_echo(3, "after a second expiry");

    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["authorizations"]),
        1,
        "expiry caused a new sign-in: {stats}"
    );
    assert!(
        count(&stats, &["token_requests", "refresh_token"]) >= 2,
        "no refresh per expiry: {stats}"
    );
    assert_eq!(stats["token_errors"], json!({}), "{stats}");
    assert_eq!(count(&stats, &["refresh_token_reuse"]), 0, "{stats}");
    assert_eq!(
        count(&stats, &["live_refresh_tokens"]),
        1,
        "the rotated refresh token is the live one: {stats}"
    );

    let (stdout, stderr) = bridge.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("stderr (--debug)", &stderr)]);
}

/// Three bridges for one server started at once, sharing a file token store: one sign-in, all three
/// answered; after each expiry all three call at once, and the rotating refresh token is never
/// redeemed twice (the AS would revoke the family and answer invalid_grant).
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn three_bridges_at_once_share_one_login_and_never_reuse_a_rotated_refresh_token() {
    let scene = Scene::new(PeerOptions {
        access_ttl: SHORT_TTL,
        ..PeerOptions::default()
    });
    let store = scene.file_store();
    let browser = scene.browser();
    let mut bridges: Vec<Session> = (0..3)
        .map(|_| scene.bridge(&browser, &store, &[]))
        .collect();
    for bridge in &mut bridges {
        bridge.send_initialize(0);
    }
    for bridge in &mut bridges {
        let resp = bridge.response(0);
        bridge.initialized(&resp);
    }
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["authorizations"]),
        1,
        "three processes, one sign-in: {stats}"
    );
    assert_eq!(
        count(&stats, &["registrations"]),
        1,
        "the DCR client must be shared through the store: {stats}"
    );

    for round in 1..=2u64 {
        thread::sleep(PAST_EXPIRY);
        for (n, bridge) in bridges.iter_mut().enumerate() {
            bridge.send(
                round,
                "tools/call",
                json!({"name":"echo","arguments":{"message":format!("{round}-{n}")}}),
            );
        }
        for (n, bridge) in bridges.iter_mut().enumerate() {
            let resp = bridge.response(round);
            assert_eq!(
                resp["result"]["content"][0]["text"],
                json!(format!("Echo: {round}-{n}")),
                "bridge {n}, round {round}: {resp}; stderr:\n{}",
                bridge.bridge.stderr()
            );
        }
    }

    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["authorizations"]),
        1,
        "a process signed in again: {stats}"
    );
    assert_eq!(
        count(&stats, &["refresh_token_reuse"]),
        0,
        "a rotated refresh token was redeemed twice: {stats}"
    );
    assert_eq!(stats["token_errors"], json!({}), "{stats}");
    assert!(
        count(&stats, &["token_requests", "refresh_token"]) >= 2,
        "{stats}"
    );
    let mut outputs = Vec::new();
    for (n, bridge) in bridges.iter_mut().enumerate() {
        let (stdout, stderr) = bridge.finish();
        assert!(
            !stderr.contains("invalid_grant"),
            "bridge {n} met invalid_grant:\n{stderr}"
        );
        outputs.push((format!("bridge {n} stdout"), stdout));
        outputs.push((format!("bridge {n} stderr (--debug)"), stderr));
    }
    let outputs: Vec<(&str, &str)> = outputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    scene.assert_no_secret(&outputs);
}

/// The AS revokes the client's tokens (an administrator, a security event). The next request meets
/// 401, the refresh is refused with invalid_grant: the bridge says so once, signs in again, and the
/// request is answered.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn a_revoked_refresh_token_gives_one_clear_error_then_a_new_login() {
    let scene = Scene::new(PeerOptions::default());
    let mut bridge = scene.bridge(&scene.browser(), "memory", &[]);
    bridge.initialize();
    bridge.assert_echo(1, "before revocation");
    let revoked = scene.peer.revoke_all(None, true);
    assert!(
        revoked >= 2,
        "the sign-in left {revoked} tokens to revoke (want an access and a refresh token)"
    );

    bridge.assert_echo(2, "after revocation");
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["authorizations"]),
        2,
        "no new sign-in after the refused refresh: {stats}"
    );
    assert_eq!(
        count(&stats, &["token_errors", "invalid_grant"]),
        1,
        "exactly one refused refresh: {stats}"
    );
    assert_eq!(count(&stats, &["refresh_token_reuse"]), 0, "{stats}");
    // invalid_grant condemns the tokens, not the client: only invalid_client calls for a new
    // registration (a new client per sign-in piles up at the AS: claude-code#91641).
    assert_eq!(
        count(&stats, &["registrations"]),
        1,
        "the bridge registered a new client after invalid_grant: {stats}"
    );
    bridge.assert_echo(3, "signed in again");

    let (stdout, stderr) = bridge.finish();
    let lines = refresh_failure_lines(&stderr);
    assert_eq!(
        lines.len(),
        1,
        "want one clear line about the refused refresh token (outside --debug tracing), got {lines:#?}; stderr:\n{stderr}"
    );
    scene.assert_no_secret(&[("stdout", &stdout), ("stderr (--debug)", &stderr)]);
}

/// `login` signs in once and stores the tokens; a bridge then needs no browser; `logout` revokes
/// and forgets them, after which a bridge without a browser asks for a sign-in instead of working.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn login_command_stores_tokens_and_logout_revokes_and_forgets_them() {
    let scene = Scene::new(PeerOptions::default());
    let store = scene.file_store();

    let login = scene.cli("login", &scene.browser(), &store);
    assert!(
        login.status.success(),
        "login failed ({}):\n{}",
        login.status,
        login.stderr
    );
    assert!(
        login.stderr.contains(&scene.peer.issuer()),
        "login does not name the issuer:\n{}",
        login.stderr
    );
    assert!(
        login.stderr.contains("mcp:read"),
        "login does not name the scopes:\n{}",
        login.stderr
    );
    assert_eq!(count(&scene.stats(), &["authorizations"]), 1);

    let mut bridge = scene.bridge("none", &store, &["--oauth-login-wait", "5"]);
    bridge.initialize();
    bridge.assert_echo(1, "from the stored login");
    let (bridge_out, bridge_err) = bridge.finish();
    assert_eq!(
        count(&scene.stats(), &["authorizations"]),
        1,
        "the bridge signed in again: {}",
        scene.stats()
    );

    let logout = scene.cli("logout", "none", &store);
    assert!(
        logout.status.success(),
        "logout failed ({}):\n{}",
        logout.status,
        logout.stderr
    );
    let stats = scene.stats();
    assert!(
        count(&stats, &["revocations"]) >= 1,
        "logout revoked nothing at the AS: {stats}"
    );
    assert_eq!(
        count(&stats, &["live_refresh_tokens"]),
        0,
        "a refresh token is still live after logout: {stats}"
    );
    // The store may keep the client registration; it must keep no token.
    if let Ok(kept) = std::fs::read_to_string(scene.tokens_file()) {
        for secret in scene.peer.issued_tokens() {
            assert!(
                !kept.contains(&secret),
                "the token store still holds a token after logout"
            );
        }
    }

    let mut after = scene.bridge("none", &store, &["--oauth-login-wait", "3"]);
    after.send_initialize(0);
    let resp = after.response(0);
    let message = resp["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        resp.get("error").is_some()
            && (message.contains("login")
                || message.contains("sign in")
                || message.contains("sign-in")),
        "after logout, with no browser, initialize must be refused with how to sign in: {resp}"
    );
    assert_eq!(
        count(&scene.stats(), &["authorizations"]),
        1,
        "{}",
        scene.stats()
    );
    let (after_out, after_err) = after.finish();

    scene.assert_no_secret(&[
        ("login stdout", &login.stdout),
        ("login stderr (--debug)", &login.stderr),
        ("bridge stdout", &bridge_out),
        ("bridge stderr (--debug)", &bridge_err),
        ("logout stdout", &logout.stdout),
        ("logout stderr (--debug)", &logout.stderr),
        ("post-logout stdout", &after_out),
        ("post-logout stderr (--debug)", &after_err),
    ]);
}

/// A bridge killed while its sign-in waits for the browser (it holds the per-server lock) does not
/// block the next one: a second bridge started meanwhile waits, then, once the OS frees the dead
/// holder's lock, signs in itself and is answered.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn a_process_killed_mid_login_does_not_block_the_next_one() {
    let scene = Scene::new(PeerOptions::default());
    let store = scene.file_store();
    // A "browser" that only notes the URL: the sign-in never completes.
    let noted = scene.dir.path.join("noted-url.txt");
    let opener = scene.dir.path.join("note-url.sh");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\n",
            noted.display()
        ),
    )
    .expect("write the opener script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755))
            .expect("chmod opener");
    }
    let mut first = scene.bridge(&opener.display().to_string(), &store, &[]);
    first.send_initialize(0);
    let url = wait_for_file(&noted, "the first bridge's browser launch", &mut first);
    let url = url::Url::parse(url.trim())
        .unwrap_or_else(|e| panic!("the opener got no URL ({e}): {url}"));
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        format!("{}/auth", scene.peer.issuer()),
        "not the AS's authorization endpoint: {url}"
    );
    assert_eq!(
        param("code_challenge_method").as_deref(),
        Some("S256"),
        "{url}"
    );
    assert_eq!(param("resource"), Some(scene.peer.resource()), "{url}");

    // A second bridge for the same server starts while the first holds the sign-in: it must wait for
    // it, not sign in beside it; when the first dies mid-login, the second takes over.
    let mut second = scene.bridge(&scene.browser(), &store, &[]);
    second.send_initialize(0);
    thread::sleep(Duration::from_millis(1500));
    second.assert_running("while the first bridge held the sign-in");
    assert_eq!(
        count(&scene.stats(), &["authorizations"]),
        0,
        "the second bridge signed in while the first one's sign-in was under way"
    );
    let first_err = first.bridge.stderr();
    drop(first); // SIGKILL, mid-login

    let resp = second.response(0);
    second.initialized(&resp);
    second.assert_echo(1, "after the crash");
    let stats = scene.stats();
    assert_eq!(count(&stats, &["authorizations"]), 1, "{stats}");
    let (stdout, stderr) = second.finish();
    scene.assert_no_secret(&[
        ("stdout", &stdout),
        ("stderr (--debug)", &stderr),
        ("killed bridge's stderr", &first_err),
    ]);
}
